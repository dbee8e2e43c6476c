"""``napari-hnc evaluate``: score predictions, an automatic model or a click-guided model on labelled data."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import add_device_argument, add_overwrite_argument, check_device, check_outputs

HELP = "evaluate predictions or a model against reference labels (CSV tables and PNG figures)"
DESCRIPTION = (
    "Compare segmentations with the reference labels of the studies under DATA. With --predictions DIR the "
    "label files DIR/<case_id>_pred.nii.gz (as `napari-hnc segment` writes them; else DIR/<case_id>.nii.gz) are scored; with --model an automatic "
    "model segments every study first; a click-guided model is run through RefinementSession with simulated "
    "clicks (the first at each lesion's centre of mass, then at the centre of the largest error; autoPET IV) and "
    "scored after 0, 1, 2, 3 and 5 clicks. Writes OUT/cases.csv and OUT/summary.csv (Dice per class and for the "
    "union, HD95, lesion-wise TPR/PPV, MTV and total-tumour-burden agreement, failures, primary-vs-node voxel "
    "accuracy), OUT/dice_distribution.png and OUT/mtv_agreement.png; for click models OUT/click_lesions.csv, "
    "OUT/click_summary.csv and OUT/dice_by_clicks.png."
)

#: Simulated clicks per lesion unless --clicks says otherwise (the autoPET IV protocol's 5).
CLICKS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, metavar="DATA", help="dataset folder with reference labels")
    parser.add_argument("--layout", required=True, choices=("hecktor2022", "hecktor2021", "autopet"),
                        help="file names of the dataset")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="folder of <case_id>_pred.nii.gz (or <case_id>.nii.gz) label files to score")
    source.add_argument("--model", help="model name, alias (default, click) or card path to run and score")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--clicks", type=int, default=CLICKS,
                        help="clicks per lesion for click models (default: %(default)s)")
    parser.add_argument("--initial", default=None,
                        help="click models: start each lesion from this automatic model's labels (default: empty)")
    parser.add_argument("--min-volume-ml", type=float, default=0.0,
                        help="leave lesions smaller than this out of the lesion-wise counts (default: 0)")
    add_device_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--save-predictions", action="store_true", help="also write OUT/predictions/<case_id>_pred.nii.gz")
    parser.add_argument("--update-card", action="store_true",
                        help="write the cohort figures and this command into the model card's \"scores\"")
    parser.add_argument("--data-note", default=None, help="how DATA was made, recorded with --update-card")
    add_overwrite_argument(parser, "existing tables, figures and predictions in OUT")


def command_line(args: argparse.Namespace) -> str:
    parts = ["napari-hnc", "evaluate", str(args.data), "--layout", args.layout]
    parts += ["--predictions", str(args.predictions)] if args.predictions else ["--model", str(args.model)]
    parts += ["--out", str(args.out)]
    if args.initial:
        parts += ["--initial", args.initial]
    if args.model and args.clicks != CLICKS:  # only click-guided models use it
        parts += ["--clicks", str(args.clicks)]
    if args.min_volume_ml:
        parts += ["--min-volume-ml", str(args.min_volume_ml)]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..errors import StudyError
    from ..io.atomic import ensure_folder
    from ..training.dataset import index_dataset

    if args.clicks < 1:
        raise UsageError("--clicks must be >= 1")
    if args.update_card and not args.model:
        raise UsageError("--update-card needs --model (predictions have no card)")
    try:
        cases = index_dataset(args.data, args.layout)
    except StudyError as exc:
        raise UsageError(str(exc)) from None
    check_outputs(_outputs(args, cases), args)
    if args.model:
        check_device(args.device)
    ensure_folder(args.out)
    from ..training.evaluate_run import evaluate_dataset

    report = evaluate_dataset(cases, args)
    print(report.text)
    print(f"outputs in {args.out}: {', '.join(p.name for p in report.files)}")
    return 0


#: Files ``evaluate`` may write into OUT.
OUTPUT_NAMES = ("cases.csv", "summary.csv", "dice_distribution.png", "mtv_agreement.png", "click_lesions.csv",
                "click_summary.csv", "dice_by_clicks.png")


def _outputs(args: argparse.Namespace, cases) -> list[Path]:
    from ..training.evaluate_run import prediction_path

    paths = [args.out / name for name in OUTPUT_NAMES]
    if args.save_predictions:
        paths += [prediction_path(args.out / "predictions", case.case_id) for case in cases]
    return paths
