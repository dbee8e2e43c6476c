"""Segmentation metrics: Dice per case and per cohort, HD95 in mm, structure-wise TPR/PPV.

Every metric takes a prediction and a reference as label arrays (with the voxel
``spacing`` in mm where distances matter) or as :class:`~napari_hnc.Volume` objects
on the same grid, and a ``label``: 1 (primary tumour), 2 (lymph node) or None for
the union of all lesions (total tumour burden). :func:`case_metrics` gives them all.

Examples
--------
>>> import numpy as np
>>> ref = np.zeros((10, 10, 10), np.uint8); ref[2:6, 2:6, 2:6] = 1
>>> pred = np.zeros_like(ref); pred[2:6, 2:6, 3:7] = 1
>>> dice(pred, ref)
0.75
>>> hd95(pred, ref, spacing=(1.0, 1.0, 2.5))
2.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..conventions import NODE, PRIMARY
from ..errors import GeometryError

#: Targets evaluated by :func:`case_metrics`: name -> label (None: the union of all lesions).
TARGETS: dict[str, int | None] = {"primary": PRIMARY, "node": NODE, "union": None}
#: Lesion coverage needed to count as found (Nikulin et al. 2023, after their ref. 74).
COVERAGE = 0.5


def _arrays(pred: Any, ref: Any, spacing: Sequence[float] | None = None):
    """``(pred, ref, spacing)`` as arrays; Volumes must share a grid and give their spacing."""
    from ..geometry import Volume

    if isinstance(pred, Volume) or isinstance(ref, Volume):
        if not (isinstance(pred, Volume) and isinstance(ref, Volume)):
            raise GeometryError("pass the prediction and the reference both as Volumes, or both as arrays")
        if not pred.same_grid(ref):
            raise GeometryError(
                f"the prediction (shape {pred.shape}) and the reference (shape {ref.shape}) are on different "
                "grids; resample the prediction onto the reference with resample_to(pred, ref, 'nearest')"
            )
        spacing = pred.spacing if spacing is None else spacing
        pred, ref = pred.array, ref.array
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise GeometryError(f"the prediction {pred.shape} and the reference {ref.shape} differ in shape")
    return pred, ref, None if spacing is None else tuple(float(s) for s in spacing)


def _select(array: np.ndarray, label: int | None) -> np.ndarray:
    return array > 0 if label is None else array == label


def dice(pred: Any, ref: Any, label: int | None = None, *, empty: float = math.nan) -> float:
    """Dice similarity 2|P∩R| / (|P| + |R|) of one case; ``empty`` when both are empty.

    >>> dice(np.array([[[1, 1, 0, 2]]]), np.array([[[1, 0, 0, 2]]]), label=1)
    0.6666666666666666
    """
    pred, ref, _ = _arrays(pred, ref)
    p, r = _select(pred, label), _select(ref, label)
    return _ratio(2 * int(np.count_nonzero(p & r)), int(np.count_nonzero(p)) + int(np.count_nonzero(r)), empty)


def cohort_dice(preds: Iterable[Any], refs: Iterable[Any], label: int | None = None) -> float:
    """Dice of the voxels of all cases pooled: 2 Σ|P∩R| / Σ(|P| + |R|) (NaN when all are empty).

    >>> a, b = np.array([[[1, 1]]]), np.array([[[1, 0]]])
    >>> cohort_dice([a, b], [a, np.array([[[0, 0]]])])
    0.8
    """
    overlap = total = 0
    for pred, ref in zip(preds, refs, strict=True):
        pred, ref, _ = _arrays(pred, ref)
        p, r = _select(pred, label), _select(ref, label)
        overlap += int(np.count_nonzero(p & r))
        total += int(np.count_nonzero(p)) + int(np.count_nonzero(r))
    return _ratio(2 * overlap, total, math.nan)


def _ratio(num: int, den: int, empty: float) -> float:
    return float(num) / den if den else float(empty)


def surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each border voxel of ``pred`` to the border of ``ref``, and back.

    A border voxel is a voxel of the mask with a face-neighbour outside it (or on
    the array's edge). Both masks must be non-empty.
    """
    from scipy import ndimage

    box = _union_box(pred | ref)
    pred, ref = pred[box], ref[box]
    cross = ndimage.generate_binary_structure(3, 1)
    borders = [m & ~ndimage.binary_erosion(m, structure=cross, border_value=0) for m in (pred, ref)]
    to_ref = ndimage.distance_transform_edt(~borders[1], sampling=spacing)[borders[0]]
    to_pred = ndimage.distance_transform_edt(~borders[0], sampling=spacing)[borders[1]]
    return to_ref, to_pred


def _union_box(mask: np.ndarray) -> tuple[slice, ...]:
    from ..pet.grow import bounding_slices

    return bounding_slices(mask, (1, 1, 1)) or tuple(slice(0, n) for n in mask.shape)


def hd95(pred: Any, ref: Any, spacing: Sequence[float] | None = None, label: int | None = None) -> float:
    """95th percentile of the symmetric surface distances, in mm (anisotropic spacing respected).

    The distances from the prediction's border to the reference's and back are
    pooled before taking the percentile (the convention of medpy and HECKTOR).
    NaN when both masks are empty, infinity when only one is.

    >>> ref = np.zeros((1, 1, 9), bool); ref[..., 2:5] = True
    >>> hd95(np.roll(ref, 2, axis=2), ref, spacing=(1.0, 1.0, 3.0))
    6.0
    """
    pred, ref, spacing = _arrays(pred, ref, spacing)
    if spacing is None:
        raise GeometryError("hd95 needs the voxel spacing in mm: pass spacing=(sx, sy, sz), or Volumes")
    p, r = _select(pred, label), _select(ref, label)
    if not p.any() or not r.any():
        return math.nan if not p.any() and not r.any() else math.inf
    return float(np.percentile(np.concatenate(surface_distances(p, r, spacing)), 95))


@dataclass(frozen=True)
class StructureCounts:
    """Lesion-wise counts: reference lesions found (``tp_ref``) or missed (``fn``), predicted
    lesions that match a reference lesion (``tp_pred``) or not (``fp``). Add them to pool a cohort."""

    tp_ref: int = 0
    fn: int = 0
    tp_pred: int = 0
    fp: int = 0

    @property
    def tpr(self) -> float:
        """Lesion detection rate TP_ref / (TP_ref + FN) (NaN without reference lesions)."""
        return _ratio(self.tp_ref, self.tp_ref + self.fn, math.nan)

    @property
    def ppv(self) -> float:
        """Positive predictive value TP_pred / (TP_pred + FP) (NaN without predicted lesions)."""
        return _ratio(self.tp_pred, self.tp_pred + self.fp, math.nan)

    def __add__(self, other: "StructureCounts") -> "StructureCounts":
        return StructureCounts(self.tp_ref + other.tp_ref, self.fn + other.fn,
                               self.tp_pred + other.tp_pred, self.fp + other.fp)

    def __radd__(self, other: Any) -> "StructureCounts":
        return self if other == 0 else self + other


def structure_wise(pred: Any, ref: Any, label: int | None = None, *, coverage: float = COVERAGE,
                   min_volume_ml: float = 0.0, spacing: Sequence[float] | None = None) -> StructureCounts:
    """Lesion-wise detection with the coverage rule of Nikulin et al. 2023 (seed 004).

    Lesions are 26-connected components. A reference lesion is found (TP_ref) when
    **at least** ``coverage`` (50 %) of its voxels lie in the prediction, else missed
    (FN); a predicted lesion is a true positive (TP_pred) when **over** ``coverage``
    of its voxels lie in the reference, else a false positive (FP), following the
    paper's wording. Lesions under ``min_volume_ml`` are left out of both (the
    paper drops < 0.1 ml; that needs ``spacing`` or Volumes).

    >>> ref = np.zeros((1, 1, 12), np.uint8); ref[..., 0:4] = 1; ref[..., 6:8] = 1
    >>> pred = np.zeros_like(ref); pred[..., 1:3] = 1; pred[..., 10:12] = 1
    >>> c = structure_wise(pred, ref)
    >>> (c.tp_ref, c.fn, c.tp_pred, c.fp)
    (1, 1, 1, 1)
    """
    from scipy import ndimage

    pred, ref, spacing = _arrays(pred, ref, spacing)
    p, r = _select(pred, label), _select(ref, label)
    voxel_ml = None if spacing is None else float(np.prod(spacing)) / 1000.0
    if min_volume_ml > 0 and voxel_ml is None:
        raise GeometryError("min_volume_ml needs the voxel spacing: pass spacing=(sx, sy, sz), or Volumes")
    structure = np.ones((3, 3, 3), bool)
    counts = []
    for mine, other, strict in ((r, p, False), (p, r, True)):
        components, n = ndimage.label(mine, structure=structure)
        sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
        covered = np.bincount(components[other], minlength=n + 1)[1:]
        keep = sizes * (voxel_ml or 0.0) >= min_volume_ml if min_volume_ml > 0 else np.ones(n, bool)
        fraction = covered[keep] / sizes[keep]
        hits = int(np.count_nonzero(fraction > coverage if strict else fraction >= coverage))
        counts += [hits, int(keep.sum()) - hits]
    return StructureCounts(counts[0], counts[1], counts[2], counts[3])


def case_metrics(pred: Any, ref: Any, spacing: Sequence[float] | None = None, *,
                 min_volume_ml: float = 0.0) -> pd.DataFrame:
    """All metrics of one case, one row per target (primary, node, union).

    Columns: ``target``, ``dice``, ``hd95_mm``, ``tp_ref``, ``fn``, ``tp_pred``,
    ``fp``, ``tpr``, ``ppv``, ``ref_ml``, ``pred_ml``.

    >>> ref = np.zeros((8, 8, 8), np.uint8); ref[1:4, 1:4, 1:4] = 1; ref[5:7, 5:7, 5:7] = 2
    >>> table = case_metrics(ref, ref, (2.0, 2.0, 2.0))
    >>> table[["target", "dice", "hd95_mm", "tpr", "ref_ml"]].values.tolist()
    [['primary', 1.0, 0.0, 1.0, 0.216], ['node', 1.0, 0.0, 1.0, 0.064], ['union', 1.0, 0.0, 1.0, 0.28]]
    """
    pred, ref, spacing = _arrays(pred, ref, spacing)
    if spacing is None:
        raise GeometryError("case_metrics needs the voxel spacing in mm: pass spacing=(sx, sy, sz), or Volumes")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    rows = []
    for name, label in TARGETS.items():
        counts = structure_wise(pred, ref, label, spacing=spacing, min_volume_ml=min_volume_ml)
        rows.append({
            "target": name, "dice": dice(pred, ref, label), "hd95_mm": hd95(pred, ref, spacing, label),
            "tp_ref": counts.tp_ref, "fn": counts.fn, "tp_pred": counts.tp_pred, "fp": counts.fp,
            "tpr": counts.tpr, "ppv": counts.ppv,
            "ref_ml": round(int(np.count_nonzero(_select(ref, label))) * voxel_ml, 9),
            "pred_ml": round(int(np.count_nonzero(_select(pred, label))) * voxel_ml, 9),
        })
    return pd.DataFrame(rows)
