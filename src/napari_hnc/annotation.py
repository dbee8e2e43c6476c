"""Lesion instances of a study, and the one rule book of what a click, a model result or an edit may change.

An :class:`Annotation` is a set of lesion instances on the label grid: an id map
(``instances``, uint16, one owner per voxel), the HECKTOR semantic labels
(``labels``, uint8: 1 primary tumour, 2 lymph node) kept equal to the class of
each voxel's owner, and a :class:`LesionRecord` per lesion (class, how it was
made, its history). ``napari_hnc.delineate``, :class:`napari_hnc.RefinementSession`
and the napari docks all change lesions through it, so the rules hold everywhere:

* A positive click inside a lesion refines that lesion and keeps its class; one
  outside every lesion starts a new lesion; one that hits a lesion at a second,
  separate PET peak divides that lesion (the part on the new peak's side of the
  PET watershed becomes a lesion of the click's class). A click meant to start
  the next lesion (after "Finish lesion") that lands on a click lesion's cooler
  fringe, or on a click lesion of its own class away from that lesion's clicks,
  starts a lesion of its own: a node its neighbour's region covered.
* No click or model result takes voxels of another lesion. Lesions made by
  clicks whose regions touch share their boundary along the PET watershed
  between their peaks; this depends only on the set of clicks, not their order.
  Every other lesion (loaded, proposed by the automatic model, painted or edited
  by hand, locked) keeps its voxels.
* A negative click removes voxels only from the lesion it lies in.
* Changing a lesion's class is an explicit action (:meth:`Annotation.set_class`).

Without an instance map, instances are the 26-connected components of each class.

Examples
--------
Two touching cubes of class 2 are one component, but two instances once saved so:

>>> import numpy as np
>>> labels = np.zeros((6, 6, 6), np.uint8); labels[0:2, 0:2, 0:2] = 1; labels[3:6, 0:2, 0:2] = 2
>>> ann = Annotation.from_labels(labels)
>>> [(r.id, r.label, r.origin) for r in ann.records()]
[(1, 1, 'components'), (2, 2, 'components')]
>>> change = ann.set_class(2, 1)
>>> sorted(np.unique(ann.labels).tolist()), ann.record(2).label
([0, 1], 1)
>>> ann.undo(change); ann.record(2).label
2
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from .conventions import CLASS_NAMES

log = logging.getLogger(__name__)

Box = tuple[slice, slice, slice]
Index = tuple[int, int, int]
class PetBox(Protocol):
    """The PET on the label grid, box by box (a :class:`napari_hnc.pet.PetSampler`)."""

    spacing: Any

    def box(self, box: Sequence[slice]) -> np.ndarray: ...


#: Largest instance id (uint16 instance maps).
MAX_ID = 65535
#: A second peak divides a lesion when it rises this fraction of its SUV above the saddle joining it to the first
#: (any real dip: two touching nodes blurred together by the PET keep only a shallow one).
DIVIDE_DIP = 0.05
#: A fresh click (after "Finish lesion") on a click lesion, farther than FRINGE_MM from its clicks and with uptake
#: below FRINGE of its peak SUV, is on the fringe its region leaked over: it starts a lesion of its own. So does a
#: fresh click of the lesion's own class farther than FRINGE_MM from its peak and clicks (the next node of a chain).
FRINGE = 0.5
FRINGE_MM = 7.0
#: Touching lesions meet on the PET's edge between them (its gradient ridge) rather than at the dip of uptake,
#: within this distance (mm) of the dip: about the PSF's sigma of a clinical PET, how far a hotter lesion's blur
#: pushes the dip into a cooler neighbour. Measured on the touching-lesion phantoms (benchmarks/multi_lesion.py).
SHARE_BAND_MM = 3.0
#: ... unless the uptake between them falls below half the cooler one's peak (below its half-maximum edge: the
#: two are apart, with background between them); they then meet in the dip.
SHARE_VALLEY = 0.5
#: Smoothing (mm, Gaussian sigma) of the PET (on the label grid) before the gradient that edge is found on.
SHARE_GRADIENT_SIGMA_MM = 1.0
_FULL = np.ones((3, 3, 3), bool)
#: How a lesion was made (``LesionRecord.origin``).
ORIGINS = ("click", "file", "components", "automatic", "edit")


@dataclass(frozen=True, eq=False)
class Claim:
    """What the clicks of a lesion ask for: a box of the label grid, a mask in it, and the lesion's PET peak."""

    box: Box
    mask: np.ndarray
    peak: Index | None = None

    def union(self, other: "Claim") -> "Claim":
        """Both claims together, on the box holding both (the first one's peak)."""
        box = union_box(self.box, other.box)
        mask = np.zeros(box_shape(box), bool)
        for claim in (self, other):
            mask[local_box(claim.box, box)] |= claim.mask
        return Claim(box, mask, self.peak if self.peak is not None else other.peak)

    def without(self, box: Box, removed: np.ndarray) -> "Claim":
        """This claim less the voxels ``removed`` (a mask on ``box``)."""
        mask = self.mask.copy()
        inner = intersect_box(self.box, box)
        if inner is not None:
            mask[local_box(inner, self.box)] &= ~removed[local_box(inner, box)]
        return Claim(self.box, mask, self.peak)


@dataclass
class LesionRecord:
    """One lesion instance: its id, class, how it was made and what happened to it.

    ``claim`` is kept for lesions made by clicks: touching click lesions share
    their voxels from their claims (the PET watershed between their peaks).
    A lesion without a claim, ``edited`` by hand or ``locked``, keeps its voxels.
    """

    id: int
    label: int
    origin: str = "click"
    claim: Claim | None = None
    peak: Index | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False
    locked: bool = False
    box: Box | None = None
    seeds: list[Index] = field(default_factory=list)  # the voxels its positive clicks were on

    @property
    def markers(self) -> list[Index]:
        """Where its basin of the PET watershed starts: its peak and its clicks."""
        return ([self.peak] if self.peak is not None else []) + list(self.seeds)

    @property
    def class_name(self) -> str:
        return CLASS_NAMES.get(self.label, f"class {self.label}")

    @property
    def shares_boundary(self) -> bool:
        """Whether its boundary with touching click lesions follows the PET watershed (else it is fixed)."""
        return self.claim is not None and not self.edited and not self.locked

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "class": self.label, "class_name": self.class_name, "origin": self.origin,
                "edited": self.edited, "locked": self.locked, "history": copy.deepcopy(self.history)}


@dataclass(frozen=True, eq=False)
class Change:
    """What :meth:`Annotation.undo` restores: a box's instances and labels and the lesion records."""

    box: Box
    instances: np.ndarray
    labels: np.ndarray
    records: dict[int, LesionRecord]
    next_id: int


class Annotation:
    """Lesion instances on the label grid (see the module docstring for the rules).

    Parameters
    ----------
    labels : numpy.ndarray
        uint8 semantic labels, written in place (it may be shared, e.g. with a
        napari layer or a :class:`RefinementSession` target).
    instances : numpy.ndarray, optional
        uint16 instance ids of the same shape. Default: the connected components.
    records : mapping of id to dict, optional
        What is known of each lesion (a provenance sidecar's ``lesions`` entries).
    box : tuple of slice or None, optional
        The bounding box of the labelled voxels (:func:`labelled_box`), when the
        caller knows it already; by default it is found from ``labels``.
    """

    def __init__(self, labels: np.ndarray, instances: np.ndarray | None = None,
                 records: Mapping[int, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None, *,
                 box: Any = "find") -> None:
        if labels.dtype != np.uint8 or labels.ndim != 3:
            raise ValueError(f"labels must be a 3D uint8 array, got {labels.dtype} {labels.shape}")
        self.labels = labels
        origin = "components" if instances is None else "file"
        if instances is not None and np.shape(instances) != labels.shape:
            raise ValueError(f"the instance map's shape {np.shape(instances)} differs from the labels' {labels.shape}")
        self.instances = np.zeros(labels.shape, np.uint16)
        labelled = labelled_box(labels) if box == "find" else box  # the work is done on the box that holds labels
        if labelled is not None:
            self.instances[labelled] = reconcile_instances(labels[labelled],
                                                           None if instances is None else np.asarray(instances)[labelled])
        known = _records_by_id(records)
        self._records: dict[int, LesionRecord] = {}
        for lesion_id, box in _objects(self.instances, labelled):
            entry = known.get(lesion_id, {})
            label = int(labels[box][self.instances[box] == lesion_id].max())
            self._records[lesion_id] = LesionRecord(
                lesion_id, label, str(entry.get("origin", origin)), history=list(entry.get("history", [])),
                edited=bool(entry.get("edited", False)), locked=bool(entry.get("locked", False)), box=box)
        self._next = max(self._records, default=0) + 1

    @classmethod
    def empty(cls, shape: Sequence[int]) -> "Annotation":
        """An annotation with no lesion on a grid of ``shape`` (no scan of empty arrays)."""
        out = cls.__new__(cls)
        out.labels = np.zeros(tuple(shape), np.uint8)
        out.instances = np.zeros(tuple(shape), np.uint16)
        out._records, out._next = {}, 1
        return out

    @classmethod
    def from_labels(cls, labels: np.ndarray, instances: np.ndarray | None = None, records: Any = None) -> "Annotation":
        """An annotation over ``labels`` (used in place when uint8, else copied as uint8)."""
        from .io.nifti import as_label_array

        array = np.asarray(labels)
        array = array if array.dtype == np.uint8 else np.array(as_label_array(array), copy=True)
        return cls(array, None if instances is None else np.asarray(instances), records)

    # ----------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)  # type: ignore[return-value]

    def records(self) -> list[LesionRecord]:
        """The lesions, by id."""
        return [self._records[i] for i in sorted(self._records)]

    def record(self, lesion_id: int) -> LesionRecord:
        if lesion_id not in self._records:
            raise KeyError(f"no lesion {lesion_id}; the lesions are {sorted(self._records)}")
        return self._records[lesion_id]

    def __contains__(self, lesion_id: object) -> bool:
        return lesion_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def lesion_at(self, index: Sequence[int]) -> int:
        """The id of the lesion owning voxel ``index`` (0: none)."""
        return int(self.instances[tuple(int(i) for i in index)])

    def mask(self, lesion_id: int, box: Box | None = None) -> np.ndarray:
        """Lesion ``lesion_id``'s voxels within ``box`` (default: its own bounding box)."""
        box = box or self.record(lesion_id).box
        if box is None:
            return np.zeros((0, 0, 0), bool)
        return self.instances[box] == lesion_id

    def lesions(self) -> Iterator[tuple[LesionRecord, Box, np.ndarray]]:
        """``(record, box, mask in box)`` of every lesion with voxels, by id."""
        for record in self.records():
            if record.box is not None:
                yield record, record.box, self.instances[record.box] == record.id

    def provenance(self) -> dict[str, Any]:
        """The lesion records as JSON-ready data (the provenance sidecar's ``lesions``)."""
        return {"lesions": [r.to_json() for r in self.records()]}

    # ----------------------------------------------------------------- the click rules
    def decide(self, index: Index, positive: bool, *, peak: Index | None = None, lesion: int | None = None,
               pet: PetBox | None = None, fresh: bool = False, label: int | None = None) -> tuple[str, int | None]:
        """What a click does: ``("new"|"refine"|"divide"|"remove"|"nothing", lesion id)``.

        ``peak`` is the voxel the click's PET region grows from (its snapped peak):
        a click whose peak lies in a lesion is a click on that lesion. ``lesion``
        names the lesion a corrective click is for (it then refines or removes from it).
        A click at a second PET peak of a lesion divides it: where the PET dips
        between the two peaks (:data:`DIVIDE_DIP`), whatever the click's class. A
        ``fresh`` click (one meant to start the next lesion) on the cooler fringe of a
        click lesion starts a lesion of its own (:meth:`on_fringe`): a node on the
        flank of a primary whose region leaked over it. So does a fresh click outside
        every lesion whose peak lies in a click lesion: a node whose uptake climbs into
        a hotter neighbour it touches. And so does a fresh click of a click lesion's own
        ``label`` (class) that lies apart from that lesion's peak and clicks
        (:meth:`apart_from_clicks`): the next node of a chain, which the region of the
        node before covered. Touching click lesions share their voxels along the PET
        watershed between their markers, so each node keeps its own. A click of another
        class on a lesion never splits it this way (a node click on the primary's own
        uptake refines the primary).
        """
        if lesion is not None:
            self.record(lesion)
            return ("refine" if positive else "remove"), lesion
        owner = self.lesion_at(index)
        if not owner and positive and peak is not None:
            by_peak = self.lesion_at(peak)
            if by_peak and not (fresh and self.record(by_peak).shares_boundary):
                owner = by_peak
        if not positive:
            return ("remove", owner) if owner else ("nothing", None)
        if not owner:
            return "new", None
        record = self.record(owner)
        if record.locked:
            from .errors import ClickError

            raise ClickError(f"the click lies on lesion {owner} ({record.class_name}), which is locked; "
                             "unlock it to refine it, or click outside it")
        if peak is not None and pet is not None:
            other = self.peak_of(owner, pet)
            if other is not None and separate_peaks(pet, self.instances, owner, peak, other, within=record.box):
                return "divide", owner
        if fresh and pet is not None and (self.on_fringe(owner, index, pet) or
                                          (label == record.label and self.apart_from_clicks(owner, index, pet))):
            return "new", None
        return "refine", owner

    def on_fringe(self, lesion_id: int, index: Index, pet: PetBox) -> bool:
        """Whether voxel ``index`` lies on the cooler fringe of click lesion ``lesion_id``, not on its own uptake.

        It does when the lesion shares its boundary (made by clicks, not edited or
        locked), the voxel lies more than :data:`FRINGE_MM` from the lesion's clicks,
        and the uptake there is below :data:`FRINGE` of the lesion's peak SUV.
        """
        record = self.record(lesion_id)
        if not record.shares_boundary or _within_mm(record.seeds, index, pet.spacing, FRINGE_MM):
            return False
        peak = self.peak_of(lesion_id, pet)
        if peak is None:
            return False
        top = float(np.nan_to_num(pet.box(point_box(peak)), nan=0.0).max())
        near = tuple(slice(max(int(i) - 1, 0), int(i) + 2) for i in index)
        return float(np.median(np.nan_to_num(pet.box(near), nan=0.0))) < FRINGE * top

    def apart_from_clicks(self, lesion_id: int, index: Index, pet: PetBox) -> bool:
        """Whether voxel ``index`` lies more than :data:`FRINGE_MM` from every marker (peak and clicks) of
        click lesion ``lesion_id``, which shares its boundary.

        Only the clicked voxel counts, not its snapped peak: the peak of a cooler node climbs towards the
        hotter neighbour it touches.
        """
        record = self.record(lesion_id)
        return record.shares_boundary and not _within_mm(record.markers, index, pet.spacing, FRINGE_MM)

    def peak_of(self, lesion_id: int, pet: PetBox) -> Index | None:
        """The lesion's PET peak: the one its click found, else its hottest voxel."""
        record = self.record(lesion_id)
        if record.peak is not None:
            return record.peak
        if record.box is None:
            return None
        values = np.where(self.instances[record.box] == lesion_id, np.nan_to_num(pet.box(record.box), nan=-np.inf), -np.inf)
        local = np.unravel_index(int(np.argmax(values)), values.shape)
        return tuple(int(v + b.start) for v, b in zip(local, record.box))  # type: ignore[return-value]

    # ----------------------------------------------------------------- changes
    def new_lesion(self, label: int, *, origin: str = "click", event: dict | None = None) -> LesionRecord:
        """A new, still empty lesion record (it gets voxels through :meth:`place`)."""
        if self._next > MAX_ID:
            raise ValueError(f"an annotation holds at most {MAX_ID} lesions")
        record = LesionRecord(self._next, int(label), origin, history=[event] if event else [])
        self._records[record.id] = record
        self._next += 1
        return record

    def place(self, lesion_id: int, claim: Claim, pet: PetBox | None, *, event: dict | None = None,
              merge: bool = False, seed: Index | None = None) -> Change:
        """Give lesion ``lesion_id`` what ``claim`` asks for, by the rules; the change (for undo).

        ``merge`` adds the claim to what the lesion has (a refining click of a PET
        rule) instead of replacing it. The lesion's claim is then re-shared with
        the click lesions it touches along the PET watershed between their peaks
        and clicks (``seed``: the voxel of the click that asked for it).
        """
        before = self._records_copy()
        record = self.record(lesion_id)
        if seed is not None:
            record.seeds.append(tuple(int(v) for v in seed))  # type: ignore[arg-type]
        if merge:
            claim = self._base_claim(record).union(claim)
        elif record.box is not None and record.claim is None:
            claim = self._keep_outside(record, claim)
        if claim.peak is None:
            claim = replace(claim, peak=record.peak)
        record.claim, record.peak = claim, claim.peak if claim.peak is not None else record.peak
        record.edited = False
        if event:
            record.history.append(event)
        cluster = self._touching(lesion_id)
        boxes = [self._records[i].claim.box for i in cluster] + [self._records[i].box for i in cluster]  # type: ignore[union-attr]
        box = cluster_box(b for b in boxes if b is not None)
        owned = self._shared(cluster, box, pet)
        return self._write(box, cluster, owned, before, keep=lesion_id)

    def divide(self, lesion_id: int, new_id: int, claim: Claim, pet: PetBox, *, event: dict | None = None,
               seed: Index | None = None) -> Change:
        """Lesion ``new_id`` (made for a click at a second peak of ``lesion_id``) takes its side of the watershed.

        A click lesion simply shares its boundary with the new one along the
        watershed (so the result does not depend on which was clicked first).
        Another lesion (loaded, proposed, edited) gets a claim of its own voxels,
        and its part on the new peak's side goes to the new lesion.
        """
        record = self.record(lesion_id)
        if record.shares_boundary:
            record.history.append({"action": "divided", "by": new_id})
            return self.place(new_id, claim, pet, event=event, seed=seed)
        if record.claim is None or record.edited:
            mine = self.mask(lesion_id)
            record.claim = Claim(record.box, mine, self.peak_of(lesion_id, pet))  # type: ignore[arg-type]
            record.peak, record.edited = record.claim.peak, False
        side = _watershed_side(self, record, claim, pet, seed)
        claim = claim.union(side) if side is not None else claim
        record.history.append({"action": "divided", "by": new_id})
        return self.place(new_id, claim, pet, event=event, seed=seed)

    def remove_part(self, lesion_id: int, index: Index, *, event: dict | None = None) -> Change:
        """Remove the connected part of lesion ``lesion_id`` holding voxel ``index`` (a negative click)."""
        from scipy import ndimage

        record = self.record(lesion_id)
        box = record.box
        mine = self.mask(lesion_id)
        parts, _ = ndimage.label(mine, _FULL)
        local = tuple(int(i) - b.start for i, b in zip(index, box))  # type: ignore[union-attr]
        hit = parts[local] if all(0 <= v < n for v, n in zip(local, parts.shape)) else 0
        removed = (parts == hit) if hit else np.zeros_like(mine)
        return self.remove_voxels(lesion_id, box, removed, event=event)  # type: ignore[arg-type]

    def remove_voxels(self, lesion_id: int, box: Box, removed: np.ndarray, *, event: dict | None = None) -> Change:
        """Take the voxels ``removed`` (a mask on ``box``) from lesion ``lesion_id`` only."""
        before = self._records_copy()
        record = self.record(lesion_id)
        removed = removed & (self.instances[box] == lesion_id)
        if record.claim is not None:
            record.claim = record.claim.without(box, removed)
        if event:
            record.history.append(event)
        ids = self.instances[box].copy()
        ids[removed] = 0
        return self._write_ids(box, ids, before)

    def set_class(self, lesion_id: int, label: int, *, event: dict | None = None) -> Change:
        """Change lesion ``lesion_id``'s class (1 primary tumour, 2 lymph node): the one way to do it."""
        if int(label) not in CLASS_NAMES or int(label) == 0:
            raise ValueError(f"a lesion's class must be 1 (primary tumour) or 2 (lymph node), got {label!r}")
        before = self._records_copy()
        record = self.record(lesion_id)
        old, record.label = record.label, int(label)
        record.history.append(event or {"action": "class", "from": old, "to": int(label)})
        box = record.box or (slice(0, 0),) * 3
        return self._write_ids(box, self.instances[box].copy(), before)  # type: ignore[arg-type]

    def delete(self, lesion_id: int) -> Change:
        """Remove lesion ``lesion_id`` and all its voxels."""
        before = self._records_copy()
        record = self.record(lesion_id)
        box = record.box or (slice(0, 0),) * 3
        ids = self.instances[box].copy()
        ids[ids == lesion_id] = 0
        del self._records[lesion_id]
        return self._write_ids(box, ids, before)  # type: ignore[arg-type]

    def set_locked(self, lesion_id: int, locked: bool = True) -> None:
        """Lock a lesion (no watershed sharing, no division) or unlock it."""
        self.record(lesion_id).locked = bool(locked)

    def apply_edit(self, box: Box, values: np.ndarray, *, active: int | None = None,
                   origin: str = "edit") -> tuple[Change, set[int]]:
        """Take the user's semantic labels ``values`` (brush, eraser, fill) on ``box``; the change and the lesions touched.

        Erased or overwritten voxels leave their lesion. Painted voxels join the
        ``active`` lesion when of its class and touching it, else the lesion of
        their class they touch most, else a new lesion (of ``origin``). Every
        lesion touched is marked as edited (unless ``origin`` is "automatic", a
        proposal merged in): its voxels are fixed from then on.
        """
        from scipy import ndimage

        before = self._records_copy()
        old = self.labels[box]
        changed = values != old
        ids = self.instances[box].copy()
        touched = set(np.unique(ids[changed]).tolist()) - {0}
        ids[changed] = 0
        for label in (int(v) for v in np.unique(values[changed]) if v):
            parts, count = ndimage.label(changed & (values == label), _FULL)
            for part in range(1, count + 1):
                stroke = parts == part
                owner = self._owner_for_stroke(ids, stroke, label, active, origin)
                ids[stroke] = owner
                touched.add(owner)
        for lesion_id in touched:
            if lesion_id in self._records and origin == "edit":
                self._records[lesion_id].edited = True
                self._records[lesion_id].claim = None
        change = self._write_ids(box, ids, before)
        return change, touched

    def snapshot(self, box: Box) -> Change:
        """What is in ``box`` now (its instances, labels and the lesion records): :meth:`undo` of it comes back here."""
        box = tuple(box)  # type: ignore[assignment]
        return Change(box, self.instances[box].copy(), self.labels[box].copy(), self._records_copy(), self._next)

    def undo(self, change: Change) -> None:
        """Restore what ``change`` changed."""
        self.instances[change.box] = change.instances
        self.labels[change.box] = change.labels
        self._records = {i: replace(r, history=list(r.history)) for i, r in change.records.items()}
        self._next = change.next_id
        for record in self._records.values():
            record.box = _refit_box(self.instances, record.id, record.box, change.box)

    # ----------------------------------------------------------------- internals
    def _records_copy(self) -> dict[int, LesionRecord]:
        return {i: replace(r, history=list(r.history)) for i, r in self._records.items()}

    def _base_claim(self, record: LesionRecord) -> Claim:
        if record.claim is not None and not record.edited:
            return record.claim
        if record.box is None:
            return Claim((slice(0, 0),) * 3, np.zeros((0, 0, 0), bool), record.peak)  # type: ignore[arg-type]
        return Claim(record.box, self.mask(record.id), record.peak)

    def _keep_outside(self, record: LesionRecord, claim: Claim) -> Claim:
        """A model claim for a lesion that has voxels outside the model's region: keep those."""
        mine = self._base_claim(record)
        outside = mine.without(claim.box, np.ones(box_shape(claim.box), bool))
        return replace(claim.union(outside), peak=claim.peak)

    def _touching(self, lesion_id: int) -> list[int]:
        """``lesion_id`` and the click lesions whose claims touch it, directly or through each other."""
        sharing = {i: r.claim for i, r in self._records.items() if r.shares_boundary and i != lesion_id}
        cluster, todo = [lesion_id], [lesion_id]
        while todo:
            claim = self._records[todo.pop()].claim
            for other, theirs in list(sharing.items()):
                if claims_touch(claim, theirs):  # type: ignore[arg-type]
                    cluster.append(other)
                    todo.append(other)
                    del sharing[other]
        return sorted(cluster)

    def _shared(self, cluster: list[int], box: Box, pet: PetBox | None) -> dict[int, np.ndarray]:
        """Each cluster lesion's voxels on ``box``: its claim, less fixed lesions, split by the PET watershed."""
        ids = self.instances[box]
        fixed = (ids > 0) & ~np.isin(ids, cluster)
        claims = {}
        for lesion_id in cluster:
            claim = self._records[lesion_id].claim
            mask = np.zeros(box_shape(box), bool)
            mask[local_box(claim.box, box)] = claim.mask  # type: ignore[union-attr]
            claims[lesion_id] = mask & ~fixed
        if len(cluster) == 1 or pet is None:
            return _first_come(claims, cluster)
        return watershed_share(claims, {i: self._records[i].markers for i in cluster}, box, pet,
                               cores={i: self._records[i].seeds for i in cluster})

    def _owner_for_stroke(self, ids: np.ndarray, stroke: np.ndarray, label: int, active: int | None,
                          origin: str = "edit") -> int:
        from scipy import ndimage

        ring = ndimage.binary_dilation(stroke, _FULL) & ~stroke
        near = ids[ring]
        near = near[near > 0]
        candidates = [int(v) for v in near if self._records.get(int(v)) and self._records[int(v)].label == label]
        if active is not None and active in candidates:
            return active
        if candidates:
            values, counts = np.unique(candidates, return_counts=True)
            return int(values[int(np.argmax(counts))])
        event = {"action": "painted" if origin == "edit" else "proposed"}
        return self.new_lesion(label, origin=origin, event=event).id

    def _write(self, box: Box, cluster: list[int], owned: dict[int, np.ndarray], before, keep: int) -> Change:
        ids = self.instances[box].copy()
        ids[np.isin(ids, cluster)] = 0
        for lesion_id, mask in owned.items():
            ids[mask] = lesion_id
        return self._write_ids(box, ids, before, keep=keep)

    def _write_ids(self, box: Box, ids: np.ndarray, before: dict[int, LesionRecord], keep: int | None = None) -> Change:
        change = Change(box, self.instances[box].copy(), self.labels[box].copy(), before, self._next)
        gone = _present(change.instances) | _present(ids)
        self.instances[box] = ids
        lookup = np.zeros(max(self._records, default=0) + 1, np.uint8)
        for lesion_id, record in self._records.items():
            lookup[lesion_id] = record.label
        self.labels[box] = lookup[np.minimum(ids, len(lookup) - 1)] * (ids < len(lookup))
        for lesion_id in gone - {0}:
            record = self._records.get(int(lesion_id))
            if record is not None:
                record.box = _refit_box(self.instances, record.id, record.box, box)
        for lesion_id in [i for i, r in self._records.items() if r.box is None and i != keep]:
            del self._records[lesion_id]  # a lesion left with no voxels is gone
        return change


def _within_mm(points: Iterable[Index], index: Index, spacing: Any, mm: float) -> bool:
    """Whether voxel ``index`` lies within ``mm`` of any of ``points`` (voxels of a grid of ``spacing``)."""
    spacing = np.asarray(spacing, float)
    return any(float(np.linalg.norm(np.subtract(point, index) * spacing)) <= mm for point in points)


# --------------------------------------------------------------------------- instance maps


def components(labels: np.ndarray) -> np.ndarray:
    """uint16 instance ids: the 26-connected components of each class, numbered class by class.

    >>> labels = np.zeros((1, 1, 7), np.uint8); labels[..., [0, 1, 3]] = 2; labels[..., 5] = 1
    >>> components(labels)[0, 0].tolist()
    [2, 2, 0, 3, 0, 1, 0]
    """
    from scipy import ndimage

    out = np.zeros(labels.shape, np.uint16)
    count = 0
    for value in (int(v) for v in np.flatnonzero(np.bincount(labels.ravel(), minlength=2)) if v):
        parts, n = ndimage.label(labels == value, _FULL)
        if count + n > MAX_ID:
            raise ValueError(f"the labels hold more than {MAX_ID} lesions")
        inside = parts > 0
        out[inside] = parts[inside] + count
        count += n
    return out


def reconcile_instances(labels: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
    """An instance map that agrees with ``labels``: none where they are 0, one class per instance.

    Labelled voxels without an instance become new instances (their own components);
    an instance that spans two classes is split by class.

    >>> labels = np.array([[[1, 1, 2, 2, 0]]], np.uint8)
    >>> reconcile_instances(labels, np.array([[[4, 4, 4, 0, 4]]], np.uint16))[0, 0].tolist()
    [4, 4, 5, 6, 0]
    """
    if instances is None:
        return components(labels)
    instances = np.asarray(instances)
    if instances.shape != labels.shape:
        raise ValueError(f"the instance map's shape {instances.shape} differs from the labels' {labels.shape}")
    if instances.size and (instances.min() < 0 or instances.max() > MAX_ID):
        raise ValueError(f"instance ids must lie in 0..{MAX_ID}")
    out = np.where(labels > 0, instances, 0).astype(np.uint16)
    top = int(out.max()) if out.size else 0
    labelled = labels > 0
    if labelled.any():  # the (instance, class) pairs present; hashed, not sorted (a sort of a CT grid takes seconds)
        import pandas as pd

        keys = np.sort(pd.unique(out[labelled].astype(np.int64) * 256 + labels[labelled]))
        pairs = np.stack([keys // 256, keys % 256])
    else:
        pairs = np.zeros((2, 0))
    seen: set[int] = set()
    for lesion_id, label in pairs.T.tolist():
        if lesion_id == 0:
            continue
        if lesion_id in seen:
            top += 1
            out[(out == lesion_id) & (labels == label)] = top
        seen.add(lesion_id)
    orphan = (labels > 0) & (out == 0)
    if orphan.any():
        extra = components(np.where(orphan, labels, 0).astype(np.uint8))
        out[orphan] = extra[orphan] + top
    return out


def watershed_share(claims: Mapping[int, np.ndarray], peaks: Mapping[int, Sequence[Index]], box: Box,
                    pet: PetBox, cores: Mapping[int, Sequence[Index]] | None = None) -> dict[int, np.ndarray]:
    """Split overlapping or touching claims (masks on ``box``) along the PET watershed between their markers.

    Each lesion keeps the voxels of its own claim that lie in its basin of the
    watershed of -PET from all the markers (each lesion's peak and clicks) over
    the union of the claims: two lesions meet at the dip of uptake between them. A marker another lesion has already taken, or that
    lies outside the union, is skipped; a lesion left with no marker seeds its
    basin with the part of its claim no one else claims. With ``cores`` (each
    lesion's clicks), the ball around each click that reaches the nearest edge of
    the union is marked too (:func:`_mark_cores`): a cooler lesion on the slope of a
    hotter one keeps its own side.

    >>> x = np.arange(30.0)
    >>> pet = (8 * np.exp(-(x - 8) ** 2 / 20) + 6 * np.exp(-(x - 20) ** 2 / 20))[None, None, :]
    >>> a, b = np.zeros((1, 1, 30), bool), np.zeros((1, 1, 30), bool)
    >>> a[..., 2:22] = True; b[..., 10:28] = True     # each click's region leaks into the other
    >>> box = (slice(0, 1), slice(0, 1), slice(0, 30))
    >>> from types import SimpleNamespace
    >>> sampler = SimpleNamespace(box=lambda b: pet[b], spacing=(1.0, 1.0, 1.0))
    >>> out = watershed_share({1: a, 2: b}, {1: [(0, 0, 8)], 2: [(0, 0, 20)]}, box, sampler)
    >>> int(np.flatnonzero(out[1][0, 0])[-1]), int(np.flatnonzero(out[2][0, 0])[0])  # split at the saddle
    (14, 15)
    """
    from skimage.segmentation import watershed

    union = np.zeros(box_shape(box), bool)
    for mask in claims.values():
        union |= mask
    markers = np.zeros(union.shape, np.int32)
    order = list(claims)
    origin = np.array([b.start for b in box])
    for rank, lesion_id in enumerate(order, start=1):
        for peak in peaks.get(lesion_id) or []:
            local = tuple(int(v) for v in np.asarray(peak) - origin)
            if all(0 <= v < n for v, n in zip(local, union.shape)) and claims[lesion_id][local] and not markers[local]:
                markers[local] = rank
    if cores:
        _mark_cores(markers, union, order, cores, origin, pet.spacing)
    for rank, lesion_id in enumerate(order, start=1):  # a lesion whose peak is not in the box: its claim seeds it
        if not (markers == rank).any():
            alone = claims[lesion_id] & ~np.logical_or.reduce([m for i, m in claims.items() if i != lesion_id])
            markers[alone & (markers == 0)] = rank
    values = np.nan_to_num(np.asarray(pet.box(box), np.float64), nan=0.0)
    basins = watershed(-values, markers, mask=union, connectivity=3)
    basins = _meet_at_the_edge(values, basins, markers, union, pet.spacing)
    return {lesion_id: claims[lesion_id] & (basins == rank) for rank, lesion_id in enumerate(order, start=1)}


def _meet_at_the_edge(values: np.ndarray, basins: np.ndarray, markers: np.ndarray, union: np.ndarray,
                      spacing: Sequence[float]) -> np.ndarray:
    """Move the boundary between touching lesions from the dip of uptake onto the edge between them.

    Two blurred lesions of different uptake that touch meet where the PET steps
    from one level to the other, which is where its gradient peaks; the dip of
    -PET's watershed lies on the cooler side, pushed there by the hotter lesion's
    blur (about one PET resolution). The voxels within :data:`SHARE_BAND_MM` of a
    boundary between two lesions are given again, by the watershed of the
    gradient magnitude (PET smoothed by :data:`SHARE_GRADIENT_SIGMA_MM`) from the
    rest of each lesion's basin and its markers. Lesions of equal uptake have no
    edge between them and keep the dip, as do two whose uptake between them falls
    below :data:`SHARE_VALLEY` of the cooler one's peak (background lies between them).
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    from .pet.grow import bounding_slices

    inner = np.where(basins > 0, basins, np.iinfo(np.int32).max)
    meeting = (basins > 0) & ((ndimage.maximum_filter(basins, size=3) > basins)
                              | (ndimage.minimum_filter(inner, size=3) < basins))
    if not meeting.any():
        return basins
    spacing = [float(s) for s in spacing]
    pad = [int(np.ceil(SHARE_BAND_MM / s)) + 2 for s in spacing]
    box = bounding_slices(meeting, pad)
    part, pet = basins[box], values[box]
    ranks = [int(r) for r in np.unique(part[meeting[box]])]
    tops = {r: float(pet[part == r].max()) for r in ranks}
    touching = {r: ndimage.binary_dilation(part == r, _FULL) for r in ranks}
    seeds = part.copy()
    for rank in ranks:  # near a neighbour it meets without a dip of uptake: given again
        mine = part == rank
        steps = []
        for other in ranks:
            if other == rank:
                continue
            contact = mine & touching[other]  # where they meet; the uptake there is their saddle
            if contact.any() and float(pet[contact].max()) >= (1.0 - SHARE_VALLEY) * min(tops[rank], tops[other]):
                steps.append(other)
        if not steps:
            continue
        near = ndimage.distance_transform_edt(~np.isin(part, steps), sampling=spacing) <= SHARE_BAND_MM
        seeds[mine & near & (markers[box] == 0)] = 0
    sigma = [max(SHARE_GRADIENT_SIGMA_MM / s, 0.5) for s in spacing]
    gradient = ndimage.gaussian_gradient_magnitude(values[box], sigma, mode="nearest")
    out = basins.copy()
    out[box] = watershed(gradient, seeds, mask=union[box], connectivity=1)
    return out


def _mark_cores(markers: np.ndarray, union: np.ndarray, order: Sequence[int], cores: Mapping[int, Sequence[Index]],
                origin: np.ndarray, spacing: Sequence[float]) -> None:
    """Mark each lesion's core: the ball around each of its clicks that reaches the nearest edge of the uptake.

    A click marks where its lesion is: the ball around it as large as the distance
    from the click to the nearest edge of the claims' union (the lesion's own free
    side, for a click at its centre) seeds that lesion's basin. A
    small, cooler node on the slope of a hotter lesion has no PET maximum of its
    own, and the watershed of -PET alone gives the hotter lesion everything above
    the click's uptake; the core keeps the node's side. A ball never reaches past
    where another lesion's own ball would end on the way to its click (two cores
    never meet), and a click near an edge gets a small core or none (the watershed
    decides alone).
    """
    from scipy import ndimage

    from .pet.thresholds import ball, ball_window

    spacing = tuple(float(v) for v in spacing)
    step = np.asarray(spacing)
    inside = ndimage.distance_transform_edt(union, sampling=spacing)
    points = []
    for rank in range(1, len(order) + 1):
        for seed in cores.get(order[rank - 1]) or []:
            local = tuple(int(v) for v in np.asarray(seed) - origin)
            if all(0 <= v < n for v, n in zip(local, union.shape)) and union[local]:
                points.append((rank, local))
    reach = [float(inside[centre]) for _, centre in points]
    for k, (rank, centre) in enumerate(points):
        # never past where another lesion's own core would end, on the way to its click
        room = [float(np.linalg.norm(np.subtract(c, centre) * step)) - reach[j]
                for j, (r, c) in enumerate(points) if r != rank]
        radius = min([reach[k]] + room)
        if radius <= max(spacing):
            continue
        box = ball_window(union.shape, centre, spacing, radius)
        core = ball(box_shape(box), [c - b.start for c, b in zip(centre, box)], spacing, radius)
        core &= union[box] & (markers[box] == 0)
        markers[box][core] = rank


def separate_peaks(pet: PetBox, instances: np.ndarray, lesion_id: int, peak: Index, other: Index,
                   dip: float = DIVIDE_DIP, within: Box | None = None) -> bool:
    """Whether ``peak`` is a second PET maximum of lesion ``lesion_id``, apart from ``other``.

    The two are apart when, in the lesion's box, the lower of them rises at least
    ``dip`` of its SUV above the saddle of the PET that joins them. ``within`` is the
    lesion's bounding box when it is known (else it is searched for).
    """
    from .pet.grow import flood_component

    if max(abs(a - b) for a, b in zip(peak, other)) <= 1:
        return False
    box = union_box(point_box(peak), point_box(other))
    found = within if within is not None else _objects_box(instances, lesion_id)  # the lesion's box, when known
    box = union_box(box, found) if found is not None else box
    values = np.nan_to_num(np.asarray(pet.box(box), np.float64), nan=0.0)  # the PET in and around the lesion
    p = tuple(int(v - b.start) for v, b in zip(peak, box))
    q = tuple(int(v - b.start) for v, b in zip(other, box))
    low = min(values[p], values[q])
    if low <= 0:
        return False
    # the saddle that joins them lies at least dip x low below the lower one: they are not joined at that level
    return not bool(flood_component(values > (1.0 - dip) * low, p)[q])


def _watershed_side(annotation: Annotation, record: LesionRecord, claim: Claim, pet: PetBox,
                    seed: Index | None = None) -> Claim | None:
    """The part of ``record``'s lesion on ``claim``'s side of the watershed between their peaks."""
    mine = annotation.mask(record.id)
    box = union_box(record.box, claim.box)  # type: ignore[arg-type]
    theirs = np.zeros(box_shape(box), bool)
    theirs[local_box(claim.box, box)] = claim.mask
    own = np.zeros(box_shape(box), bool)
    own[local_box(record.box, box)] = mine  # type: ignore[arg-type]
    new_markers = [m for m in (claim.peak, seed) if m is not None]  # a claim without a PET peak: its click
    shared = watershed_share({record.id: own, -1: own | theirs}, {record.id: record.markers, -1: new_markers}, box, pet,
                             cores={record.id: record.seeds, -1: [seed] if seed is not None else []})
    side = own & shared[-1]
    return Claim(box, side, claim.peak) if side.any() else None


def _first_come(claims: Mapping[int, np.ndarray], order: Sequence[int]) -> dict[int, np.ndarray]:
    taken = None
    out = {}
    for lesion_id in order:
        mask = claims[lesion_id] if taken is None else claims[lesion_id] & ~taken
        out[lesion_id] = mask
        taken = mask.copy() if taken is None else taken | mask
    return out


def _present(ids: np.ndarray) -> set[int]:
    """The ids (> 0) in an instance array (a bincount: quicker than np.unique on boxes)."""
    if not ids.size:
        return set()
    return set(np.flatnonzero(np.bincount(ids.ravel(), minlength=1)).tolist()) - {0}


def _records_by_id(records: Any) -> dict[int, Mapping[str, Any]]:
    if records is None:
        return {}
    items = records.values() if isinstance(records, Mapping) else records
    return {int(r["id"]): r for r in items if isinstance(r, Mapping) and "id" in r}


def _objects(instances: np.ndarray, within: Box | None = None) -> list[tuple[int, Box]]:
    """``(id, bounding box)`` of every instance (all inside ``within``, when given)."""
    from scipy import ndimage

    within = within or tuple(slice(0, n) for n in instances.shape)  # type: ignore[assignment]
    part = instances[within]
    if not part.any():
        return []
    return [(i, tuple(slice(b.start + w.start, b.stop + w.start) for b, w in zip(box, within)))  # type: ignore[misc]
            for i, box in enumerate(ndimage.find_objects(part), start=1) if box is not None]


def labelled_box(labels: np.ndarray) -> Box | None:
    """The bounding box of the non-zero voxels (by projections: no full-size temporary), or None.

    >>> labels = np.zeros((4, 5, 6), np.uint8); labels[1, 2:4, 5] = 2
    >>> labelled_box(labels)
    (slice(1, 2, None), slice(2, 4, None), slice(5, 6, None))
    """
    rows = np.flatnonzero(labels.any(axis=(1, 2)))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(labels[rows[0]:rows[-1] + 1].any(axis=(0, 2)))
    deep = np.flatnonzero(labels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].any(axis=(0, 1)))
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1),
            slice(int(deep[0]), int(deep[-1]) + 1))


def _objects_box(instances: np.ndarray, lesion_id: int, within: Box | None = None) -> Box | None:
    """The bounding box of ``lesion_id``'s voxels (searched in ``within``)."""
    from .pet.grow import bounding_slices

    within = within or tuple(slice(0, n) for n in instances.shape)  # type: ignore[assignment]
    found = bounding_slices(instances[within] == lesion_id)
    if found is None:
        return None
    return tuple(slice(f.start + w.start, f.stop + w.start) for f, w in zip(found, within))  # type: ignore[return-value]


def _refit_box(instances: np.ndarray, lesion_id: int, old: Box | None, changed: Box) -> Box | None:
    """A lesion's bounding box after a change inside ``changed`` (it was ``old``)."""
    search = changed if old is None else union_box(old, changed)
    return _objects_box(instances, lesion_id, search)


# --------------------------------------------------------------------------- boxes


def box_shape(box: Box) -> tuple[int, int, int]:
    return tuple(s.stop - s.start for s in box)  # type: ignore[return-value]


def union_box(a: Box, b: Box) -> Box:
    """The smallest box holding both (an empty box counts for nothing)."""
    if any(s.stop <= s.start for s in a):
        return b
    if any(s.stop <= s.start for s in b):
        return a
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))  # type: ignore[return-value]


def intersect_box(a: Box, b: Box) -> Box | None:
    out = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a, b))
    return None if any(s.stop <= s.start for s in out) else out  # type: ignore[return-value]


def local_box(inner: Box, outer: Box) -> Box:
    """``inner`` in the coordinates of ``outer`` (which holds it)."""
    return tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer))  # type: ignore[return-value]


def _grown(box: Box) -> Box:
    """``box`` one voxel larger on every side (it may start before 0: a frame of coordinates, not of an array)."""
    return tuple(slice(s.start - 1, s.stop + 1) for s in box)  # type: ignore[return-value]


def point_box(index: Sequence[int]) -> Box:
    return tuple(slice(int(i), int(i) + 1) for i in index)  # type: ignore[return-value]


def cluster_box(boxes: Iterable[Box]) -> Box:
    out: Box | None = None
    for box in boxes:
        out = box if out is None else union_box(out, box)
    return out  # type: ignore[return-value]


def claims_touch(a: Claim, b: Claim) -> bool:
    """Whether two claims share a voxel or touch (26-connectivity).

    Only the slab of ``a`` next to ``b``'s box is looked at (a click's claim can be
    a 20 cm region: dilating all of it cost 10-40 ms a click).

    >>> box = (slice(0, 1), slice(0, 1), slice(0, 4))
    >>> a = Claim(box, np.array([[[True, False, False, False]]]), None)
    >>> b = Claim(box, np.array([[[False, True, False, False]]]), None)
    >>> c = Claim(box, np.array([[[False, False, True, True]]]), None)
    >>> claims_touch(a, b), claims_touch(a, c), claims_touch(c, a)
    (True, False, False)
    """
    from scipy import ndimage

    inner = intersect_box(_grown(a.box), b.box)  # type: ignore[arg-type]
    if inner is None:
        return False
    near = intersect_box(_grown(inner), a.box)  # a's voxels next to inner
    if near is None:
        return False
    piece = a.mask[local_box(near, a.box)]  # type: ignore[arg-type]
    if not piece.any():
        return False
    frame = _grown(near)
    big = np.zeros(box_shape(frame), bool)  # type: ignore[arg-type]
    big[local_box(near, frame)] = piece  # type: ignore[arg-type]
    big = ndimage.binary_dilation(big, _FULL)
    return bool((big[local_box(inner, frame)] & b.mask[local_box(inner, b.box)]).any())  # type: ignore[arg-type]
