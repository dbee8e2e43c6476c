"""Click-guided refinement of a study's lesions: :class:`RefinementSession`.

The session keeps a *target*: the labels array on the study's label grid
(like nnInteractive's session), and the lesion instances over it
(:class:`napari_hnc.annotation.Annotation`). Every call changes the target only
inside the region it reports and returns a :class:`RegionUpdate` with that
region's labels and instances, so a GUI refreshes only that box.

What a click may change is decided by :mod:`napari_hnc.annotation`, the same
rules as :func:`napari_hnc.delineate`: a positive click inside a lesion refines
it and keeps its class, one outside every lesion starts a new lesion, one at a
second PET peak of a lesion divides it; a negative click removes voxels from the
lesion it lies in only; no click takes another lesion's voxels, and touching
click lesions share their boundary along the PET watershed between their peaks.
A corrective click outside the lesion it is meant for names it (``lesion=``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..annotation import Annotation, Change, Claim
from ..clicks import Click
from ..conventions import PRIMARY, class_value
from ..errors import ClickError, GeometryError, ModelError, StudyError
from ..geometry import Volume
from ..io.nifti import as_label_array
from ..models.registry import CLICK_ALIAS, find_model, load_model
from ..models.weights_io import Model
from ..pet.delineation import apply_click, place_claim
from ..pet.params import DEFAULT_METHOD, SeedParams
from ..pet.sampling import pet_sampler
from ..study import Study
from .device import DeviceConfig
from .engines import Engine, LesionState, ModelEngine, ThresholdEngine
from .growth import describe_sides
from .region import RegionUpdate, Slices, UndoStep, bounding_box

log = logging.getLogger(__name__)

UNDO_DEPTH = 50
#: What counts as lesion-like uptake under a click for the model (the PET rules' snapping and min_suv).
MODEL_UPTAKE = SeedParams.create("percent")


class RefinementSession:
    """Refine lesions by clicks (and by the user's own edits), lesion by lesion.

    Parameters
    ----------
    model : str, path, Model or None
        A click-guided model (name, alias, card path or loaded). The default
        ``"click"`` falls back to the PET rules when no click-guided model is
        installed; ``None`` uses the PET rules directly.
    device : str
        As for :func:`napari_hnc.segment`.
    threshold : str, optional
        The PET rule of the fallback (default ``"edge"``, see :mod:`napari_hnc.pet.params`).
    keep_clicked_only : bool
        Keep only the parts of the network's mask connected to a positive click.
    max_region_mm : float, optional
        How far (mm, per axis) the click model's region may grow to hold a lesion
        that reaches its sides; default the card's ``max_region_mm`` (200 mm).
        A lesion the bound still cuts is reported in the update's ``messages``.
    zoom_out : bool
        Let the click model see a lesion that the PET rule finds larger than
        half its region at a coarser spacing (at most twice the card's), the
        same patch of voxels over more millimetres; then grow as above.

    Examples
    --------
    With an installed click-guided model (or the PET rule fallback):
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
        threshold: str | None = None,
        threshold_params: dict | None = None,
        keep_clicked_only: bool = True,
        threads: int | None = None,
        max_region_mm: float | None = None,
        zoom_out: bool = True,
    ) -> None:
        self.engine: Engine = _make_engine(model, device, threads, threshold, threshold_params or {}, keep_clicked_only,
                                           max_region_mm, zoom_out)
        self._fallback = SeedParams.create(threshold, **(threshold_params or {}))  # a cold click's PET rule
        self.last_run: dict = {}  # how the model's last proposal went: passes, seconds, region_mm, cut sides
        self._messages: list[str] = []
        self._study: Study | None = None
        self._annotation: Annotation | None = None
        self._states: dict[int, LesionState] = {}
        self._active: int | None = None
        self._undo: list[UndoStep] = []
        self._redo: list[tuple[UndoStep, UndoStep]] = []  # (the step undone, what it had made)
        self.generation = 0

    def set_engine(self, model: str | os.PathLike | Model | None = CLICK_ALIAS, device: str = "auto", *,
                   threshold: str | None = None, threshold_params: dict | None = None,
                   keep_clicked_only: bool = True, threads: int | None = None,
                   max_region_mm: float | None = None, zoom_out: bool = True) -> None:
        """Refine with another click tool from now on (the arguments of the constructor), keeping the lesions,
        the active lesion and the undo history: a click made with the old tool is undone as before.

        The lesions' model states (the click model's regions and clicks) start afresh with the new tool.
        """
        engine = _make_engine(model, device, threads, threshold, threshold_params or {}, keep_clicked_only,
                              max_region_mm, zoom_out)
        if self._study is not None:
            engine.check_study(self._study)
        self.engine = engine
        self._fallback = SeedParams.create(threshold, **(threshold_params or {}))
        self._states = {}
        self._undo = [replace(step, states={}) for step in self._undo]
        self._redo = [(replace(step, states={}), replace(made, states={})) for step, made in self._redo]

    # ----------------------------------------------------------------- state
    @property
    def method(self) -> str:
        """What proposes the masks: ``"model <name>"`` or ``"PET threshold (<method>)"``."""
        return self.engine.name

    @property
    def annotation(self) -> Annotation:
        """The lesion instances this session edits."""
        if self._annotation is None:
            raise StudyError("no study is set; call set_study(study) first")
        return self._annotation

    @property
    def target(self) -> np.ndarray:
        """The labels array (uint8, label grid) this session writes into."""
        return self.annotation.labels

    @property
    def instances(self) -> np.ndarray:
        """The lesion instance ids (uint16, label grid)."""
        return self.annotation.instances

    @property
    def active_lesion(self) -> int | None:
        """The id of the lesion being refined (the last one clicked), or None."""
        return self._active

    @property
    def labels(self) -> Volume:
        """The target as a labels Volume on the study's label grid (sharing the arrays), with its instances."""
        study = self._require_study()
        annotation = self.annotation
        return study.grid.with_array(annotation.labels, role="labels", path=None, instances=annotation.instances,
                                     provenance=annotation.provenance())

    def set_study(self, study: Study, target: np.ndarray | Volume | None = None,
                  instances: np.ndarray | None = None) -> None:
        """Start refining ``study``; ``target`` (an array written in place) defaults to a copy of its labels.

        ``instances`` (uint16, label grid) tells the target's lesions apart; by
        default they come with the study's labels, else they are the connected components.
        """
        self.engine.check_study(study)
        records = None
        if target is None:
            source = study.labels.array if study.labels is not None else np.zeros(study.grid.shape, np.uint8)
            target = np.array(as_label_array(np.asarray(source)), copy=True)
            if study.labels is not None and instances is None:
                instances = study.labels.metadata.get("instances")
                records = (study.labels.metadata.get("provenance") or {}).get("lesions")
                instances = None if instances is None else np.array(instances, copy=True)
        elif isinstance(target, Volume):
            if not target.same_grid(study.grid):
                raise GeometryError("the target labels are not on the study's label grid; resample them first")
            instances = target.metadata.get("instances") if instances is None else instances
            target = target.array
        if tuple(np.shape(target)) != study.grid.shape or np.asarray(target).dtype != np.uint8:
            raise GeometryError(
                f"the target must be a uint8 array of the label grid's shape {study.grid.shape}, "
                f"got {np.asarray(target).dtype} {np.shape(target)}"
            )
        self._study, self._annotation = study, Annotation(target, instances, records)
        self._states, self._active, self._undo, self.generation = {}, None, [], 0
        self._redo = []

    # ----------------------------------------------------------------- interactions
    def add_click(self, world_mm: Sequence[float], positive: bool = True, label_class: int | str = PRIMARY, *,
                  lesion: int | None = None) -> RegionUpdate:
        """Add a click at a world RAS point (mm), by the rules of :mod:`napari_hnc.annotation`.

        ``lesion`` names the lesion a corrective click is for when it lies outside
        it (a positive click then extends that lesion).

        Raises
        ------
        ClickError
            The point lies outside the volume, the class is not 1/2, or there is
            nothing to delineate there (no uptake; every voxel already taken).
            Nothing is changed then.
        """
        study = self._require_study()
        try:
            click = Click(tuple(world_mm), bool(positive), class_value(label_class))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ClickError(str(exc)) from None
        index = study.grid.world_to_index(click.world, what="click")
        if lesion is not None and lesion not in self.annotation:
            raise ClickError(f"there is no lesion {lesion} to refine; the lesions are {[r.id for r in self.annotation.records()]}")
        saved = (self._active, dict(self._states))
        self._messages, self.last_run = [], {}
        try:
            changes, lesion_id = self._click(study, index, click, lesion)
        except BaseException:
            self._active, self._states = saved
            raise
        if not changes:
            log.info("the click changed nothing")
            return self._update(_point_box(index), "click", changed=False)
        self._push(UndoStep(tuple(changes), saved[0], saved[1]))
        self._active = lesion_id
        return self._update(_changed_box(changes), "click", lesion=lesion_id)

    def set_mask(self, region_labels: np.ndarray, slices: Sequence[slice] | None = None, *, refine: bool = True,
                 origin: str = "edit") -> RegionUpdate | None:
        """Take the user's edited labels (whole grid, or the region ``slices``) into the target.

        Painted voxels join the lesion they touch (the one being refined first),
        erased ones leave theirs; edited lesions keep their voxels from then on.
        When the edit touches the lesion being refined and a click-guided model is
        in use (and ``refine``), the model re-runs on that lesion with the edited
        mask as its previous mask and the strokes as guidance; the strokes are
        kept. ``origin="automatic"`` takes in a merged automatic proposal (its
        lesions are not counted as edited). Returns None when nothing changed.
        """
        annotation = self.annotation
        edited = as_label_array(np.asarray(region_labels), source="set_mask")
        slices = tuple(slices) if slices is not None else tuple(slice(0, n) for n in annotation.shape)
        if edited.shape != annotation.labels[slices].shape:
            raise GeometryError(f"set_mask got labels of shape {edited.shape} for a region of shape "
                                f"{annotation.labels[slices].shape}")
        changed = edited != annotation.labels[slices]
        if not changed.any():
            return None
        box = bounding_box(changed, offset=[s.start for s in slices])
        local = tuple(slice(b.start - s.start, b.stop - s.start) for b, s in zip(box, slices))
        saved = (self._active, dict(self._states))
        self._messages, self.last_run = [], {}
        old = annotation.labels[box].copy()
        change, touched = annotation.apply_edit(box, edited[local], active=self._active, origin=origin)  # type: ignore[arg-type]
        changes = [change]
        if refine and origin == "edit" and isinstance(self.engine, ModelEngine) and self._active not in touched:
            self._take_up(box, touched)
        active = self._active
        state = self._states.get(active) if active is not None else None
        if active in touched and state is not None and state.roi.contains_box(box):
            self._note_strokes(state, box, old, edited[local])
            if refine and isinstance(self.engine, ModelEngine):
                changes += self._run_model(self._require_study(), active, state, {"action": "edit"})
        for lesion_id in touched:
            if lesion_id != active:
                self._states.pop(lesion_id, None)
        self._push(UndoStep(tuple(changes), saved[0], saved[1]))
        return self._update(_changed_box(changes), "edit", lesion=active)

    def _take_up(self, box: Slices, touched: set[int]) -> None:
        """Make the one lesion a stroke edited the lesion being refined, when it is not a click's lesion yet.

        A lesion of the automatic proposal, of a loaded file or of the connected
        parts of one gets a model region around it, so the model re-runs on it with
        the strokes as guidance, as it does for a lesion made by clicks. Painting a
        new lesion (nothing of another touched), or a locked lesion, starts nothing.
        """
        if len(touched) != 1:
            return
        lesion_id = next(iter(touched))
        record = self.annotation.record(lesion_id) if lesion_id in self.annotation else None
        if record is None or record.locked or record.box is None or record.origin in ("click", "edit"):
            return
        centre = tuple((b.start + b.stop - 1) // 2 for b in record.box)
        state = self._state_for(self._require_study(), lesion_id, centre)
        if state.roi.contains_box(box):
            self._active = lesion_id

    def set_class(self, lesion: int | Sequence[float], label_class: int | str) -> RegionUpdate:
        """Give a lesion (its id, or a world point inside it) another class: the one way to change a class."""
        lesion_id = self._lesion_id(lesion)
        change = self.annotation.set_class(lesion_id, class_value(label_class))
        if lesion_id in self._states:
            self._states[lesion_id] = replace(self._states[lesion_id], label=class_value(label_class))
        return self._record([change], "class", lesion_id)

    def delete_lesion(self, lesion: int | Sequence[float]) -> RegionUpdate:
        """Remove a lesion (its id, or a world point inside it) and all its voxels."""
        lesion_id = self._lesion_id(lesion)
        change = self.annotation.delete(lesion_id)
        update = self._record([change], "delete", None)
        self._states.pop(lesion_id, None)
        if self._active == lesion_id:
            self._active = None
        return update

    def lesion_at(self, world_mm: Sequence[float]) -> int:
        """The id of the lesion at a world RAS point (0: none)."""
        return self.annotation.lesion_at(self._require_study().grid.world_to_index(world_mm, what="point"))

    def undo(self) -> RegionUpdate | None:
        """Undo the last click, edit, class change, deletion or reset; None when there is nothing to undo."""
        if not self._undo:
            return None
        step = self._undo.pop()
        made = UndoStep(tuple(self.annotation.snapshot(c.box) for c in step.changes), self._active, dict(self._states))
        for change in reversed(step.changes):
            self.annotation.undo(change)
        self._active, self._states = step.active, step.states
        self._redo.append((step, made))
        return self._update(_changed_box(step.changes), "undo", lesion=step.active)

    def redo(self) -> RegionUpdate | None:
        """Do again what the last :meth:`undo` undid; None when there is nothing to redo.

        Any new click, edit or lesion action after an undo makes it final (there is nothing to redo then).
        """
        if not self._redo:
            return None
        step, made = self._redo.pop()
        for change in made.changes:  # snapshots of one moment: their order does not matter
            self.annotation.undo(change)
        self._active, self._states = made.active, made.states
        self._undo.append(step)
        return self._update(_changed_box(made.changes), "redo", lesion=made.active)

    def _push(self, step: UndoStep) -> None:
        """A new undoable step (it makes the steps undone before it final)."""
        self._undo.append(step)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def reset(self) -> RegionUpdate | None:
        """Forget the current lesion's clicks: it goes back to what it was before them (undoable)."""
        lesion_id = self._active
        if lesion_id is None or lesion_id not in self.annotation:
            return None
        state = self._states.get(lesion_id)
        initial = state.cache.get("initial") if state is not None else None
        if initial is not None and initial.any():
            change = self.annotation.place(lesion_id, Claim(state.roi.slices, initial, None), None,  # type: ignore[union-attr]
                                           event={"action": "reset"})
        else:
            change = self.annotation.delete(lesion_id)
        update = self._record([change], "reset", None)
        self._states.pop(lesion_id, None)
        self._active = None
        return update

    def next_lesion(self) -> None:
        """Finish the current lesion; the next click starts or refines another by the rules."""
        self._active = None

    # ----------------------------------------------------------------- the clicks
    def _click(self, study: Study, index, click: Click, lesion: int | None) -> tuple[list[Change], int | None]:
        annotation, sampler = self.annotation, pet_sampler(study)
        if isinstance(self.engine, ThresholdEngine):
            done = apply_click(annotation, sampler, index, click, self.engine.params, lesion=lesion,
                               fresh=self._active is None)
            if done is None:
                return [], self._active
            change, lesion_id = done
            return [change], lesion_id if lesion_id in annotation else None
        event = {"action": "click", "world_mm": [round(float(v), 2) for v in click.world], "positive": click.positive,
                 "class": click.label, "model": self.engine.name}
        peak, refusal = self._model_peak(sampler, index) if click.positive else (None, None)
        action, owner = annotation.decide(index, click.positive, peak=peak, lesion=lesion, pet=sampler,
                                          fresh=self._active is None, label=click.label)
        if action == "nothing":
            return [], self._active
        if refusal is not None and action != "new":
            raise refusal
        if action in ("refine", "remove"):
            state = self._state_for(study, owner, index)  # type: ignore[arg-type]
            state.clicks.append((state.roi.local(index), click.positive))
            state.cache.pop("peak", None)
            if peak is not None and state.roi.contains(peak):
                state.cache["peak"] = state.roi.local(peak)
            return self._run_model(study, owner, state, event, peak), owner  # type: ignore[arg-type]
        if peak is not None and annotation.lesion_at(peak):
            peak = None  # its uptake climbs into a neighbour: the lesion starts at the click, not on that one
        pet_lesion = self._pet_lesion(sampler, index)
        state = self._new_state(study, click.label, index, None if pet_lesion is None else pet_lesion[2])
        state.clicks.append((state.roi.local(index), True))
        if pet_lesion is not None and self.engine.zoomed(state.roi):  # type: ignore[attr-defined]
            state.cache["prior"] = _on_roi(pet_lesion[0], pet_lesion[1], state.roi)
        if peak is not None and state.roi.contains(peak):
            state.cache["peak"] = state.roi.local(peak)
        proposal = self._propose(study, state, None, index)
        if refusal is not None:
            proposal = _holding(proposal, state.roi.local(index), refusal)
        claim = Claim(state.roi.slices, proposal, peak)
        change, lesion_id = place_claim(annotation, action, owner, claim, click.label, sampler, event, merge=False,
                                        seed=index)
        self._states[lesion_id] = state
        state.mask = annotation.instances[state.roi.slices] == lesion_id
        return [change], lesion_id

    def _model_peak(self, sampler, index) -> tuple[tuple[int, ...] | None, ClickError | None]:
        """Where a model click's lesion starts on PET: ``(peak, None)``, or ``(None, refusal)`` when there is
        no lesion-like uptake there.

        The model still looks at such a click (a necrotic node, cold on PET, that CT shows): it makes a lesion
        only when its mask holds the clicked voxel, and the click is refused with the PET's reason otherwise.
        A click outside the PET's field of view is refused at once.
        """
        from ..pet.delineation import _click_peak

        try:
            peak, _ = _click_peak(sampler, index, MODEL_UPTAKE)
        except ClickError as exc:
            if not np.isfinite(float(np.asarray(sampler.box(_point_box(index))).ravel()[0])):
                raise
            return None, exc
        return peak, None

    def _propose(self, study: Study, state: LesionState, lesion_id: int | None, index=None) -> np.ndarray:
        """The model's mask for a lesion on its region, the region grown (and run again) while the lesion
        reaches a side of it (:mod:`napari_hnc.inference.growth`); a lesion the bound still cuts is reported.

        ``index`` (label grid) is a positive click's voxel: when the model finds no lesion there (a click
        in a large lesion's cold, necrotic centre), the PET rule's lesion from the click starts it instead.
        """
        engine: ModelEngine = self.engine  # type: ignore[assignment]
        started = time.perf_counter()
        state.cache.pop("previous", None)
        proposal, passes = self._passes(study, state, lesion_id)
        if index is not None and not proposal.any():
            proposal, more = self._from_pet(study, state, lesion_id, index)
            passes += more
        state.cache.pop("previous", None)
        cut = state.cache.get("cut") or []
        self.last_run = {"passes": passes, "seconds": time.perf_counter() - started,
                         "region_mm": engine.region_mm(state), "cut": list(cut)}
        if cut:
            message = (f"the lesion reaches the {describe_sides(cut)} side(s) of {engine.name}'s region at its bound "
                       f"({' x '.join(f'{v / 10:g}' for v in engine.region_mm(state))} cm, at most "
                       f"{engine.bound_mm(state.roi.grid.spacing) / 10:g} cm a side) and may be cut there; extend it with the brush "
                       "or a PET rule")
            log.warning(message)
            self._messages.append(message[0].upper() + message[1:] + ".")
        elif passes > 1:
            log.info("the model's region grew to %s mm in %d passes to hold the lesion",
                     " x ".join(f"{v:g}" for v in engine.region_mm(state)), passes)
        return proposal

    def _passes(self, study: Study, state: LesionState, lesion_id: int | None) -> tuple[np.ndarray, int]:
        """Run the model, growing its region while the lesion reaches a side of it; the mask and the passes.

        A new lesion seen at a coarser spacing carries the PET rule's lesion from its click
        (``state.cache["prior"]``, ROI shape). When the model's first lesion, from the click alone, is
        itself large (it would be seen coarser too), the model runs once more with that lesion and its
        own, less the lesions already drawn, as its previous mask: as in training, where the previous
        mask is a perturbed or earlier mask, it corrects them. A card with ``zoomed_weights`` hands a
        lesion its own weights found large (or found nothing of) to those: they draw it from the click
        alone, then correct the rule's lesion and theirs. A lesion the card's weights draw small (a node
        whose 41 % rule ran into its neighbours) stays with them. From a click alone it drew large lesions
        too small (``benchmarks/large_lesions.py``, STS_001: 199 of 365 ml; corrected, Dice 0.57 -> 0.85).
        """
        engine: ModelEngine = self.engine  # type: ignore[assignment]
        proposal = engine.propose(study, state)
        passes = 1
        prior = state.cache.pop("prior", None)
        zoomed_weights = bool(engine.model.zoomed_networks)
        if prior is not None and prior.any() and (
                engine.zoom(_world_extent(study.grid, bounding_box(proposal, state.roi.start))) > 1.0
                if proposal.any() else zoomed_weights):
            state.cache["large"] = True  # the card's zoomed_weights, when it has them, draw it from here on
            if zoomed_weights:  # they start again from the click alone
                proposal = engine.propose(study, state)
                passes += 1
            state.mask = (prior | proposal) & (self.annotation.instances[state.roi.slices] == 0)
            proposal = engine.propose(study, state)
            passes += 1
        while (roi := engine.grow(study, state)) is not None:
            self._move(state, roi, proposal, lesion_id)
            proposal = engine.propose(study, state)
            passes += 1
        return proposal, passes

    def _move(self, state: LesionState, roi, proposal: np.ndarray, lesion_id: int | None) -> None:
        """Carry a lesion over to a larger region; its previous mask there is ``proposal`` (and its own voxels)."""
        inner = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(state.roi.slices, roi.slices))
        state.move_to(roi)
        previous = np.zeros(roi.shape, bool)
        if lesion_id is not None:  # the lesion's voxels outside the old region are still its own
            previous = self.annotation.instances[roi.slices] == lesion_id
        previous[inner] = proposal
        state.mask = previous

    def _from_pet(self, study: Study, state: LesionState, lesion_id: int | None, index) -> tuple[np.ndarray, int]:
        """The PET rule's lesion from a positive click the model found nothing at (e.g. one in a large
        lesion's cold, necrotic centre), on the model's region grown (within the bound) to hold it.

        Measured on the real sarcomas (``benchmarks/large_lesions.py``), the model refining this lesion
        as its previous mask shrank it to a fraction (STS_001: 38 of 365 ml); the PET lesion stays as it is.
        """
        from ..pet.delineation import lesion_from_click

        engine: ModelEngine = self.engine  # type: ignore[assignment]
        try:
            result, box = lesion_from_click(pet_sampler(study), index, self._fallback)
        except ClickError:
            return np.zeros(state.roi.shape, bool), 0
        if not result.mask.any():
            return np.zeros(state.roi.shape, bool), 0
        found = bounding_box(result.mask, [b.start for b in box])
        roi = engine.holding(study, state.roi, found)
        if roi is not state.roi:
            self._move(state, roi, np.zeros(state.roi.shape, bool), lesion_id)
        pet = _on_roi(result.mask, box, roi)
        self._messages.append(f"{engine.name} found no lesion at the click; the PET rule ({self._fallback.method}) "
                              "drew it.")
        if not roi.contains_box(found):
            self._messages.append(f"The PET rule's lesion reaches past the model's region at its bound "
                                  f"({engine.bound_mm(roi.grid.spacing) / 10:g} cm a side) and may be cut there.")
        log.info("the model found no lesion at the click (a cold centre?); the PET rule (%s) drew it",
                 self._fallback.method)
        return pet, 0

    def _run_model(self, study: Study, lesion_id: int, state: LesionState, event: dict, peak=None) -> list[Change]:
        annotation = self.annotation
        state.mask = annotation.instances[state.roi.slices] == lesion_id
        positive = bool(state.clicks) and state.clicks[-1][1] and event.get("action") == "click"
        clicked = tuple(int(v) for v in state.roi.start + state.clicks[-1][0]) if positive else None
        proposal = self._propose(study, state, lesion_id, clicked)
        roi = state.roi  # grown when the lesion needed more room
        if positive and state.protected is not None:
            proposal = proposal | (state.protected & (annotation.instances[roi.slices] == lesion_id))
        if state.painted is not None:
            proposal = proposal | state.painted
        if state.erased is not None:
            proposal = proposal & ~state.erased
        change = annotation.place(lesion_id, Claim(roi.slices, proposal, peak), pet_sampler(study), event=event)
        state.mask = annotation.instances[roi.slices] == lesion_id
        return [change]

    def _pet_lesion(self, sampler, index) -> tuple[np.ndarray, Slices, np.ndarray] | None:
        """The lesion the PET rule of :data:`MODEL_UPTAKE` grows from a click: its mask, its box on the label
        grid and its world extent (mm, RAS axes); None when there is none."""
        from ..pet.delineation import lesion_from_click

        try:
            result, box = lesion_from_click(sampler, index, MODEL_UPTAKE)
        except ClickError:
            return None
        if not result.mask.any():
            return None
        return result.mask, box, _world_extent(self._require_study().grid,
                                               bounding_box(result.mask, [b.start for b in box]))

    def _new_state(self, study: Study, label: int, index, extent_mm=None) -> LesionState:
        """A lesion's state on the region around a click; coarser for a lesion of a large ``extent_mm``."""
        world = np.asarray(study.grid.voxel_to_world(index))
        roi = self.engine.roi_for(study, world, extent_mm)  # type: ignore[attr-defined]
        empty = np.zeros(roi.shape, bool)
        state = LesionState(label, roi, empty)
        state.cache["initial"] = empty
        return state

    def _state_for(self, study: Study, lesion_id: int, index) -> LesionState:
        state = self._states.get(lesion_id)
        if state is not None and state.roi.contains(index):
            return state
        record = self.annotation.record(lesion_id)
        state = self._new_state(study, record.label, index,
                                None if record.box is None else _world_extent(study.grid, record.box))
        mine = self.annotation.instances[state.roi.slices] == lesion_id
        state.mask, state.protected = mine, mine.copy()
        state.cache["large"] = self.engine.zoomed(state.roi)  # type: ignore[attr-defined]  # its own extent
        state.cache["initial"] = mine.copy()
        self._states[lesion_id] = state
        return state

    def _note_strokes(self, state: LesionState, box: Slices, old: np.ndarray, values: np.ndarray) -> None:
        roi = state.roi
        local = tuple(slice(b.start - s.start, b.stop - s.start) for b, s in zip(box, roi.slices))
        painted, erased = np.zeros(roi.shape, bool), np.zeros(roi.shape, bool)
        painted[local] = (values == state.label) & (old != state.label)
        erased[local] = (old == state.label) & (values != state.label)
        state.painted = painted if state.painted is None else (state.painted & ~erased) | painted
        state.erased = erased if state.erased is None else (state.erased & ~painted) | erased

    # ----------------------------------------------------------------- internals
    def _require_study(self) -> Study:
        if self._study is None:
            raise StudyError("no study is set; call set_study(study) first")
        return self._study

    def _lesion_id(self, lesion: int | Sequence[float]) -> int:
        if isinstance(lesion, (int, np.integer)):
            lesion_id = int(lesion)
        else:
            lesion_id = self.lesion_at(lesion)
        if lesion_id not in self.annotation:
            raise ClickError(f"there is no lesion {'there' if not isinstance(lesion, (int, np.integer)) else lesion}; "
                             "point inside a lesion, or give the id of one")
        return lesion_id

    def _record(self, changes: list[Change], action: str, lesion: int | None) -> RegionUpdate:
        self._push(UndoStep(tuple(changes), self._active, dict(self._states)))
        return self._update(_changed_box(changes), action, lesion=lesion)

    def _update(self, slices: Slices, action: str, *, changed: bool = True, lesion: int | None = None) -> RegionUpdate:
        if changed:
            self.generation += 1
        annotation = self.annotation
        messages, self._messages = tuple(self._messages), []
        return RegionUpdate(tuple(slices), annotation.labels[tuple(slices)].copy(), self.generation, action,  # type: ignore[arg-type]
                            annotation.instances[tuple(slices)].copy(), lesion, annotation.provenance(), messages)


def _on_roi(mask: np.ndarray, box: Slices, roi) -> np.ndarray:
    """A mask of a box of the label grid, on ``roi`` (ROI shape; what lies outside the ROI is dropped)."""
    out = np.zeros(roi.shape, bool)
    inter = [slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, roi.slices)]
    if all(i.stop > i.start for i in inter):
        out[tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inter, roi.slices))] = \
            mask[tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inter, box))]
    return out


def _world_extent(grid: Volume, box: Sequence[slice]) -> np.ndarray:
    """The extent (mm) of a box of a grid's voxels along the world (RAS) axes.

    >>> from napari_hnc.geometry import Volume
    >>> _world_extent(Volume(np.zeros((9, 9, 9)), np.diag([-2.0, 1.0, 3.0, 1.0])), (slice(0, 5),) * 3).tolist()
    [10.0, 5.0, 15.0]
    """
    corners = np.array([[b.start - 0.5 if k else b.stop - 0.5 for b, k in zip(box, bits)]
                        for bits in np.ndindex(2, 2, 2)], float)
    world = grid.voxel_to_world(corners)
    return world.max(axis=0) - world.min(axis=0)


def _holding(proposal: np.ndarray, local, refusal: ClickError) -> np.ndarray:
    """The part of the model's mask that holds the clicked voxel (26-connected); ``refusal`` when it does not.

    >>> m = np.zeros((1, 1, 6), bool); m[0, 0, [1, 2, 4]] = True
    >>> _holding(m, (0, 0, 2), ClickError("no uptake")).nonzero()[2].tolist()
    [1, 2]
    """
    from ..pet.grow import flood_component

    local = tuple(int(v) for v in local)
    if not all(0 <= v < n for v, n in zip(local, proposal.shape)) or not proposal[local]:
        raise ClickError(f"{refusal}; the model found no lesion there either") from None
    return flood_component(proposal, local)


def _point_box(index) -> Slices:
    return tuple(slice(int(i), int(i) + 1) for i in index)  # type: ignore[return-value]


def _changed_box(changes: Sequence[Change]) -> Slices:
    """The box the changes wrote in (the model's region, or the box a PET rule read)."""
    from ..annotation import union_box

    box = changes[0].box
    for change in changes[1:]:
        box = union_box(box, change.box)
    return box


def _make_engine(model, device, threads, threshold, params, keep_clicked_only, max_region_mm=None,
                 zoom_out=True) -> Engine:
    """The click-guided model asked for; PET rules when none is asked for or none is installed.

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
            log.info("no click-guided model installed (%s); refining with PET rules (%s)", exc,
                     threshold or DEFAULT_METHOD)
            return ThresholdEngine(threshold, **params)
        loaded = entry.load()
    else:
        loaded = load_model(model)
    return ModelEngine(loaded, DeviceConfig.create(device, threads), keep_clicked_only=keep_clicked_only,
                       max_region_mm=max_region_mm, zoom_out=zoom_out)
