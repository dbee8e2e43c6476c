"""The interactive protocol of autoPET IV, run through :class:`napari_hnc.RefinementSession` itself,
so the figures describe what a user gets from the click-guided model.

For every reference lesion (a 26-connected component of one class on the label
grid) a session starts on the study -- with no labels, or with an automatic
segmentation (``initial``) -- and clicks are simulated: the first at the
lesion's centre of mass (its voxel nearest to it), each further one at the
centre of the largest error region between the lesion as the session now
labels it and the reference, positive in a missed part, negative in a false
one (:func:`~.clicksim.error_click`, in mm on the CT grid), given to the session
as a corrective click for the lesion the first click made (``lesion=``). The lesion as labelled
is the connected parts of the labels that overlap the reference lesion or hold
a positive click. Its Dice is recorded after 0, 1, 2, 3 and 5 clicks.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import HncError
from ..geometry import Volume
from ..study import Study
from .cache import find_lesions
from .clicksim import error_click
from .metrics import dice

log = logging.getLogger(__name__)

CLICK_COUNTS = (0, 1, 2, 3, 5)
_FULL = np.ones((3, 3, 3), bool)
MARGIN = 10


def _box(mask_box: Sequence[slice], shape, margin: int, extra: Sequence[slice] | None = None):
    box = [slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(mask_box, shape)]
    if extra is not None:
        box = [slice(min(b.start, e.start), max(b.stop, e.stop)) for b, e in zip(box, extra)]
    return tuple(box)


def labelled_lesion(labels: np.ndarray, truth: np.ndarray, positives: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """The connected parts of ``labels > 0`` that overlap ``truth`` or hold one of ``positives``.

    >>> labels = np.zeros((1, 1, 7), np.uint8); labels[..., 0:2] = 1; labels[..., 4:6] = 2
    >>> truth = np.zeros(labels.shape, bool); truth[..., 1:3] = True
    >>> labelled_lesion(labels, truth, [])[0, 0].astype(int).tolist()
    [1, 1, 0, 0, 0, 0, 0]
    """
    components, _ = ndimage.label(labels > 0, _FULL)
    keep = set(np.unique(components[truth]).tolist()) | {int(components[p]) for p in positives}
    keep.discard(0)
    return np.isin(components, list(keep))


def run_lesion(session, study: Study, truth: np.ndarray, label: int, centre: Sequence[int], *,
               initial: Volume | None = None, clicks: int = 5) -> list[dict]:
    """Dice of one lesion after 0..``clicks`` simulated clicks (one dict per click count)."""
    grid = study.grid
    session.set_study(study.with_labels(initial))
    found = ndimage.find_objects(truth.astype(np.uint8))[0]
    box = _box(found, grid.shape, MARGIN)
    positives: list[tuple[int, int, int]] = []
    rows = [{"clicks": 0, "dice": dice(labelled_lesion(session.target[box], truth[box], []), truth[box], empty=0.0),
             "positive": None, "click_world": None}]
    point, positive = tuple(int(v) for v in centre), True
    lesion = None  # after the first click, the corrective clicks are for the lesion it made
    for number in range(1, clicks + 1):
        world = grid.voxel_to_world(np.asarray(point, float))
        try:
            update = session.add_click(world, positive=positive, label_class=label, lesion=lesion)
            lesion = update.lesion if update.lesion in session.annotation else None
        except HncError as exc:
            log.warning("%s: click %d failed (%s); the lesion keeps its last Dice", study.case_id, number, exc)
            rows += [{**rows[-1], "clicks": k} for k in range(number, clicks + 1)]
            break
        if positive:
            positives.append(point)
        box = _box(found, grid.shape, MARGIN, update.slices)
        offset = np.array([s.start for s in box])
        local_pos = [tuple(int(v) for v in np.asarray(p) - offset) for p in positives if _inside(p, box)]
        pred = labelled_lesion(session.target[box], truth[box], local_pos)
        rows.append({"clicks": number, "dice": dice(pred, truth[box], empty=0.0), "positive": positive,
                     "click_world": [round(float(v), 2) for v in world]})
        nxt = error_click(pred, truth[box], grid.spacing)
        if nxt is None:
            rows += [{**rows[-1], "clicks": k, "positive": None, "click_world": None} for k in range(number + 1, clicks + 1)]
            break
        point, positive = tuple(int(v) for v in np.asarray(nxt[0]) + offset), nxt[1]
    return rows


def _inside(point: Sequence[int], box: Sequence[slice]) -> bool:
    return all(s.start <= p < s.stop for p, s in zip(point, box))


def evaluate_clicks(session, studies: Sequence[Study], *, initial: Sequence[Volume | None] | None = None,
                    clicks: int = max(CLICK_COUNTS), progress=None) -> pd.DataFrame:
    """One row per lesion and click count: ``case_id``, ``lesion``, ``class``, ``volume_ml``, ``clicks``, ``dice``, ...

    ``session`` is a :class:`napari_hnc.RefinementSession`; each study needs reference labels.
    """
    rows = []
    for index, study in enumerate(studies):
        if progress is not None:
            progress(index, len(studies), study.case_id)
        if study.labels is None:
            raise HncError(f"study {study.case_id} has no reference labels to evaluate clicks against")
        ids, lesions = find_lesions(np.asarray(study.labels.array))
        for lesion in lesions:
            truth = ids == lesion["id"]
            start = None if initial is None else initial[index]
            for row in run_lesion(session, study, truth, lesion["class"], lesion["centre"], initial=start, clicks=clicks):
                rows.append({"case_id": study.case_id, "lesion": lesion["id"], "lesion_key": f"{study.case_id}/{lesion['id']}",
                             "class": lesion["class"], "volume_ml": lesion["voxels"] * study.grid.voxel_volume_ml, **row})
    return pd.DataFrame(rows)


def click_summary(lesions: pd.DataFrame, counts: Sequence[int] = CLICK_COUNTS) -> pd.DataFrame:
    """Mean and median lesion Dice (all lesions, and per class) after each click count in ``counts``.

    >>> t = pd.DataFrame({"clicks": [0, 1, 0, 1], "dice": [0.0, 0.8, 0.0, 0.9], "class": [1, 1, 2, 2]})
    >>> click_summary(t, (0, 1))[["clicks", "dice_mean", "dice_mean_node"]].round(3).values.tolist()
    [[0.0, 0.0, 0.0], [1.0, 0.85, 0.9]]
    """
    rows = []
    for count in counts:
        group = lesions[lesions["clicks"] == count]
        row = {"clicks": count, "lesions": len(group), "dice_mean": float(group["dice"].mean()),
               "dice_median": float(group["dice"].median())}
        for label, name in ((1, "primary"), (2, "node")):
            part = group[group["class"] == label]["dice"]
            row[f"dice_mean_{name}"] = float(part.mean()) if len(part) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
