"""The demo pipeline, shared by ``napari-hnc demo`` and ``napari-hnc demo --headless``.

Load a study (default: the bundled real sample), run the best available
automatic segmentation (in the head-and-neck region, found automatically; a
study that is already head-and-neck only keeps its whole field), measure the lesions, and write the labels, the lesion
table and a fused picture. When the study comes with reference labels, the
result is compared with them (Dice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError
from .geometry import Volume
from .io.nifti import save_labels
from .sample import sample_study_path
from .study import Study, load_study

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the headless demo wrote."""

    case_id: str
    method: str
    out_dir: Path
    labels_path: Path
    png_path: Path | None = None
    table_path: Path | None = None
    dice: float | None = None
    region: str = ""
    extra: dict[str, Path] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"case {self.case_id}: labels from {self.method}", f"  labels: {self.labels_path}"]
        if self.region:
            lines.append(f"  region: {self.region}")
        if self.table_path:
            lines.append(f"  lesion table: {self.table_path}")
        if self.png_path:
            lines.append(f"  fused view: {self.png_path}")
        if self.dice is not None:
            lines.append(f"  Dice against the study's reference labels (all lesions): {self.dice:.3f}")
        lines += [f"  {name}: {path}" for name, path in self.extra.items()]
        return "\n".join(lines)


def best_available_labels(study: Study, device: str = "auto") -> tuple[Volume, str]:
    """The best labels napari-hnc can make without a user, and how they were made.

    The installed default automatic model when there is one; otherwise the
    study's own labels (if any), else empty labels.
    """
    from .inference import segment
    from .models.registry import find_model

    try:
        entry = find_model("default", task="automatic")
    except ModelError as exc:
        log.warning("no automatic model installed (%s)", exc)
    else:
        labels = segment(study, entry.load(), device)
        return labels, f"the automatic model {entry.name!r} ({entry.card.description or entry.card.architecture})"
    if study.labels is not None:
        return study.labels, "the reference labels shipped with the study (no automatic model is installed)"
    return study.empty_labels(), "nothing (no automatic model is installed)"


def output_paths(out_dir: str | Path, case_id: str) -> dict[str, Path]:
    """The files the headless demo writes for a case.

    >>> sorted(p.name for p in output_paths("out", "STS_001").values())
    ['STS_001_fused_axial.png', 'STS_001_labels.nii.gz', 'STS_001_lesions.csv']
    """
    out_dir = Path(out_dir)
    return {"labels": out_dir / f"{case_id}_labels.nii.gz", "table": out_dir / f"{case_id}_lesions.csv",
            "png": out_dir / f"{case_id}_fused_axial.png"}


def run_headless(study_path: str | Path | None, out_dir: str | Path, device: str = "auto", *,
                 overwrite: bool = False) -> DemoResult:
    """Load a study (default: the bundled sample), segment it, write labels, lesion table and a fused PNG.

    Existing output files are an :class:`~napari_hnc.errors.OutputError` (checked before any work)
    unless ``overwrite`` is True.
    """
    from .display import fused_slice, save_picture
    from .io.atomic import ensure_folder, refuse_existing
    from .pet import quantify, write_quantification
    from .training.metrics import dice

    study = load_study(study_path or sample_study_path())
    paths = output_paths(out_dir, study.case_id)
    refuse_existing(paths.values(), overwrite)
    out_dir = ensure_folder(out_dir)
    labels, method = best_available_labels(study, device)
    labels_path = save_labels(labels, study.grid, paths["labels"])
    result = DemoResult(study.case_id, method, out_dir, labels_path, region=labels.metadata.get("region_description", ""))
    if study.pet is not None and np.asarray(labels.array).any():
        table = quantify(study, labels)
        result.table_path = write_quantification(table, paths["table"])
    if study.labels is not None and labels is not study.labels:
        result.dice = float(dice(np.asarray(labels.array) > 0, np.asarray(study.labels.array) > 0))
    rgb, pixel = fused_slice(study, labels, _focus(study, labels))
    result.png_path = save_picture(rgb, pixel, paths["png"],
                                   title=f"{study.case_id}: labels from {method.split(' (')[0]}")
    return result


def _focus(study: Study, labels: Volume) -> np.ndarray:
    mask = np.asarray(labels.array) > 0
    if mask.any():
        return labels.voxel_to_world(np.argwhere(mask).mean(axis=0))
    if study.pet is not None:
        return study.pet.voxel_to_world(np.unravel_index(int(np.argmax(study.pet.array)), study.pet.shape))
    return study.grid.center_world()


__all__ = ["DemoResult", "best_available_labels", "output_paths", "run_headless"]
