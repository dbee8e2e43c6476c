"""``napari-hnc convert``: DICOM folders to NIfTI in the HECKTOR 2022 layout (PET in SUV)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._common import add_overwrite_argument, finished

HELP = "convert DICOM PET/CT (and RTSTRUCT/SEG masks) to NIfTI, PET in SUV"
DESCRIPTION = (
    "Convert DICOM folders (CT and PET series, RTSTRUCT or SEG masks) to NIfTI in the HECKTOR 2022 layout: "
    "OUT/<case>__CT.nii.gz (HU), OUT/<case>__PT.nii.gz (SUV body weight), OUT/<case>.nii.gz (labels on the CT "
    "grid: 1 primary, 2 node) and OUT/<case>__dicom.json (provenance, SUV factor). A folder holding several "
    "studies gives one case per study. When the PET header lacks the SUV tags, or its times contradict each "
    "other (anonymised series), the case fails with a message naming every value to give: --weight, --dose, "
    "--injection-time, --scan-time, --half-life. A PET whose SUVmax comes out above 1000 is refused (wrong "
    "times, dose or weight) unless --allow-implausible-suv. Existing files are replaced only with --overwrite."
)
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dicom", nargs="*", type=Path, help="DICOM folder(s): one or more studies each")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    pick = parser.add_argument_group("explicit series (one study)")
    pick.add_argument("--ct", type=Path, help="CT series folder")
    pick.add_argument("--pet", type=Path, help="PET series folder")
    pick.add_argument("--labels", type=Path, help="RTSTRUCT or SEG file")
    pick.add_argument("--case-id", help="case id of the output files (default: PatientID)")
    suv = parser.add_argument_group("SUV values replacing or completing the PET header")
    suv.add_argument("--weight", type=float, metavar="KG", help="patient weight in kg")
    suv.add_argument("--dose", metavar="ACTIVITY", help="injected activity with its unit: 370MBq, 3.7e8Bq, 10mCi")
    suv.add_argument("--injection-time", metavar="TIME", help="injection time HH:MM[:SS] or YYYY-MM-DDTHH:MM:SS")
    suv.add_argument("--scan-time", metavar="TIME",
                     help="time the PET is decay-corrected to: the start of the PET acquisition (default: GE private "
                          "scan time, else the earliest AcquisitionTime, else SeriesTime; see docs/dicom.md)")
    suv.add_argument("--half-life", type=float, metavar="SECONDS", help="radionuclide half-life (F-18: 6586.2)")
    suv.add_argument("--height", type=float, metavar="M", help="patient height in metres (for --sul)")
    suv.add_argument("--sex", choices=["M", "F"], help="patient sex (for --sul)")
    suv.add_argument("--sul", action="store_true", help="write SUL (lean body mass) instead of SUV body weight")
    suv.add_argument("--allow-implausible-suv", action="store_true",
                     help="write the PET even when its SUVmax comes out above 1000 (refused by default)")
    parser.add_argument("--roi", action="append", default=[], metavar="NAME=CLASS",
                        help="map a mask ROI/segment name (or regular expression) to primary, node or none; repeatable")
    add_overwrite_argument(parser)


def _suv(args: argparse.Namespace):
    from ..cli import UsageError
    from ..errors import UnitsError
    from ..io.dicom.suv import SUVParameters, parse_activity

    try:
        return SUVParameters(
            weight_kg=args.weight, dose_bq=parse_activity(args.dose) if args.dose else None,
            injection_time=args.injection_time, scan_time=args.scan_time, half_life_s=args.half_life,
            height_m=args.height, sex=args.sex, normalisation="lbm" if args.sul else "bw",
            allow_implausible=args.allow_implausible_suv,
        )
    except UnitsError as exc:
        raise UsageError(str(exc)) from exc


def _roi_map(args: argparse.Namespace) -> dict:
    from ..cli import UsageError
    from ..io.dicom.names import parse_roi_option

    try:
        return dict(parse_roi_option(text) for text in args.roi)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..errors import HncError
    from ..io.dicom.convert import convert_study
    from ..io.dicom.series import scan_dicom

    explicit = {k: getattr(args, k) for k in ("ct", "pet", "labels") if getattr(args, k) is not None}
    if not args.dicom and not explicit:
        raise UsageError("give a DICOM folder, or --ct/--pet series folders")
    if explicit and args.dicom:
        raise UsageError("give either DICOM folders or --ct/--pet/--labels, not both")
    options = {"suv": _suv(args), "roi_map": _roi_map(args), "overwrite": args.overwrite}
    if explicit:
        converted = convert_study(explicit, args.out, case_id=args.case_id, **options)
        finished(args, converted.case_id)
        print(converted.describe())
        return 0
    failed = 0
    for folder in args.dicom:
        studies = [s for s in scan_dicom(folder) if s.ct or s.pet]
        if not studies:
            print(f"{folder}: no CT or PET DICOM series found")
            failed += 1
        for study in studies:
            try:
                converted = convert_study(study, args.out, case_id=args.case_id if len(studies) == 1 else None, **options)
            except HncError as exc:
                print(f"{study.case_id}: failed: {exc}")
                failed += 1
            else:
                finished(args, converted.case_id)
                print(converted.describe())
    return 1 if failed else 0
