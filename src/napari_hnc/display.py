"""Fused PET/CT pictures without napari (headless demo, docs, reports).

Slices are taken from the display-oriented arrays of :mod:`napari_hnc.geometry`,
so they are radiological like the viewer: anterior up, patient's right on the
left of the picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .conventions import CLASS_COLORS, PET_DISPLAY_PERCENTILE, PET_MIN_DISPLAY_MAX, ct_contrast_limits
from .geometry import LayerGeometry, Volume, resample_to
from .study import Study


def pet_display_max(array: np.ndarray) -> float:
    """max(10 SUV, 99.9th percentile), the percentile estimated on at most ~2 M voxels."""
    flat = np.ravel(array, order="K")
    step = max(1, flat.size // 2_000_000)
    top = float(np.percentile(flat[::step], PET_DISPLAY_PERCENTILE)) if flat.size else 0.0
    return max(PET_MIN_DISPLAY_MAX, top)


def _hot(values: np.ndarray) -> np.ndarray:
    """Hot-iron colours for values in [0, 1]."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    return np.concatenate([np.clip(2.2 * v, 0, 1), np.clip(2.2 * v - 0.8, 0, 1), np.clip(3.0 * v - 2.0, 0, 1)], axis=-1)


def _display(volume: Volume) -> tuple[np.ndarray, LayerGeometry]:
    geometry = LayerGeometry.for_volume(volume)
    return geometry.to_display(np.asarray(volume.array)), geometry


def fused_slice(study: Study, labels: Volume | None = None, world_point: Any = None, *, plane: str = "axial",
                pet_max: float | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """An RGB picture (float, 0..1) of CT + PET + label outlines through ``world_point``.

    Returns the picture and the pixel size (rows, columns) in mm.
    """
    grid = study.grid
    labels = labels if labels is not None else study.labels
    point = np.asarray(world_point if world_point is not None else grid.center_world(), dtype=float)
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
    disp_geo = LayerGeometry.for_volume(grid)
    index = int(np.clip(np.rint(_display_index(disp_geo, point)[axis]), 0, disp_geo.display_shape[axis] - 1))
    take = lambda arr: np.take(arr, index, axis=axis).astype(np.float32)  # noqa: E731
    rgb = np.zeros(tuple(s for i, s in enumerate(disp_geo.display_shape) if i != axis) + (3,), np.float32)
    if study.ct is not None:
        lo, hi = ct_contrast_limits()
        rgb += np.clip((take(_display(study.ct)[0]) - lo) / (hi - lo), 0, 1)[..., None]
    if study.pet is not None:
        pet = take(_display(study.pet_on_grid())[0])
        top = pet_max or pet_display_max(study.pet.array)
        rgb = np.clip(rgb * 0.75 + _hot(pet / top), 0, 1) if study.ct is not None else _hot(pet / top)
    if labels is not None:
        rgb = _outline(rgb, take(_display(resample_to(labels, grid, "nearest"))[0]).astype(int))
    spacing = np.abs(np.diag(disp_geo.napari_affine)[:3])
    pixel = tuple(float(s) for i, s in enumerate(spacing) if i != axis)
    return rgb, pixel  # type: ignore[return-value]


def _display_index(geometry: LayerGeometry, world_ras: np.ndarray) -> np.ndarray:
    from .geometry import ras_to_napari

    return np.linalg.solve(geometry.napari_affine[:3, :3], ras_to_napari(world_ras) - geometry.napari_affine[:3, 3])


def _outline(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    out = rgb.copy()
    for value, color in CLASS_COLORS.items():
        if value == 0:
            continue
        mask = labels == value
        edge = mask & ~ndimage.binary_erosion(mask)
        out[edge] = color[:3]
    return out


def pet_mip(study: Study, *, plane: str = "coronal", pet_max: float | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Maximum-intensity projection of the PET (inverted grey, as read on PET workstations)."""
    if study.pet is None:
        raise ValueError("this study has no PET")
    data, geometry = _display(study.pet)
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
    mip = data.max(axis=axis).astype(np.float32)
    top = pet_max or pet_display_max(study.pet.array)
    grey = 1.0 - np.clip(mip / top, 0, 1)
    spacing = np.abs(np.diag(geometry.napari_affine)[:3])
    return np.repeat(grey[..., None], 3, axis=-1), tuple(float(s) for i, s in enumerate(spacing) if i != axis)  # type: ignore[return-value]


def save_picture(rgb: np.ndarray, pixel_mm: tuple[float, float], path: str | Path, *, title: str | None = None,
                 dpi: int = 110) -> Path:
    """Save an RGB picture as PNG with the right aspect ratio (matplotlib, no screen needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows, cols = rgb.shape[:2]
    height, width = rows * pixel_mm[0], cols * pixel_mm[1]
    fig = Figure(figsize=(6.0, 6.0 * height / width + (0.4 if title else 0.0)))
    ax = fig.add_axes((0, 0, 1, 1 if not title else 1 - 0.4 / fig.get_figheight()))
    ax.imshow(rgb, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    from .io.atomic import atomic_write

    face = "black" if not title else "white"
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, facecolor=face, format="png"), suffix=".png")
