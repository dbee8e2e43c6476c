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


def mip_with_contours(study: Study, labels: Volume | None, *, plane: str = "coronal",
                      pet_max: float | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """The PET maximum-intensity projection (inverted grey) with the outlines of the labels' projection per class."""
    rgb, pixel = pet_mip(study, plane=plane, pet_max=pet_max)
    if labels is None or not np.asarray(labels.array).any():
        return rgb, pixel
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
    on_pet = _display(resample_to(labels, study.pet, "nearest"))[0].astype(int)
    projected = np.zeros(rgb.shape[:2], int)
    for value in sorted(v for v in CLASS_COLORS if v):  # a node drawn over a primary behind it
        projected[(on_pet == value).any(axis=axis)] = value
    return _outline(rgb, projected), pixel


def lesion_report(study: Study, labels: Volume, table: Any, path: str | Path, *, max_lesions: int = 6,
                  dpi: int = 110) -> Path:
    """Save the paper's picture of a labelled study: a fused axial slice through each lesion (the largest
    ``max_lesions``, outlined in their class colour) and a coronal PET MIP with every lesion's contour.

    ``table`` is :func:`napari_hnc.quantify`'s table of ``labels`` (its centroids and volumes).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .conventions import CLASS_NAMES

    rows = table.sort_values("volume_ml", ascending=False).head(max_lesions) if len(table) else table
    panels = [(fused_slice(study, labels, (r.centroid_x_mm, r.centroid_y_mm, r.centroid_z_mm)),
               f"lesion {int(r.lesion)}: {CLASS_NAMES.get(int(r['class']), r['class'])}, {r.volume_ml:.1f} ml, "
               f"SUVmax {r.suv_max:.1f}") for _, r in rows.iterrows()]
    if study.pet is not None:
        panels.append((mip_with_contours(study, labels), "PET MIP (coronal)"))
    if not panels:
        panels.append((fused_slice(study, labels), "no lesion"))
    fig = Figure(figsize=(3.2 * len(panels), 3.8))
    for i, ((rgb, pixel), title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        height, width = rgb.shape[0] * pixel[0], rgb.shape[1] * pixel[1]
        ax.imshow(rgb, extent=(0, width, height, 0), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"{study.case_id}: radiological (patient's right on the left)", fontsize=9)
    from .io.atomic import atomic_write

    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, facecolor="white", format="png"), suffix=".png")


def report_paths(labels_path: str | Path) -> dict[str, Path]:
    """The lesion table and the fused picture saved beside a labels file.

    >>> sorted(p.name for p in report_paths("out/STS_001_labels.nii.gz").values())
    ['STS_001_labels_fusion.png', 'STS_001_labels_lesions.csv']
    """
    path = Path(labels_path)
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    return {"table": path.with_name(f"{stem}_lesions.csv"), "picture": path.with_name(f"{stem}_fusion.png")}


def write_labels_report(study: Study, labels: Volume, labels_path: str | Path) -> dict[str, Path]:
    """Beside saved labels, as the paper's Label Save does: the lesion table (CSV) and the fused picture
    (:func:`lesion_report`). A study without PET gets no table (nothing to measure), only the picture."""
    paths = report_paths(labels_path)
    written: dict[str, Path] = {}
    if study.pet is not None:
        from .pet import quantify, write_quantification

        table = quantify(study, labels)
        written["table"] = write_quantification(table, paths["table"])
    else:
        import pandas as pd

        table = pd.DataFrame(columns=["lesion", "class", "volume_ml", "suv_max"])
    written["picture"] = lesion_report(study, labels, table, paths["picture"])
    return written


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
