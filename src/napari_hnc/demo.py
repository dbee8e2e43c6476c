"""The demo pipeline, shared by ``napari-hnc demo`` and ``napari-hnc demo --headless``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    extra: dict[str, Path] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"case {self.case_id}: labels from {self.method}", f"  labels: {self.labels_path}"]
        if self.png_path:
            lines.append(f"  fused view: {self.png_path}")
        lines += [f"  {name}: {path}" for name, path in self.extra.items()]
        return "\n".join(lines)


def best_available_labels(study: Study) -> tuple[Volume, str]:
    """The best labels napari-hnc can produce for a study, and how they were made."""
    if study.labels is not None:
        return study.labels, "the reference mask shipped with the study"
    return study.empty_labels(), "nothing (no segmentation method available)"


def run_headless(study_path: str | Path | None, out_dir: str | Path) -> DemoResult:
    """Load a study (default: the bundled sample), label it, write labels NIfTI and a fused PNG."""
    from .display import fused_slice, save_picture

    study = load_study(study_path or sample_study_path())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, method = best_available_labels(study)
    labels_path = save_labels(labels, study.grid, out_dir / f"{study.case_id}_labels.nii.gz")
    focus = _focus(study, labels)
    rgb, pixel = fused_slice(study, labels, focus)
    png = save_picture(rgb, pixel, out_dir / f"{study.case_id}_fused_axial.png")
    return DemoResult(study.case_id, method, out_dir, labels_path, png)


def _focus(study: Study, labels: Volume) -> np.ndarray:
    mask = np.asarray(labels.array) > 0
    if mask.any():
        return labels.voxel_to_world(np.argwhere(mask).mean(axis=0))
    if study.pet is not None:
        return study.pet.voxel_to_world(np.unravel_index(int(np.argmax(study.pet.array)), study.pet.shape))
    return study.grid.center_world()
