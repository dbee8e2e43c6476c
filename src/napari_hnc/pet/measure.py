"""Lesion quantification: volume, SUVmax, SUVmean, SUVpeak, TLG and centroid per lesion.

A lesion is a lesion instance (labels that carry an instance map, as
:func:`napari_hnc.delineate`, :class:`napari_hnc.RefinementSession` and studies
saved with one give), else a 26-connected component of the voxels of one class:
two touching nodes saved as two instances are two rows. PET values
are read on the labels' own grid through world coordinates (linear
interpolation, as :meth:`napari_hnc.Study.pet_on_grid`), box by box.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..conventions import CLASS_NAMES, NODE, PRIMARY, unknown_classes
from ..errors import GeometryError, HncWarning, StudyError
from ..geometry import Volume
from ..io.nifti import as_label_array
from .components import Lesion, instance_lesions
from .sampling import pet_sampler
from .thresholds import ball

log = logging.getLogger(__name__)

#: SUVpeak sphere: 1 cm3 (PERCIST, Wahl 2009; Lodge 2012), radius (3 / 4 pi)^(1/3) cm.
PEAK_VOLUME_ML = 1.0
PEAK_RADIUS_MM = 10.0 * (3.0 * PEAK_VOLUME_ML / (4.0 * math.pi)) ** (1.0 / 3.0)

#: Columns of the table :func:`quantify` returns, in order.
COLUMNS = [
    "case_id", "lesion", "instance", "class", "class_name", "n_voxels", "volume_ml", "suv_max", "suv_mean",
    "suv_peak", "tlg", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
]


def quantify(study, labels: Volume | np.ndarray | None = None) -> pd.DataFrame:
    """One row per lesion: volume (ml), SUVmax, SUVmean, SUVpeak, TLG and world centroid.

    A lesion is an instance of the labels' instance map
    (``labels.metadata["instances"]``) when they carry one, else a connected
    component (26-connectivity: voxels touching by a face, an edge or a corner
    belong together) of the voxels of one class.

    Parameters
    ----------
    study : napari_hnc.Study
        Needs a PET in SUV.
    labels : Volume or numpy.ndarray, optional
        Default ``study.labels``. A Volume may lie on any grid that overlaps the
        PET (the PET is read through world coordinates); an array must be on the
        study's label grid.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, ordered by class then decreasing volume; ``lesion``
        numbers them from 1, ``instance`` is the lesion's id in the instance map
        (that of the connected components when there is none). SUVs are on the labels' grid (PET linearly
        interpolated): SUVmax equals the PET's own voxel maximum when the grids
        coincide. ``suv_peak`` is the highest mean SUV in a 1 cm3 sphere (the
        voxels whose centres lie within 6.2 mm) centred on a voxel of the lesion;
        ``tlg`` = ``suv_mean`` x ``volume_ml``. Centroids are world RAS+ mm.

    Raises
    ------
    StudyError
        No PET, or no labels.
    GeometryError
        Labels on another grid that does not overlap the PET.

    Examples
    --------
    >>> from napari_hnc import Study, Volume
    >>> pet = np.ones((20, 20, 20), np.float32)
    >>> pet[5:10, 5:10, 5:10] = 4.0
    >>> study = Study(ct=None, pet=Volume(pet, np.diag([2.0, 2.0, 2.0, 1.0])))
    >>> table = quantify(study, (pet > 2).astype(np.uint8))
    >>> row = table.iloc[0]
    >>> row.class_name, int(row.n_voxels), round(float(row.volume_ml), 6), float(row.suv_max), round(float(row.tlg), 6)
    ('primary tumour', 125, 1.0, 4.0, 4.0)

    The expert mask of the bundled real sample (a sarcoma):

    >>> import napari_hnc
    >>> row = napari_hnc.quantify(napari_hnc.load_study(napari_hnc.sample_study_path())).iloc[0]
    >>> row.class_name, round(float(row.volume_ml), 1), round(float(row.suv_max), 2), round(float(row.suv_peak), 2)
    ('primary tumour', 365.3, 7.72, 5.96)
    """
    volume = _labels_volume(study, labels)
    sampler = pet_sampler(study, volume)
    found = instance_lesions(np.asarray(volume.array), volume.metadata.get("instances"))
    lesions = sorted(found, key=lambda l: (l.label, -l.n_voxels, l.id))
    rows = [lesion_row(lesion, sampler, volume) for lesion in lesions]
    table = pd.DataFrame(rows, columns=COLUMNS[2:])
    table.insert(0, "lesion", np.arange(1, len(table) + 1))
    table.insert(0, "case_id", getattr(study, "case_id", ""))
    return table


def lesion_row(lesion: Lesion, sampler, volume: Volume, around: "PetAround | None" = None) -> dict[str, Any]:
    """The measurements of one lesion (a row of :func:`quantify` without its number).

    ``around`` (a :class:`PetAround` holding the lesion's padded box) reuses the PET and the SUVpeak
    sphere means measured there before: a small edit of a large lesion then costs reductions, not a
    new resampling and convolution (the live lesion table).
    """
    if around is not None:
        pet, mask = around.pet, around.mask_of(lesion)
        peak = around.peak(mask)
    else:
        pet, mask = _pet_around(lesion, sampler, volume)
        peak = None
    values = pet[mask].astype(np.float64)
    inside = np.isfinite(values)
    if not inside.all():
        warnings.warn(
            f"a lesion of class {lesion.label} has {int((~inside).sum())} of {values.size} voxels outside the "
            "PET's field of view; its SUV figures use only the voxels inside",
            HncWarning,
            stacklevel=3,
        )
    n = lesion.n_voxels
    volume_ml = n * volume.voxel_volume_ml
    suv_mean = float(values[inside].mean()) if inside.any() else float("nan")
    centroid = volume.voxel_to_world(np.argwhere(lesion.mask).mean(axis=0) + [b.start for b in lesion.box])
    return {
        "instance": lesion.id,
        "class": lesion.label,
        "class_name": CLASS_NAMES.get(lesion.label, f"class {lesion.label}"),
        "n_voxels": n,
        "volume_ml": volume_ml,
        "suv_max": float(values[inside].max()) if inside.any() else float("nan"),
        "suv_mean": suv_mean,
        "suv_peak": peak if peak is not None else suv_peak(pet, mask, volume.spacing),
        "tlg": suv_mean * volume_ml,
        "centroid_x_mm": float(centroid[0]),
        "centroid_y_mm": float(centroid[1]),
        "centroid_z_mm": float(centroid[2]),
    }


class PetAround:
    """The PET in a box of the labels' grid and the SUVpeak sphere mean centred on each of its voxels.

    A lesion inside the box, at least the sphere's reach from its sides (:meth:`holds`), is measured
    from these alone; the sphere means are those of :func:`suv_peak` (NaN where less than half of the
    sphere lies on the PET).
    """

    def __init__(self, box: Sequence[slice], sampler, volume: Volume, radius_mm: float = PEAK_RADIUS_MM) -> None:
        self.box = tuple(box)
        self.pet = sampler.box(self.box)
        self.reach = [int(math.ceil(radius_mm / s)) for s in volume.spacing]
        self._shape = tuple(volume.shape)
        kernel = _sphere_kernel(volume.spacing, radius_mm)
        total, count = _sphere_sums(self.pet, kernel)
        usable = count >= 0.5 * kernel.sum()
        self._means = np.where(usable, total / np.maximum(count, 1e-12), np.nan)

    @classmethod
    def for_lesion(cls, lesion: Lesion, sampler, volume: Volume, margin: int = 0) -> "PetAround":
        """The lesion's box grown by the sphere's reach and ``margin`` voxels more (room for later edits)."""
        return cls(_padded_box(lesion, volume, margin), sampler, volume)

    def holds(self, lesion: Lesion) -> bool:
        """Whether the lesion and every SUVpeak sphere on it lie in the box (sides at the grid's edge excepted)."""
        return all((o.start == 0 or b.start - o.start >= r) and (o.stop == n or o.stop - b.stop >= r)
                   for b, o, r, n in zip(lesion.box, self.box, self.reach, self._shape))

    def mask_of(self, lesion: Lesion) -> np.ndarray:
        return _mask_in(lesion, self.box, self.pet.shape)

    def peak(self, mask: np.ndarray) -> float:
        means = self._means[mask]
        return float(np.nanmax(means)) if means.size and np.isfinite(means).any() else float("nan")


def _pet_around(lesion: Lesion, sampler, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The PET in the lesion's box grown by the SUVpeak radius, and the lesion's mask in it."""
    box = _padded_box(lesion, volume)
    pet = sampler.box(box)
    return pet, _mask_in(lesion, box, pet.shape)


def _padded_box(lesion: Lesion, volume: Volume, margin: int = 0) -> tuple[slice, ...]:
    """The lesion's box grown by the SUVpeak sphere's reach and ``margin`` voxels more, within the grid."""
    pad = [int(math.ceil(PEAK_RADIUS_MM / s)) + margin for s in volume.spacing]
    return tuple(slice(max(b.start - p, 0), min(b.stop + p, n)) for b, p, n in zip(lesion.box, pad, volume.shape))


def _mask_in(lesion: Lesion, box: Sequence[slice], shape: Sequence[int]) -> np.ndarray:
    """The lesion's mask in an array of ``shape`` covering ``box`` of the grid."""
    mask = np.zeros(tuple(shape), bool)
    mask[tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(lesion.box, box))] = lesion.mask
    return mask


def _sphere_kernel(spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """The SUVpeak sphere: the voxels whose centres lie within ``radius_mm`` of the centre voxel (float64)."""
    reach = [int(math.floor(radius_mm / s + 1e-9)) for s in spacing]
    return ball([2 * r + 1 for r in reach], reach, spacing, radius_mm).astype(np.float64)


def _sphere_sums(pet: np.ndarray, kernel: np.ndarray, count: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The PET summed over the sphere centred on every voxel (NaN left out), and how many PET voxels each holds."""
    from scipy.signal import fftconvolve

    valid = np.isfinite(pet)
    total = fftconvolve(np.where(valid, pet, 0.0).astype(np.float64), kernel, mode="same")
    return total, fftconvolve(valid.astype(np.float64), kernel, mode="same") if count else None


def suv_peak(pet: np.ndarray, mask: np.ndarray, spacing: Sequence[float], radius_mm: float = PEAK_RADIUS_MM) -> float:
    """Highest mean SUV in a sphere of ``radius_mm`` (1 cm3 by default) centred on a voxel of ``mask``.

    The sphere is the set of voxels whose centres lie within ``radius_mm`` of its
    centre; it may reach beyond the lesion (PERCIST). ``pet`` must extend at
    least ``radius_mm`` beyond the mask to see the whole sphere; NaN voxels (no
    PET) are left out of the mean, and centres with less than half of the sphere
    on the PET are not used.

    Examples
    --------
    >>> pet = np.zeros((21, 21, 21)); pet[10, 10, 10] = 100.0
    >>> mask = np.zeros(pet.shape, bool); mask[8:13, 8:13, 8:13] = True
    >>> round(suv_peak(pet, mask, (1.0, 1.0, 1.0), 1.0), 6)  # 7 voxels within 1 mm
    14.285714
    """
    if not mask.any():
        return float("nan")
    kernel = _sphere_kernel(spacing, radius_mm)
    reach = [n // 2 for n in kernel.shape]
    whole = bool(np.isfinite(pet).all()) and _inside_by(mask, reach)  # every sphere lies on the PET
    total, count = _sphere_sums(pet, kernel, count=not whole)
    if count is None:  # its count is the kernel's
        return float(total[mask].max() / kernel.sum())
    usable = mask & (count >= 0.5 * kernel.sum())
    if not usable.any():
        return float("nan")
    return float((total[usable] / count[usable]).max())


def _inside_by(mask: np.ndarray, reach: Sequence[int]) -> bool:
    """Whether every True voxel of ``mask`` lies at least ``reach`` voxels (per axis) inside the array."""
    for axis, r in enumerate(reach):
        if r and (mask.take(range(r), axis=axis).any() or mask.take(range(mask.shape[axis] - r, mask.shape[axis]),
                                                                    axis=axis).any()):
            return False
    return True


def study_totals(table: pd.DataFrame) -> dict[str, float]:
    """Study totals of a :func:`quantify` table: MTV of the primary, of the nodes, total tumour burden.

    Returns ``n_lesions``, ``n_primary``, ``n_nodes``, ``mtv_primary_ml``,
    ``mtv_nodes_ml``, ``total_tumour_burden_ml`` (all lesions), ``tlg_primary``,
    ``tlg_nodes``, ``tlg_total`` and ``suv_max`` (NaN without lesions).

    >>> t = pd.DataFrame({"class": [1, 2, 2], "volume_ml": [10.0, 2.0, 1.0], "tlg": [50.0, 6.0, 2.0],
    ...                   "suv_max": [9.0, 4.0, 3.0]})
    >>> totals = study_totals(t)
    >>> totals["mtv_primary_ml"], totals["mtv_nodes_ml"], totals["total_tumour_burden_ml"], totals["tlg_nodes"]
    (10.0, 3.0, 13.0, 8.0)
    """
    primary, nodes = table[table["class"] == PRIMARY], table[table["class"] == NODE]
    return {
        "n_lesions": int(len(table)),
        "n_primary": int(len(primary)),
        "n_nodes": int(len(nodes)),
        "mtv_primary_ml": float(primary["volume_ml"].sum()),
        "mtv_nodes_ml": float(nodes["volume_ml"].sum()),
        "total_tumour_burden_ml": float(table["volume_ml"].sum()),
        "tlg_primary": float(primary["tlg"].sum()),
        "tlg_nodes": float(nodes["tlg"].sum()),
        "tlg_total": float(table["tlg"].sum()),
        "suv_max": float(table["suv_max"].max()) if len(table) else float("nan"),
    }


def _labels_volume(study, labels: Volume | np.ndarray | None) -> Volume:
    if labels is None:
        labels = study.labels
    if labels is None:
        raise StudyError(
            f"study {getattr(study, 'case_id', '')} has no labels to quantify; pass labels=... (a Volume, or "
            "an array on the label grid) or load the study with labels"
        )
    if isinstance(labels, Volume):
        volume = labels.with_array(as_label_array(np.asarray(labels.array)))
    else:
        array = np.asarray(labels)
        if array.shape != study.grid.shape:
            raise GeometryError(
                f"labels of shape {array.shape} do not fit the study's label grid {study.grid.shape}; "
                "pass them as a Volume (with their affine) instead"
            )
        volume = study.grid.with_array(as_label_array(array), role="labels")
    check_classes(volume, getattr(study, "case_id", ""))
    return volume


def check_classes(labels: Volume, case_id: str = "") -> None:
    """Refuse labels holding values other than 0, 1 and 2: they would count in no class, or be guessed into one.

    Raises
    ------
    StudyError
        Naming the values, where they come from and how to fix them.
    """
    extra = unknown_classes(labels.array)
    if extra:
        source = labels.metadata.get("source_path") or labels.metadata.get("path") or f"the labels of {case_id or 'the study'}"
        raise StudyError(
            f"{source} holds label values {extra}, which are not classes (1 primary tumour, 2 lymph node); "
            "they would count in neither the primary nor the nodes, so napari-hnc does not measure them. "
            f"Relabel them to 1, 2 or 0 (background) -- in napari with the fill tool, or in Python: "
            f"labels[labels == {extra[0]}] = 2 -- and quantify again"
        )
