"""What a refinement call returns (:class:`RegionUpdate`) and what undo keeps, plus region helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from .engines import LesionState

Slices = tuple[slice, slice, slice]


@dataclass(frozen=True, eq=False)
class RegionUpdate:
    """A change of the target labels, confined to ``slices`` of the label grid.

    Attributes
    ----------
    slices : tuple of 3 slices
        The region on the label grid (the study's CT grid).
    labels : numpy.ndarray
        uint8 labels of the whole region after the change (a copy).
    generation : int
        The session's edit counter after this change; a result computed from an
        older generation is stale.
    action : str
        "click", "edit", "undo", "redo", "reset", "class" or "delete".
    instances : numpy.ndarray or None
        uint16 lesion instance ids of the region after the change (a copy).
    lesion : int or None
        The lesion the change was for (the one being refined after a click).
    provenance : dict or None
        The lesion records after the change (:meth:`Annotation.provenance`).
    messages : tuple of str
        What the user should know about the change, e.g. that the lesion reaches
        the edge of the click model's region even at its bound and may be cut there.
    """

    slices: Slices
    labels: np.ndarray
    generation: int
    action: str
    instances: np.ndarray | None = None
    lesion: int | None = None
    provenance: dict | None = None
    messages: tuple[str, ...] = ()

    def apply(self, target: np.ndarray, instances: np.ndarray | None = None) -> None:
        """Write this update into another array on the label grid (and its instance map)."""
        target[self.slices] = self.labels
        if instances is not None and self.instances is not None:
            instances[self.slices] = self.instances


@dataclass(frozen=True, eq=False)
class UndoStep:
    """What an undo restores: the annotation changes (undone last first) and the session's lesion state."""

    changes: tuple
    active: int | None
    states: dict[int, LesionState]


def component_at(mask: np.ndarray, seed: tuple[int, int, int]) -> np.ndarray:
    """The 26-connected part of ``mask`` holding ``seed`` (all False when the seed is not in ``mask``).

    >>> m = np.zeros((5, 1, 1), bool); m[[0, 1, 3]] = True
    >>> component_at(m, (1, 0, 0))[:, 0, 0].tolist()
    [True, True, False, False, False]
    """
    components, _ = ndimage.label(mask, np.ones((3, 3, 3), bool))
    return components == components[seed] if components[seed] else np.zeros_like(mask)


def bounding_box(mask: np.ndarray, offset: Sequence[int]) -> Slices:
    """Slices of the box around ``mask``'s True voxels, shifted by ``offset`` (``mask`` must not be empty)."""
    found = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(s.start + o, s.stop + o) for s, o in zip(found, offset))  # type: ignore[return-value]
