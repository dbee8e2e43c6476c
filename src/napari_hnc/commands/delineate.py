"""``napari-hnc delineate``: lesions from clicks with a PET rule, saved as labels NIfTI."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_overwrite_argument, check_outputs
from ._study_options import add_study_arguments, open_study

HELP = "delineate lesions from clicks with PET rules (edge, percent of SUVmax, fixed SUV, adaptive, growing)"
DESCRIPTION = (
    "Grow one lesion per click with a PET rule and save the labels (1 primary tumour, 2 lymph node) on "
    "the CT grid (the PET grid for a PET-only study), with the lesion instances beside them "
    "(<out>_instances.nii.gz, <out>_provenance.json) so touching lesions stay apart. Give one positive click "
    "per lesion, at its centre, in world RAS+ millimetres: X,Y,Z[:primary|node][:neg]. The click snaps to its "
    "lesion's peak within 7 mm; a click in the cold centre of a necrotic lesion finds its rim; the region "
    "grows as far as the lesion goes and its cold cavities are filled. Lesions of these clicks that touch "
    "share their boundary along the PET watershed between their peaks (the order of the clicks does not "
    "matter); lesions of --labels keep their voxels, and a click inside one refines it with its class kept. "
    "A negative click removes the part of the lesion it lies in. --set-class X,Y,Z:node changes the class of "
    "the lesion there. Example: napari-hnc delineate CHUM-001__CT.nii.gz --click 12,-30,4:primary "
    "--click -12.5,30,4:node --out labels.nii.gz"
)

#: CLI option -> keyword of napari_hnc.delineate
_PARAMS = {
    "threshold": "threshold", "percent": "percent", "fraction": "fraction", "shell_mm": "shell_mm",
    "lower": "lower", "upper": "upper", "snap_mm": "snap_mm", "max_radius_mm": "max_radius_mm",
    "min_suv": "min_suv", "inner": "inner", "outer": "outer", "multiplier": "multiplier",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_study_arguments(parser, "labels to add the new lesions to (kept elsewhere); default: start empty")
    parser.add_argument("--click", action="append", required=True, metavar="X,Y,Z[:primary|node][:neg]",
                        help="a click in world RAS mm (repeatable); --click=X,Y,Z also works")
    parser.add_argument("--method", default="edge", choices=["edge", "percent", "fixed", "adaptive", "grow"],
                        help="PET rule (default: edge, the best on real PET/CT; see docs/pet.md)")
    parser.add_argument("--set-class", action="append", default=[], metavar="X,Y,Z:primary|node",
                        help="after the clicks, give the lesion at this point this class (repeatable)")
    rules = parser.add_argument_group("rule parameters (each method takes its own)")
    rules.add_argument("--inner", type=float, help="edge: the core is above bg + inner (peak - bg) (default 0.4)")
    rules.add_argument("--outer", type=float, help="edge: the background is below bg + outer (peak - bg) (default 0.1)")
    rules.add_argument("--threshold", type=float, help="fixed: SUV threshold (default 2.5)")
    rules.add_argument("--percent", type=float, help="percent: %% of the lesion's SUVmax (default 41)")
    rules.add_argument("--fraction", type=float, help="adaptive: f in bg + f(SUVmax - bg) (default 0.5)")
    rules.add_argument("--shell-mm", type=float, nargs=2, metavar=("INNER", "OUTER"),
                       help="adaptive: background shell around the lesion, mm (default 10 20)")
    rules.add_argument("--multiplier", type=float,
                       help="grow: standard deviations of the confidence interval (default 2.5)")
    rules.add_argument("--lower", type=float, help="grow: a fixed SUV interval from this (default: the confidence interval)")
    rules.add_argument("--upper", type=float, help="grow: highest SUV (default: none)")
    rules.add_argument("--snap-mm", type=float, help="move the click to its lesion's peak within this (default 7; 0: off)")
    rules.add_argument("--no-snap", action="store_true", help="use the clicked voxel itself (as --snap-mm 0)")
    rules.add_argument("--max-radius-mm", type=float,
                       help="safety bound: never grow further from the click (default 200; a warning says when reached)")
    rules.add_argument("--min-suv", type=float, help="least SUV near the click that counts as uptake (default 2)")
    rules.add_argument("--keep-holes", action="store_true",
                       help="do not fill the cold cavities a lesion encloses (a strictly metabolic volume)")
    parser.add_argument("--out", type=Path, required=True, help="labels file to write (.nii.gz)")
    parser.add_argument("--table", type=Path, help="also write the lesion table (.csv or .json)")
    add_overwrite_argument(parser, "an existing --out or --table file")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..io.nifti import is_nifti, save_labels
    from ..io.sidecars import sidecar_paths
    from ..pet.delineation import delineate
    from ..pet.measure import check_classes, quantify
    from ..pet.params import ParameterError
    from ..pet.report import FORMATS, write_quantification

    clicks = _clicks(args.click)
    if not is_nifti(args.out):
        raise UsageError(f"--out must end in .nii.gz or .nii, got {args.out.name}")
    if args.table is not None and args.table.suffix.lower() not in FORMATS:
        raise UsageError(f"--table must end in .csv or .json, got {args.table.name}")
    from ..io.sidecars import sidecar_paths as _sidecars

    check_outputs([p for p in (args.out, *_sidecars(args.out), args.table) if p is not None], args)
    study = open_study(args)
    if args.labels and study.labels is not None:
        check_classes(study.labels, study.case_id)  # before any work: they could not be measured
    params = {key: getattr(args, name) for name, key in _PARAMS.items() if getattr(args, name) is not None}
    if args.no_snap:
        params["snap_mm"] = 0.0
    if args.keep_holes:
        params["fill_holes"] = False
    reclass = _clicks(args.set_class, "--set-class")
    if args.table is not None and args.table.resolve() in {p.resolve() for p in sidecar_paths(args.out)}:
        raise UsageError(f"--table {args.table} is where the lesion instances' record of --out goes; choose another name")
    try:
        labels = delineate(study, clicks, args.method, labels=study.labels if args.labels else None,
                           set_class=reclass, **params)
    except ParameterError as exc:
        raise UsageError(str(exc)) from None
    path = save_labels(labels, study.grid, args.out)
    table = quantify(study, labels)
    print(f"{study.case_id}: {len(table)} lesion(s), {table['volume_ml'].sum():.2f} ml; labels written to {path}")
    for row in table.itertuples():
        print(f"  lesion {row.lesion} (instance {row.instance}, {row.class_name}): {row.volume_ml:.2f} ml, "
              f"SUVmax {row.suv_max:.2f}")
    if args.table:
        print(f"  table: {write_quantification(table, args.table, case_id=study.case_id, method=args.method)}")
    return 0


def _clicks(texts: list[str], option: str = "--click") -> list:
    """The ``--click`` values as Clicks; a malformed one is bad usage (exit 2), named with its position."""
    from ..cli import UsageError
    from ..clicks import Click
    from ..errors import ClickError

    clicks = []
    for k, text in enumerate(texts, start=1):
        try:
            clicks.append(Click.parse(text))
        except ClickError as exc:
            raise UsageError(f"{option} number {k} ({text!r}): {exc}") from None
    return clicks
