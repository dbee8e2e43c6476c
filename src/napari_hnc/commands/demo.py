"""``napari-hnc demo``: the main job on the bundled sample (or any study)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_device_argument, add_overwrite_argument, check_device

HELP = "open the sample study fused in napari with the plugin's docks (or run headless)"
DESCRIPTION = (
    "Open a PET/CT study (by default the bundled real sample STS_001) in napari, fused, with the "
    "napari-hnc docks, and run the best available automatic segmentation. With --headless the same "
    "pipeline runs without a window and writes its outputs to a folder."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", nargs="?", help="study folder or file (default: the bundled sample)")
    parser.add_argument("--headless", action="store_true", help="no window: write labels, table and PNG")
    parser.add_argument("--out", type=Path, default=Path("napari-hnc-demo"), help="output folder for --headless")
    parser.add_argument("--sample", choices=["sts001", "phantom"], default="sts001",
                        help="bundled study when none is given: the real sarcoma PET/CT (sts001) or a "
                             "synthetic head-and-neck phantom")
    add_device_argument(parser)
    add_overwrite_argument(parser, "existing files in --out (with --headless)")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..demo import run_headless
    from ..errors import OutputExistsError
    from ..sample import sample_study_path

    study = args.study or sample_study_path(args.sample)
    if args.headless:
        check_device(args.device)
        try:
            result = run_headless(study, args.out, args.device, overwrite=args.overwrite)
        except OutputExistsError as exc:  # bad usage: nothing was done
            raise UsageError(str(exc)) from None
        print(result.describe())
        return 0
    from .._napari.launch import launch_demo

    launch_demo(study)
    return 0
