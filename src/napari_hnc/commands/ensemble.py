"""``napari-hnc ensemble``: assemble trained models (folds) into one ensemble model."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

HELP = "assemble trained models (e.g. the folds of a cross-validation) into one ensemble model"
DESCRIPTION = (
    "Write the folder OUT with one model card OUT/<name>.json that lists the weights of every CARD (copied "
    "beside it). segment, evaluate and the napari plugin use it as one model: the mean of the members' "
    "probabilities (seeds 000 and 004: 5-fold ensembles). The members must have the same architecture, inputs, "
    "spacing, patch size, preprocessing and classes; the card records each member, its scores and its command."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cards", nargs="+", metavar="CARD", help="model cards (.json), names or aliases of the members")
    parser.add_argument("--out", type=Path, required=True, help="folder of the ensemble (must not exist)")
    parser.add_argument("--name", help="the ensemble's name (default: the --out folder's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..errors import ModelError
    from ..models.ensembles import assemble

    command = " ".join(shlex.quote(p) for p in ["napari-hnc", "ensemble", *args.cards, "--out", str(args.out)]
                       + (["--name", args.name] if args.name else []))
    try:
        path = assemble(args.cards, args.out, name=args.name, overwrite=args.overwrite, command=command)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    print(f"ensemble model card {path}")
    return 0
