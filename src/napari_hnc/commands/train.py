"""``napari-hnc train``: train an automatic or click-guided segmentation model on a labelled dataset."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from pathlib import Path

from ._common import DEVICE_HELP, device_option

HELP = "train a segmentation model (automatic or click-guided) on HECKTOR / autoPET-style data"
DESCRIPTION = (
    "Train a network on the studies with CT, PET and labels found under DATA in one dataset layout. The cases "
    "are split into folds by patient; fold K validates after every epoch and the best epoch's weights are "
    "written as OUT/<name>.safetensors with the model card OUT/<name>.json (its validation scores and the "
    "exact command). Volumes are preprocessed once at the model's spacing and cached. OUT also gets last.pt "
    "(continue with --resume), steps.csv, epochs.csv, train.log and learning_curve.png. Started by torchrun "
    "(e.g. `torchrun --nproc_per_node=4 -m napari_hnc.cli train ...`) it trains with DistributedDataParallel."
)
MODELS = ("senorm", "mhsa", "rrse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..training.config import TrainConfig

    d = TrainConfig()
    parser.add_argument("data", type=Path, metavar="DATA", help="dataset folder")
    parser.add_argument("--layout", required=True, choices=("hecktor2022", "hecktor2021", "autopet"),
                        help="file names of the dataset")
    parser.add_argument("--model", choices=MODELS, default="senorm",
                        help="senorm: SE-Norm residual U-Net (seed 000); mhsa: residual U-Net with self-attention "
                             "(seed 004); rrse: residual recurrent SE-Norm U-Net (seed 001) (default: %(default)s)")
    parser.add_argument("--clicks", action="store_true", help="train the click-guided variant (for click refinement)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default: %(default)s)")
    parser.add_argument("--fold", type=int, default=0, help="validation fold, 0-based (default: %(default)s)")
    parser.add_argument("--name", help="model name (default: hnc-auto, or hnc-click with --clicks)")
    parser.add_argument("--base-channels", type=int, default=8, help="width of the first level (default: 8)")
    parser.add_argument("--depth", type=int, default=3, help="number of down-samplings (default: 3)")
    parser.add_argument("--spacing", type=float, default=2.5, help="voxel size in mm (default: 2.5)")
    parser.add_argument("--ct-window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="HU window the CT is clipped to and scaled from, onto -1..1 (default: -1024 1024, "
                        "seed 000; seed 004 used -150 150)")
    parser.add_argument("--patch-size", type=int, default=d.patch_size, help="training patch side in voxels; with "
                        "--clicks also the model's region around a click (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    parser.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="patches per step and process "
                        "(default: %(default)s)")
    parser.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (default: %(default)s)")
    parser.add_argument("--loss", choices=("dice_ce", "focal"), default=d.loss,
                        help="Dice + cross-entropy or Dice + focal (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    parser.add_argument("--val-max-cases", type=int, default=d.val_max_cases,
                        help="validation cases scored per epoch (default: %(default)s)")
    parser.add_argument("--device", default="auto", type=device_option, help=DEVICE_HELP)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all, shared among ranks)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default: 0)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="preprocessing cache folder (default: the user cache folder)")
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT from its last epoch")
    parser.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                        help="end after this many epochs of this call (continue with --resume)")
    parser.add_argument("--data-note", default=None, help="how DATA was made, recorded in the model card")


def build_card(args: argparse.Namespace):
    """The model card to train: the bundled preset with the asked architecture, size and spacing."""
    from ..cli import UsageError
    from ..errors import ModelError
    from ..models.presets import preset_card
    from ..training.config import ARCHITECTURE_OF

    card = preset_card("click" if args.clicks else "auto", name=args.name)
    arguments = {"base_channels": args.base_channels, "depth": args.depth}
    if args.model == "mhsa":
        arguments["heads"] = card.arguments.get("heads", 4)
    card = card.with_changes(architecture=ARCHITECTURE_OF[args.model], arguments=arguments,
                             spacing_mm=(args.spacing,) * 3)
    if args.ct_window is not None:
        try:  # the card's own check (an increasing window), reported against the option
            pre = replace(card.preprocessing, ct_window=tuple(args.ct_window))
        except ModelError as exc:
            raise UsageError(f"--ct-window {' '.join(f'{v:g}' for v in args.ct_window)}: {exc}") from None
        card = card.with_changes(preprocessing=pre)
    return card


def command_line(args: argparse.Namespace) -> str:
    """The full command that reproduces this run (every setting spelled out)."""
    parts = ["napari-hnc", "train", str(args.data), "--layout", args.layout, "--model", args.model]
    parts += ["--clicks"] if args.clicks else []
    for option in ("out", "folds", "fold", "name", "base_channels", "depth", "spacing", "patch_size", "epochs",
                   "steps_per_epoch", "batch_size", "lr", "loss", "seed", "val_max_cases"):
        value = getattr(args, option)
        if value is not None:
            parts += [f"--{option.replace('_', '-')}", str(value)]
    if getattr(args, "ct_window", None) is not None:
        parts += ["--ct-window", *(f"{v:g}" for v in args.ct_window)]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    import platformdirs

    from ..cli import UsageError
    from ..errors import HncError, StudyError
    from ..training.config import TrainConfig
    from ..training.dataset import index_dataset, train_val_split
    from ..training.trainer import train

    try:
        config = TrainConfig(clicks=args.clicks, patch_size=args.patch_size, epochs=args.epochs,
                             steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, lr=args.lr,
                             loss=args.loss, seed=args.seed, val_max_cases=args.val_max_cases)
        card = build_card(args)
        cases = index_dataset(args.data, args.layout)
        train_cases, val_cases = train_val_split(cases, args.folds, args.fold, seed=args.seed)
    except (HncError, StudyError) as exc:
        raise UsageError(str(exc)) from None
    if config.patch_size % (2 ** args.depth):
        raise UsageError(f"--patch-size {config.patch_size} must be a multiple of 2**depth = {2 ** args.depth}")
    cache = args.cache or Path(platformdirs.user_cache_dir("napari-hnc")) / "training"
    info = {"data": args.data_note or f"{len(cases)} {args.layout} studies under {args.data}",
            "cases": len(train_cases), "validation_cases": [c.case_id for c in val_cases],
            "folds": args.folds, "fold": args.fold, "command": command_line(args)}
    result = train(train_cases, val_cases, card, config, args.out, cache_root=cache, device=args.device,
                   threads=args.threads, resume=args.resume, stop_after=args.stop_after, workers=args.workers,
                   training_info=info)
    print(f"{result.epochs_done} epoch(s) done; best {result.score_name} {result.best_score:.4f} at epoch "
          f"{result.best_epoch}; model card {result.card_path}")
    return 0
