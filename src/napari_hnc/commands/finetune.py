"""``napari-hnc finetune``: continue training a model on new labelled cases (a new model version)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import DEVICE_HELP, device_option

HELP = "fine-tune a model (automatic or click-guided) on new labelled cases, as a new model version"
DESCRIPTION = (
    "Continue training MODEL (a card path, a name or an alias such as default or click) on the studies with CT, "
    "PET and labels under DATA: a dataset layout folder, or the folder the napari plugin keeps the saved cases "
    "in (--saved). MODEL's card sets the architecture, the preprocessing and, for a click model, "
    "the region around the click; clicks are simulated from the labels as in `train --clicks`. The new version "
    "is written atomically as the folder OUT (card OUT/<name>.json naming its parent, the cases used, the "
    "validation before and after and this command; weights as safetensors; the training logs). Runs under "
    "torchrun like train."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, metavar="DATA", nargs="?", default=None,
                        help="dataset folder (default with --saved: the plugin's saved cases)")
    parser.add_argument("--saved", action="store_true",
                        help="DATA is the folder the napari plugin keeps the saved cases in "
                             "(<user data>/napari-hnc/saved-cases, or $NAPARI_HNC_SAVED_CASES)")
    parser.add_argument("--from", dest="parent", required=True, metavar="MODEL", help="the model to start from")
    parser.add_argument("--out", type=Path, required=True, help="folder of the new version (must not exist)")
    parser.add_argument("--name", help="name of the new version (default: the --out folder's name)")
    parser.add_argument("--layout", choices=("hecktor2022", "hecktor2021", "autopet"), default=None,
                        help="file names of the dataset (default: found)")
    parser.add_argument("--folds", type=int, default=5,
                        help="hold out fold --fold of this many for validation; 0, or fewer patients than folds: "
                             "validate on the training cases (default: %(default)s)")
    parser.add_argument("--fold", type=int, default=0, help="validation fold, 0-based (default: %(default)s)")
    parser.add_argument("--val-data", type=Path, default=None,
                        help="validate on the studies of this folder instead (all of DATA trains)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 4")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="default: 100")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the parent's, else 2")
    parser.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default: 0.0005)")
    parser.add_argument("--patch-size", type=int, default=None,
                        help="training patch side (automatic models; a click model keeps its region)")
    parser.add_argument("--loss", choices=("dice_ce", "focal"), default=None, help="default: the parent's")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--val-max-cases", type=int, default=None, help="validation cases scored per epoch")
    parser.add_argument("--device", default="auto", type=device_option, help=DEVICE_HELP)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all, shared among ranks)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default: 0)")
    parser.add_argument("--cache", type=Path, default=None, help="preprocessing cache folder (default: user cache)")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished fine-tune into OUT")
    parser.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                        help="end after this many epochs of this call (continue with --resume)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT once the new one is complete")
    parser.add_argument("--data-note", default=None, help="how DATA was made, recorded in the model card")
    parser.add_argument("--blend", type=float, default=None, metavar="SHARE",
                        help="write SHARE x the fine-tuned weights + (1 - SHARE) x the parent's (0 < SHARE <= 1; "
                             "e.g. 0.5 keeps more of what the parent knew; default: 1, the fine-tuned weights)")
    parser.add_argument("--zoomed-unblended", action="store_true",
                        help="with --blend and a click model: keep the fine-tuned weights too, as the card's "
                             "zoomed_weights, which draw the lesions the blend finds large (as hnc-click does)")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this fine-tune."""
    parts = ["napari-hnc", "finetune"] + ([str(args.data)] if args.data is not None else [])
    parts += ["--saved"] if args.saved else []
    parts += ["--from", str(args.parent)]
    for option in ("out", "name", "layout", "folds", "fold", "val_data", "epochs", "steps_per_epoch", "batch_size",
                   "lr", "patch_size", "loss", "seed", "val_max_cases", "blend"):
        value = getattr(args, option)
        if value is not None:
            parts += [f"--{option.replace('_', '-')}", str(value)]
    parts += ["--zoomed-unblended"] if getattr(args, "zoomed_unblended", False) else []
    return " ".join(shlex.quote(p) for p in parts)


def split(cases, args: argparse.Namespace):
    """Training and validation cases, and how the validation was chosen."""
    from ..training.dataset import detect_layout, index_dataset, train_val_split

    if args.val_data is not None:
        val = index_dataset(args.val_data, args.layout or detect_layout(args.val_data))
        return list(cases), val, f"the {len(val)} studies under {args.val_data}"
    groups = {c.group for c in cases}
    if args.folds == 0 or len(groups) < max(args.folds, 2):
        return list(cases), list(cases), "the training cases (too few patients to hold some out)"
    train, val = train_val_split(cases, args.folds, args.fold, seed=args.seed)
    return train, val, f"fold {args.fold} of {args.folds}"


def run(args: argparse.Namespace) -> int:
    import platformdirs

    from ..cli import UsageError
    from ..errors import HncError, ModelError, StudyError
    from ..models.registry import find_model
    from ..training.dataset import detect_layout, index_dataset
    from ..training.finetune import finetune, finetune_config
    from ..training.saved_cases import read_index, saved_cases_dir, summarise

    if args.data is None and not args.saved:
        raise UsageError("give DATA (a dataset folder) or --saved (the cases saved in the napari plugin)")
    data = args.data if args.data is not None else saved_cases_dir()
    if args.blend is not None and not 0.0 < args.blend <= 1.0:
        raise UsageError(f"--blend must lie in (0, 1] (the fine-tuned weights' share), got {args.blend}")
    if args.zoomed_unblended and (args.blend is None or args.blend >= 1.0):
        raise UsageError("--zoomed-unblended keeps the fine-tuned weights beside their blend: give --blend below 1")
    if args.out.exists() and not (args.overwrite or args.resume):
        raise UsageError(f"{args.out} already exists; nothing was written. Choose another --out or pass --overwrite")
    try:
        parent = find_model(args.parent)
        layout = args.layout or detect_layout(data)
        cases = index_dataset(data, layout)
        train_cases, val_cases, how = split(cases, args)
        config = finetune_config(parent.card, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                 batch_size=args.batch_size, lr=args.lr, loss=args.loss, seed=args.seed,
                                 val_max_cases=args.val_max_cases,
                                 patch_size=None if parent.card.is_click_guided else args.patch_size)
    except (HncError, StudyError, ModelError) as exc:
        raise UsageError(str(exc)) from None
    saved = read_index(data)
    info = {"data": args.data_note or f"{len(cases)} {layout} studies under {data}", "cases": len(train_cases),
            "validation": how, "command": command_line(args)}
    if saved:
        info["saved_cases"] = summarise({k: v for k, v in saved.items() if k in {c.case_id for c in train_cases}})
    cache = args.cache or Path(platformdirs.user_cache_dir("napari-hnc")) / "training"
    result = finetune(train_cases, val_cases, parent.card_path, args.out, config, name=args.name, cache_root=cache,
                      device=args.device, threads=args.threads, resume=args.resume, stop_after=args.stop_after,
                      workers=args.workers, overwrite=args.overwrite, training_info=info,
                      blend=1.0 if args.blend is None else args.blend, zoomed_unblended=args.zoomed_unblended)
    print(f"{result.epochs_done} epoch(s) done; best {result.score_name} {result.best_score:.4f} at epoch "
          f"{result.best_epoch}; model card {result.card_path}")
    return 0
