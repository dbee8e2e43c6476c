"""Click-guided refinement, one lesion at a time, on a region of interest: :class:`RefinementSession`.

The session keeps a *target*: the labels array on the study's label grid
(like nnInteractive's session). Every call changes the target only inside one
region of interest and returns a :class:`RegionUpdate` with that region's
slices and its new labels, so a GUI refreshes only that box and the user's
labels elsewhere are never touched.

A positive click outside the current lesion's ROI (or of another class) starts
a new lesion with a ROI centred on it; clicks inside it refine that lesion.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..clicks import Click
from ..conventions import PRIMARY, class_value
from ..errors import ClickError, GeometryError, ModelError, StudyError
from ..geometry import Volume
from ..io.nifti import as_label_array
from ..models.registry import CLICK_ALIAS, find_model, load_model
from ..models.weights_io import Model
from ..study import Study
from .device import DeviceConfig
from .engines import Engine, LesionState, ModelEngine, ThresholdEngine
from .region import RegionUpdate, Slices, UndoStep, bounding_box, component_at

log = logging.getLogger(__name__)

UNDO_DEPTH = 50


class RefinementSession:
    """Refine lesions by clicks (and by the user's own edits) on a region of interest.

    Parameters
    ----------
    model : str, path, Model or None
        A click-guided model (name, alias, card path or loaded). The default
        ``"click"`` falls back to the PET threshold tools when no click-guided
        model is installed; ``None`` uses the PET threshold tools directly.
    device : str
        As for :func:`napari_hnc.segment`.
    threshold : str
        Method of the PET threshold fallback (``napari_hnc.pet.segment_from_seed``).
    keep_clicked_only : bool
        Keep only the parts of the network's mask connected to a positive click.

    Examples
    --------
    With an installed click-guided model (or the PET threshold fallback):
    ``session = napari_hnc.RefinementSession()``. Here a randomly initialised
    network of the bundled size stands in for one:

    >>> import napari_hnc
    >>> from napari_hnc.models import Model, preset_card
    >>> study = napari_hnc.load_study(napari_hnc.sample_study_path())
    >>> session = napari_hnc.RefinementSession(Model.random(preset_card("click"), seed=0), device="cpu")
    >>> session.set_study(study.with_labels(None))
    >>> update = session.add_click(study.ct.center_world(), positive=True, label_class="primary")
    >>> update.action, update.generation, update.labels.shape == session.target[update.slices].shape
    ('click', 1, True)
    >>> shown = session.target.copy()  # e.g. a napari Labels layer's data
    >>> update.apply(shown)
    """

    def __init__(
        self,
        model: str | os.PathLike | Model | None = CLICK_ALIAS,
        device: str = "auto",
        *,
        threshold: str = "percent",
        threshold_params: dict | None = None,
        keep_clicked_only: bool = True,
        threads: int | None = None,
    ) -> None:
        self.engine: Engine = _make_engine(model, device, threads, threshold, threshold_params or {}, keep_clicked_only)
        self._study: Study | None = None
        self._target: np.ndarray | None = None
        self._lesion: LesionState | None = None
        self._undo: list[UndoStep] = []
        self.generation = 0

    # ----------------------------------------------------------------- state
    @property
    def method(self) -> str:
        """What proposes the masks: ``"model <name>"`` or ``"PET threshold (<method>)"``."""
        return self.engine.name

    @property
    def target(self) -> np.ndarray:
        """The labels array (uint8, label grid) this session writes into."""
        if self._target is None:
            raise StudyError("no study is set; call set_study(study) first")
        return self._target

    @property
    def labels(self) -> Volume:
        """The target as a labels Volume on the study's label grid (sharing the array)."""
        study = self._require_study()
        return study.grid.with_array(self.target, role="labels", path=None)

    def set_study(self, study: Study, target: np.ndarray | Volume | None = None) -> None:
        """Start refining ``study``; ``target`` (an array written in place) defaults to a copy of its labels."""
        self.engine.check_study(study)
        if target is None:
            source = study.labels.array if study.labels is not None else np.zeros(study.grid.shape, np.uint8)
            target = np.array(as_label_array(np.asarray(source)), copy=True)
        elif isinstance(target, Volume):
            if not target.same_grid(study.grid):
                raise GeometryError("the target labels are not on the study's label grid; resample them first")
            target = target.array
        if tuple(np.shape(target)) != study.grid.shape or np.asarray(target).dtype != np.uint8:
            raise GeometryError(
                f"the target must be a uint8 array of the label grid's shape {study.grid.shape}, "
                f"got {np.asarray(target).dtype} {np.shape(target)}"
            )
        self._study, self._target, self._lesion, self._undo, self.generation = study, target, None, [], 0

    # ----------------------------------------------------------------- interactions
    def add_click(self, world_mm: Sequence[float], positive: bool = True, label_class: int | str = PRIMARY) -> RegionUpdate:
        """Add a click at a world RAS point (mm) and refine the lesion it belongs to.

        Raises
        ------
        ClickError
            The point lies outside the volume, or the class is not 1/2.
        """
        study = self._require_study()
        try:
            click = Click(tuple(world_mm), bool(positive), class_value(label_class))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ClickError(str(exc)) from None
        index = study.grid.world_to_index(click.world, what="click")
        previous = self._saved_lesion()
        lesion = self._lesion_for(index, click)
        if lesion is None:
            log.info("negative click on background with no lesion being refined: nothing to change")
            return self._update(self._no_lesion_region(index), "click", changed=False)
        self._push(lesion.roi.slices, previous)
        lesion.clicks.append((lesion.roi.local(index), click.positive))
        try:
            proposal = self.engine.propose(study, lesion)
        except BaseException:
            self._undo.pop()  # nothing was written: forget the click, keep the previous lesion
            self._lesion = previous
            raise
        self._write(lesion, proposal)
        return self._update(lesion.roi.slices, "click")

    def set_mask(self, region_labels: np.ndarray, slices: Sequence[slice] | None = None, *, refine: bool = True) -> RegionUpdate | None:
        """Take the user's edited labels (whole grid, or the region ``slices``) into the target.

        When the edit lies within the lesion being refined and a click-guided
        model is in use (and ``refine``), the model re-runs on that lesion with
        the edited mask as its previous mask and the strokes as guidance; the
        strokes are kept. Returns None when nothing changed.
        """
        target = self.target
        edited = as_label_array(np.asarray(region_labels), source="set_mask")
        slices = tuple(slices) if slices is not None else tuple(slice(0, n) for n in target.shape)
        if edited.shape != target[slices].shape:
            raise GeometryError(f"set_mask got labels of shape {edited.shape} for a region of shape {target[slices].shape}")
        changed = edited != target[slices]
        if not changed.any():
            return None
        box = bounding_box(changed, offset=[s.start for s in slices])
        local = tuple(slice(b.start - s.start, b.stop - s.start) for b, s in zip(box, slices))
        lesion = self._lesion
        if lesion is not None and lesion.roi.contains_box(box):
            return self._edit_lesion(lesion, box, edited[local], refine)
        self._push(box)
        target[box] = edited[local]
        if lesion is not None:
            lesion.mask = lesion.mask & (target[lesion.roi.slices] == lesion.label)
        return self._update(box, "edit")

    def undo(self) -> RegionUpdate | None:
        """Undo the last click, edit or reset; None when there is nothing to undo."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self.target[step.slices] = step.labels
        self._lesion = step.lesion
        return self._update(step.slices, "undo")

    def reset(self) -> RegionUpdate | None:
        """Forget the current lesion's clicks and restore its region as it was before them (undoable)."""
        lesion = self._lesion
        if lesion is None:
            return None
        self._push(lesion.roi.slices)
        region, initial = self.target[lesion.roi.slices], lesion.cache["initial"]
        region[lesion.mask] = 0
        region[initial] = lesion.cache["before"][initial]
        self._lesion = None
        return self._update(lesion.roi.slices, "reset")

    def next_lesion(self) -> None:
        """Finish the current lesion; the next click starts a new one."""
        self._lesion = None

    # ----------------------------------------------------------------- internals
    def _require_study(self) -> Study:
        if self._study is None:
            raise StudyError("no study is set; call set_study(study) first")
        return self._study

    def _lesion_for(self, index: tuple[int, int, int], click: Click) -> LesionState | None:
        current = self._lesion
        if current is not None and current.roi.contains(index) and (not click.positive or click.label == current.label):
            return current
        value = int(self.target[index])
        if not click.positive and value == 0:
            return None
        study = self._require_study()
        roi = self.engine.roi_for(study, np.asarray(click.world))
        region = self.target[roi.slices]
        mask = component_at(region == value, roi.local(index)) if value else np.zeros(roi.shape, bool)
        label = click.label if click.positive else value
        lesion = LesionState(label, roi, mask)
        lesion.cache.update(before=region.copy(), initial=mask.copy())
        self._lesion = lesion
        return lesion

    def _edit_lesion(self, lesion: LesionState, box: Slices, values: np.ndarray, refine: bool) -> RegionUpdate:
        roi = lesion.roi
        self._push(roi.slices)
        region = self.target[roi.slices]
        local = tuple(slice(b.start - s.start, b.stop - s.start) for b, s in zip(box, roi.slices))
        old = region[local].copy()
        region[local] = values
        painted, erased = np.zeros(roi.shape, bool), np.zeros(roi.shape, bool)
        painted[local] = (values == lesion.label) & (old != lesion.label)
        erased[local] = (old == lesion.label) & (values != lesion.label)
        lesion = replace(lesion, clicks=list(lesion.clicks), cache=lesion.cache)
        lesion.painted = painted if lesion.painted is None else (lesion.painted & ~erased) | painted
        lesion.erased = erased if lesion.erased is None else (lesion.erased & ~painted) | erased
        lesion.mask = ((lesion.mask | painted) & ~erased) & (region == lesion.label)
        self._lesion = lesion
        if refine and isinstance(self.engine, ModelEngine):
            proposal = self.engine.propose(self._require_study(), lesion)
            self._write(lesion, (proposal | lesion.painted) & ~lesion.erased)
        return self._update(roi.slices, "edit")

    def _write(self, lesion: LesionState, proposal: np.ndarray) -> None:
        region = self.target[lesion.roi.slices]
        region[lesion.mask & ~proposal] = 0
        add = proposal & ((region == 0) | lesion.mask)
        region[add] = lesion.label
        lesion.mask = add

    def _saved_lesion(self) -> LesionState | None:
        lesion = self._lesion
        return None if lesion is None else replace(lesion, mask=lesion.mask.copy(), clicks=list(lesion.clicks))

    def _push(self, slices: Slices, lesion: LesionState | None | bool = True) -> None:
        saved = self._saved_lesion() if lesion is True else lesion
        self._undo.append(UndoStep(tuple(slices), self.target[tuple(slices)].copy(), saved))  # type: ignore[arg-type]
        del self._undo[:-UNDO_DEPTH]

    def _update(self, slices: Slices, action: str, *, changed: bool = True) -> RegionUpdate:
        if changed:
            self.generation += 1
        return RegionUpdate(tuple(slices), self.target[tuple(slices)].copy(), self.generation, action)  # type: ignore[arg-type]

    def _no_lesion_region(self, index: tuple[int, int, int]) -> Slices:
        return tuple(slice(i, i + 1) for i in index)  # type: ignore[return-value]


def _make_engine(model, device, threads, threshold, params, keep_clicked_only) -> Engine:
    """The click-guided model asked for; PET thresholds when none is asked for or none is installed.

    Only a *missing* default click model falls back: one that is installed but
    unusable (card and weights do not match) raises, so a broken model is never
    silently replaced by thresholds.
    """
    if model is None:
        return ThresholdEngine(threshold, **params)
    if isinstance(model, str) and model == CLICK_ALIAS:
        try:
            entry = find_model(CLICK_ALIAS, task="click")
        except ModelError as exc:
            log.info("no click-guided model installed (%s); refining with PET thresholds (%s)", exc, threshold)
            return ThresholdEngine(threshold, **params)
        loaded = entry.load()
    else:
        loaded = load_model(model)
    return ModelEngine(loaded, DeviceConfig.create(device, threads), keep_clicked_only=keep_clicked_only)
