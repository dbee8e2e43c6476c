"""Command-line options that open one study (shared by ``delineate`` and ``quantify``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

#: Option values such as ``-12.5,30,4:node`` are values, not options (world x is often negative).
_NEGATIVE_VALUE = re.compile(r"^-\d[\d.eE+-]*(,[-+\d.eE]+)*(:[\w ]+)*$")


def add_study_arguments(parser: argparse.ArgumentParser, labels_help: str) -> None:
    """STUDY plus ``--ct``, ``--pet``, ``--labels`` and ``--resample-labels``."""
    parser.add_argument("study", nargs="?", help="study folder or any of its files (HECKTOR 2021/2022, autoPET)")
    parser.add_argument("--ct", type=Path, help="CT file (overrides the one found from STUDY)")
    parser.add_argument("--pet", type=Path, help="PET file in SUV (overrides the one found from STUDY)")
    parser.add_argument("--labels", type=Path, help=labels_help)
    parser.add_argument("--resample-labels", action="store_true",
                        help="put labels drawn on another grid onto the CT grid (nearest neighbour)")
    if hasattr(parser, "_negative_number_matcher"):  # let "--click -12,30,4" through
        parser._negative_number_matcher = _NEGATIVE_VALUE


def open_study(args: argparse.Namespace):
    """The study the options name; :class:`~napari_hnc.cli.UsageError` when none is named."""
    from ..cli import UsageError
    from ..study import load_study

    if args.study is None and args.ct is None and args.pet is None:
        raise UsageError("name a study (a folder or a file), or give --ct and/or --pet")
    return load_study(args.study, ct=args.ct, pet=args.pet, labels=args.labels,
                      resample_labels=args.resample_labels)
