""""Improve the model": fine-tune an installed model on the cases saved through the plugin.

What the GUI's Improve dock runs on the torch worker (and what a notebook may call): the
saved cases (:mod:`.saved_cases`) are the training set, validated on a held-out fold when
there are at least :data:`HOLD_OUT_FROM` of them, else on themselves; the new version
``<name>-v<n>`` is written atomically into the first user model folder
(:func:`napari_hnc.models.user_model_dirs`, under the platformdirs user data folder), beside
the parent, which stays installed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..errors import HncError

log = logging.getLogger(__name__)

#: Fewer saved cases than this: validate on the training cases (nothing can be spared).
HOLD_OUT_FROM = 5


def improve_model(parent: str, *, saved: str | Path | None = None, models: str | Path | None = None,
                  epochs: int = 4, steps_per_epoch: int = 100, threads: int | None = None,
                  progress: Callable[[int, int, str], None] | None = None, cancel=None) -> Path:
    """Fine-tune ``parent`` (a name, alias or card path) on the saved cases; returns the new card's path.

    Parameters
    ----------
    saved : path, optional
        The saved cases (default: :func:`.saved_cases.saved_cases_dir`).
    models : path, optional
        Where the new version goes (default: the first user model folder).
    """
    import platformdirs

    from ..models.registry import available_models, find_model, user_model_dirs
    from .dataset import index_dataset, train_val_split
    from .finetune import child_name, finetune, finetune_config
    from .saved_cases import read_index, saved_cases_dir, summarise

    saved = Path(saved) if saved is not None else saved_cases_dir()
    models = Path(models) if models is not None else user_model_dirs()[0]
    if not (saved / "labelsTr").is_dir():
        raise HncError(f"no cases were saved yet (nothing in {saved}); save corrected labels first (Study dock)")
    entry = find_model(parent)
    cases = index_dataset(saved, "hecktor2022")
    if len(cases) >= HOLD_OUT_FROM:
        train_cases, val_cases = train_val_split(cases, HOLD_OUT_FROM, 0)
        how = f"fold 0 of {HOLD_OUT_FROM} of the saved cases"
    else:
        train_cases, val_cases, how = list(cases), list(cases), "the training cases (too few to hold some out)"
    name = child_name(entry.name, {e.name for e in available_models()})
    config = finetune_config(entry.card, epochs=epochs, steps_per_epoch=steps_per_epoch,
                             val_max_cases=min(len(val_cases), 4))
    index = read_index(saved)
    info = {"data": f"{len(cases)} cases saved through the napari plugin in {saved}", "validation": how,
            "saved_cases": summarise({k: v for k, v in index.items() if k in {c.case_id for c in train_cases}}),
            "command": f"napari-hnc finetune {saved} --from {entry.card_path} --out {models / name} "
                       f"--epochs {epochs} --steps-per-epoch {steps_per_epoch} (the napari plugin's Improve the model)"}
    cache = Path(platformdirs.user_cache_dir("napari-hnc")) / "training"
    result = finetune(train_cases, val_cases, entry.card_path, models / name, config, cache_root=cache,
                      device="auto", threads=threads, training_info=info, progress=progress, cancel=cancel)
    log.info("improved %s into %s", entry.name, result.card_path)
    return result.card_path
