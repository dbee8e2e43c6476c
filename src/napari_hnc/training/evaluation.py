"""Cohort evaluation of automatic segmentations against reference labels (``napari-hnc evaluate``).

Per case (rows of :func:`case_table`): Dice, HD95, structure-wise counts,
TPR/PPV and volumes for the primary tumour, the nodes and their union (from
:func:`napari_hnc.training.metrics.case_metrics`), plus the voxels that both
call lesion and how many of those got the right class (primary against node).

Over the cohort (:func:`cohort_summary`): mean and median Dice per target, the
Dice of all voxels pooled, mean HD95 over cases where both masks exist, pooled
TPR/PPV, the count of failures (Dice 0 where the reference has a lesion), and
the agreement of the metabolic tumour volumes (primary MTV, node MTV, total
tumour burden = union): R² (squared Pearson correlation), mean difference and
mean absolute difference in ml.

Examples
--------
>>> import numpy as np
>>> ref = np.zeros((8, 8, 8), np.uint8); ref[1:4, 1:4, 1:4] = 1; ref[5:7, 5:7, 5:7] = 2
>>> pred = ref.copy(); pred[5:7, 5:7, 5:7] = 1          # the node found, but called primary
>>> table = case_table("A", pred, ref, (2.0, 2.0, 2.0))
>>> float(table.set_index("target").loc["union", "dice"]), float(table["class_accuracy"].iloc[0])
(1.0, 0.7714285714285715)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .metrics import StructureCounts, case_metrics

#: Volume columns whose agreement is reported: target -> name in the summary.
MTV_NAMES = {"primary": "mtv_primary", "node": "mtv_nodes", "union": "total_tumour_burden"}


def class_agreement(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int]:
    """``(both, same)``: voxels that both call lesion, and those of them with the same class.

    >>> class_agreement(np.array([1, 2, 2, 0]), np.array([1, 1, 2, 2]))
    (3, 2)
    """
    both = (pred > 0) & (ref > 0)
    return int(np.count_nonzero(both)), int(np.count_nonzero(both & (pred == ref)))


def case_table(case_id: str, pred, ref, spacing: Sequence[float] | None = None, *, min_volume_ml: float = 0.0) -> pd.DataFrame:
    """All metrics of one case, one row per target (primary, node, union)."""
    table = case_metrics(pred, ref, spacing, min_volume_ml=min_volume_ml)
    p = np.asarray(getattr(pred, "array", pred))
    r = np.asarray(getattr(ref, "array", ref))
    both, same = class_agreement(p, r)
    table.insert(0, "case_id", case_id)
    table["lesion_voxels_both"] = both
    table["class_agreeing_voxels"] = same
    table["class_accuracy"] = same / both if both else math.nan
    return table


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def cohort_summary(cases: pd.DataFrame) -> pd.DataFrame:
    """One row per target with the cohort figures (see the module docstring).

    >>> rows = [case_table(c, np.array([[[1, 1, 0]]]) * k, np.array([[[1, 0, 0]]]), (1, 1, 1)) for c, k in (("a", 1), ("b", 0))]
    >>> summary = cohort_summary(pd.concat(rows)).set_index("target")
    >>> summary.loc["primary", ["dice_mean", "dice_pooled", "failures", "cases"]].tolist()
    [0.3333333333333333, 0.5, 1.0, 2.0]
    """
    rows = []
    for target, group in cases.groupby("target", sort=False):
        counts = sum(StructureCounts(*map(int, r)) for r in group[["tp_ref", "fn", "tp_pred", "fp"]].to_numpy())
        with_ref = group[group["ref_ml"] > 0]
        overlap = (group["dice"].fillna(0) * (group["ref_ml"] + group["pred_ml"])).sum() / 2
        total = (group["ref_ml"] + group["pred_ml"]).sum()
        finite = group["hd95_mm"][np.isfinite(group["hd95_mm"])]
        ref_ml, pred_ml = group["ref_ml"].to_numpy(float), group["pred_ml"].to_numpy(float)
        rows.append({
            "target": target, "cases": len(group), "cases_with_reference": len(with_ref),
            "dice_mean": float(with_ref["dice"].mean()), "dice_median": float(with_ref["dice"].median()),
            "dice_pooled": float(2 * overlap / total) if total else math.nan,
            "hd95_mean_mm": float(finite.mean()) if len(finite) else math.nan,
            "failures": int((with_ref["dice"].fillna(0) == 0).sum()),
            "tpr": counts.tpr, "ppv": counts.ppv, "mtv": MTV_NAMES.get(str(target), str(target)),
            "mtv_r2": _r2(ref_ml, pred_ml), "mtv_mean_difference_ml": float(np.mean(pred_ml - ref_ml)),
            "mtv_mean_abs_difference_ml": float(np.mean(np.abs(pred_ml - ref_ml))),
        })
    summary = pd.DataFrame(rows)
    union = cases[cases["target"] == "union"]
    both = union["lesion_voxels_both"].sum()
    summary["class_accuracy_pooled"] = union["class_agreeing_voxels"].sum() / both if both else math.nan
    return summary
