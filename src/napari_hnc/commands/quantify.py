"""``napari-hnc quantify``: lesion volumes, SUVs and TLG of a study's labels, as CSV or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_overwrite_argument, check_outputs
from ._study_options import add_study_arguments, open_study

HELP = "measure each lesion (volume, SUVmax/mean/peak, TLG, centroid) and the study's MTV"
DESCRIPTION = (
    "One row per lesion (a connected component of one class, 26-connectivity): volume in ml, SUVmax, "
    "SUVmean, SUVpeak (1 cm3 sphere), TLG and centroid in world RAS mm; plus the study's MTV of the "
    "primary, of the nodes and the total tumour burden. --out FILE.csv writes the lesion table, "
    "--out FILE.json the lesions and the totals."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_study_arguments(parser, "labels file to measure (default: the study's own labels)")
    parser.add_argument("--out", type=Path, required=True, help="table to write: .csv or .json")
    add_overwrite_argument(parser, "an existing --out file")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..pet.measure import quantify, study_totals
    from ..pet.report import FORMATS, write_quantification

    if args.out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out must end in .csv or .json, got {args.out.name}")
    check_outputs([args.out], args)
    study = open_study(args)
    if study.labels is None:
        raise UsageError(f"study {study.case_id} has no labels to measure; pass --labels FILE")
    table = quantify(study)
    path = write_quantification(table, args.out, case_id=study.case_id)
    totals = study_totals(table)
    print(
        f"{study.case_id}: {totals['n_lesions']} lesion(s); MTV primary {totals['mtv_primary_ml']:.2f} ml, "
        f"nodes {totals['mtv_nodes_ml']:.2f} ml, total tumour burden {totals['total_tumour_burden_ml']:.2f} ml; "
        f"written to {path}"
    )
    return 0
