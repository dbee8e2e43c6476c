"""Training volumes preprocessed exactly as inference does it, cached as ``.npy``.

Each case is cropped to the body within the PET, resampled onto the model grid
of the card's spacing (RAS axis order) and scaled with the card's intensity
preprocessing -- the functions of :mod:`napari_hnc.inference.preprocess`, so
training sees what :func:`napari_hnc.segment` will feed the network. Labels
become *soft targets*: the fraction of each model voxel that every lesion class
covers (the CT-grid mask averaged over a centred box of one model voxel, then
interpolated), so a network can learn where a boundary lies inside a 2.5 mm
voxel and the probabilities interpolated back onto the CT grid put it in the right place.

Files per case under ``<cache>/<key>/`` (``key`` hashes spacing and preprocessing)::

    <case>.image.npy        float16 (C, X, Y, Z): the card's image inputs (CT, PET)
    <case>.target.npy       uint8 (K-1, X, Y, Z): lesion-class fractions x 255
    <case>.components.npy   uint16 (X, Y, Z): 26-connected lesions of the hard labels, 1..n
    <case>.json             grid affine, padding values, lesion list, source files
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from ..geometry import Volume
from ..inference.preprocess import PetStats, body_box, grid_over_box, image_channels, resample_onto, scale_ct, scale_pet
from ..models.card import IMAGE_INPUTS, ModelCard
from ..progress import ProgressFn, no_progress
from ..study import load_study
from .dataset import Case

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: soft targets centred for even box sides (box_filter)
TARGET_SCALE = 255.0
_FULL = np.ones((3, 3, 3), bool)


@dataclass(frozen=True, eq=False)
class CachedCase:
    """One preprocessed case (arrays memory-mapped from the cache)."""

    case_id: str
    image: np.ndarray
    target: np.ndarray
    components: np.ndarray
    meta: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.image.shape[1:])  # type: ignore[return-value]

    @property
    def pad_values(self) -> np.ndarray:
        return np.asarray(self.meta["pad_values"], np.float32)

    @property
    def lesions(self) -> list[dict[str, Any]]:
        return self.meta["lesions"]

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((np.asarray(self.meta["affine"])[:3, :3] ** 2).sum(axis=0))

    def hard_labels(self, box: Sequence[slice] | None = None) -> np.ndarray:
        """Class labels (uint8) from the soft targets: the most covered class of each voxel."""
        return hard_labels(np.asarray(self.target[(slice(None), *(box or ()))]))


def hard_labels(target: np.ndarray) -> np.ndarray:
    """Labels from soft targets (K-1, ...) scaled by 255: argmax over (background, classes).

    >>> hard_labels(np.array([[100, 200], [50, 20]], np.uint8)).tolist()
    [0, 1]
    """
    fractions = np.asarray(target, np.float32)
    scores = np.concatenate([TARGET_SCALE - fractions.sum(axis=0, keepdims=True), fractions])
    return scores.argmax(axis=0).astype(np.uint8)


def cache_key(card: ModelCard) -> str:
    """A short hash of what the cached arrays depend on (spacing, image inputs, preprocessing, classes)."""
    inputs = [i for i in card.inputs if i in IMAGE_INPUTS]
    payload = {"v": CACHE_VERSION, "spacing": list(card.spacing_mm), "inputs": inputs,
               "pre": card.to_dict()["preprocessing"], "classes": len(card.classes)}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _sources(case: Case) -> dict[str, list]:
    out = {}
    for role, path in case.files.paths().items():
        stat = Path(path).stat()  # type: ignore[arg-type]
        out[role] = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]  # type: ignore[arg-type]
    return out


def _paths(folder: Path, case_id: str) -> dict[str, Path]:
    return {k: folder / f"{case_id}.{k}.npy" for k in ("image", "target", "components")} | {
        "meta": folder / f"{case_id}.json"}


def build_case(case: Case, card: ModelCard, folder: Path) -> None:
    """Preprocess one case and write its cache files (atomically, the JSON last)."""
    files = case.files
    study = load_study(ct=files.ct, pet=files.pet, labels=files.labels, case_id=case.case_id)
    lo, hi = body_box(study)
    grid = grid_over_box(study.grid, card.spacing_mm, lo, hi)
    image_card = card.with_changes(inputs=tuple(i for i in card.inputs if i in IMAGE_INPUTS), task="automatic")
    stats = PetStats.of(study.pet)  # type: ignore[arg-type]
    channels = image_channels(study, image_card, grid, stats)
    image = np.stack([channels[name] for name in image_card.inputs]).astype(np.float16)
    labels = np.asarray(study.labels.array)  # type: ignore[union-attr]
    target = np.stack([
        soft_fraction(study.grid, labels == value, grid.affine, grid.shape, card.spacing_mm)
        for value in range(1, len(card.classes))
    ])
    target = np.rint(target * TARGET_SCALE).astype(np.uint8)
    components, lesions = find_lesions(hard_labels(target))
    pre = image_card.preprocessing
    pads = [float(scale_ct(np.array([pre.ct_window[0]]), pre)[0]) if name == "ct" else
            float(scale_pet(np.zeros(1), pre, stats)[0]) for name in image_card.inputs]
    meta = {"case_id": case.case_id, "version": CACHE_VERSION, "affine": grid.affine.tolist(),
            "shape": list(grid.shape), "inputs": list(image_card.inputs), "pad_values": pads,
            "lesions": lesions, "sources": _sources(case)}
    paths = _paths(folder, case.case_id)
    for key, array in (("image", image), ("target", target), ("components", components)):
        _save_atomic(paths[key], array)
    _write_json(paths["meta"], meta)


def soft_fraction(label_grid: Volume, mask: np.ndarray, affine: np.ndarray, shape: Sequence[int],
                  spacing_mm: Sequence[float]) -> np.ndarray:
    """The fraction of each model voxel (``affine``, ``shape``) that ``mask`` (label grid) covers.

    The mask is averaged over a box of about one model voxel centred on each label
    voxel (:func:`box_filter`), then interpolated at the model voxels' centres.
    """
    from ..inference.preprocess import Grid

    if not mask.any():
        return np.zeros(tuple(shape), np.float32)
    size = np.maximum(np.rint(np.asarray(spacing_mm) / label_grid.spacing).astype(int), 1)
    found = ndimage.find_objects(mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - int(k) - 1, 0), min(s.stop + int(k) + 1, n))
                for s, k, n in zip(found, size, mask.shape))
    smooth = box_filter(mask[box].astype(np.float32), [int(k) for k in size])
    cropped = label_grid.crop(box).with_array(smooth)
    return np.clip(resample_onto(cropped, Grid(np.asarray(affine), tuple(shape)), "linear", fill=0.0), 0.0, 1.0)


def box_filter(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The mean over a box of ``size`` voxels per axis, centred on each voxel (zero outside).

    An odd side is a plain moving average. An even side ``k`` has no centre voxel,
    so it takes ``k + 1`` taps weighted ``1/2, 1, ..., 1, 1/2`` (divided by ``k``):
    a box of width ``k`` centred on the voxel. ``ndimage.uniform_filter`` with an
    even size would shift the result by half a voxel.

    >>> box_filter(np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]), [2]).tolist()
    [0.0, 0.25, 0.75, 0.75, 0.25, 0.0]
    """
    out = np.asarray(array, np.float32)
    for axis, k in enumerate(size):  # odd sides: the same numbers as ndimage.uniform_filter over all axes
        if k % 2:
            out = ndimage.uniform_filter1d(out, k, axis=axis, mode="constant")
        else:
            weights = np.ones(k + 1) / k
            weights[[0, -1]] /= 2
            out = ndimage.correlate1d(out, weights, axis=axis, mode="constant")
    return out


def find_lesions(labels: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """26-connected lesions of each class: an id map (1..n) and, per lesion, class, size, centre voxel and
    extent (the sides of its bounding box, in voxels).

    The centre is the lesion voxel nearest its centre of mass (the centre of mass of a
    curved lesion may lie outside it).

    >>> labels = np.zeros((6, 6, 6), np.uint8); labels[0:2, 0:2, 0:2] = 1; labels[4:6, 4:6, 4:6] = 2
    >>> ids, lesions = find_lesions(labels)
    >>> [(l["id"], l["class"], l["voxels"], l["extent"]) for l in lesions], int(ids.max())
    ([(1, 1, 8, [2, 2, 2]), (2, 2, 8, [2, 2, 2])], 2)
    """
    ids = np.zeros(labels.shape, np.uint16)
    lesions: list[dict[str, Any]] = []
    for value in (int(v) for v in np.unique(labels) if v):
        components, count = ndimage.label(labels == value, _FULL)
        for index, found in enumerate(ndimage.find_objects(components), start=1):
            inside = components[found] == index
            number = len(lesions) + 1
            ids[found][inside] = number
            lesions.append({"id": number, "class": value, "voxels": int(inside.sum()),
                            "centre": centre_voxel(inside, [s.start for s in found]),
                            "extent": [s.stop - s.start for s in found]})
    return ids, lesions


def centre_voxel(mask: np.ndarray, offset: Sequence[int] = (0, 0, 0)) -> list[int]:
    """The voxel of ``mask`` nearest its centre of mass (plus ``offset``).

    >>> m = np.zeros((5, 5, 1), bool); m[0, :, 0] = True; m[:, 0, 0] = True
    >>> centre_voxel(m)
    [0, 1, 0]
    """
    points = np.argwhere(mask)
    centre = points.mean(axis=0)
    nearest = points[np.argmin(((points - centre) ** 2).sum(axis=1))]
    return [int(v) + int(o) for v, o in zip(nearest, offset)]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def is_cached(case: Case, folder: Path) -> bool:
    """True when the case's cache files exist and were made from the same source files."""
    paths = _paths(folder, case.case_id)
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("version") == CACHE_VERSION and meta.get("sources") == json.loads(json.dumps(_sources(case)))


def prepare_cache(cases: Sequence[Case], card: ModelCard, root: str | Path, *, progress: ProgressFn | None = None) -> Path:
    """Preprocess the cases not cached yet under ``root/<key>``; return that folder."""
    folder = Path(root).expanduser() / cache_key(card)
    folder.mkdir(parents=True, exist_ok=True)
    progress = progress or no_progress
    for done, case in enumerate(cases):
        progress(done, len(cases), case.case_id)
        if not is_cached(case, folder):
            log.info("caching %s at %s mm", case.case_id, list(card.spacing_mm))
            build_case(case, card, folder)
    progress(len(cases), len(cases), "cached")
    return folder


def load_cached(folder: Path, case_id: str) -> CachedCase:
    """The memory-mapped arrays and metadata of a cached case."""
    paths = _paths(Path(folder), case_id)
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    arrays = {k: np.load(paths[k], mmap_mode="r") for k in ("image", "target", "components")}
    return CachedCase(case_id, arrays["image"], arrays["target"], arrays["components"], meta)
