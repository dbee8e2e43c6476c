"""PET values on the label grid, resampled lazily box by box and cached.

Resampling a whole PET onto a 512x512x150 CT grid takes seconds; a click only
needs the box around it. :class:`PetSampler` resamples (linear, SimpleITK, the
same interpolation as :meth:`napari_hnc.Study.pet_on_grid`) the blocks of the grid
(:data:`BLOCK` voxels each) a box touches that were not sampled before, and keeps
them. Keeping track per block, not per voxel, makes the check for what is missing
cost next to nothing. Voxels outside the PET's field of view are NaN.

Examples
--------
>>> import numpy as np
>>> from napari_hnc.geometry import Volume
>>> pet = Volume(np.arange(64, dtype=np.float32).reshape(4, 4, 4), np.diag([2.0, 2.0, 2.0, 1.0]))
>>> grid = Volume(np.zeros((10, 10, 10), np.int16), np.diag([1.0, 1.0, 1.0, 1.0]))
>>> sampler = PetSampler(pet, grid)
>>> float(sampler.box((slice(2, 3), slice(2, 3), slice(2, 3)))[0, 0, 0])  # voxel (1, 1, 1) of the PET
21.0
>>> bool(np.isnan(sampler.box((slice(9, 10),) * 3)).all())  # 9 mm: outside the PET (0-7 mm)
True
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Sequence

import numpy as np

from ..errors import GeometryError
from ..geometry import Volume, resample_to

log = logging.getLogger(__name__)

Box = tuple[slice, ...]
BLOCK = (16, 16, 4)  # voxels per block of the sampled-or-not map: about 16 x 16 x 13 mm on a CT grid


class PetSampler:
    """The PET on a grid, filled in box by box on demand (thread-safe).

    Parameters
    ----------
    pet : Volume
        The PET in SUV.
    grid : Volume
        The grid to read it on (usually the CT, i.e. the label grid); only its
        shape and affine are used.
    """

    def __init__(self, pet: Volume, grid: Volume) -> None:
        check_overlap(pet, grid, "the PET", "the label grid")
        self.grid = Volume(np.zeros((1, 1, 1), np.uint8), grid.affine.copy())
        self.shape = tuple(grid.shape)
        self.pet = pet
        self._lock = threading.Lock()
        self._image: Any = None
        if pet.same_grid(grid, atol=1e-6):
            self._data = np.asarray(pet.array, dtype=np.float32)
            self._done: np.ndarray | None = None
        else:
            self._data = np.empty(self.shape, np.float32)  # pages are only touched where sampled
            self._done = np.zeros(tuple(-(-n // b) for n, b in zip(self.shape, BLOCK)), bool)  # per block

    @classmethod
    def from_array(cls, pet_on_grid: Volume) -> "PetSampler":
        """A sampler over a PET that is already on the grid (nothing to resample)."""
        return cls(pet_on_grid, pet_on_grid)

    @property
    def spacing(self) -> np.ndarray:
        return self.grid.spacing

    def box(self, box: Sequence[slice]) -> np.ndarray:
        """SUV values (float32, NaN outside the PET) of ``grid[box]``; a view, do not write to it."""
        box = tuple(slice(*s.indices(n)) for s, n in zip(box, self.shape))
        if self._done is not None:
            with self._lock:
                self._fill(box)
        return self._data[box]

    def _fill(self, box: Box) -> None:
        blocks = tuple(slice(b.start // k, -(-b.stop // k)) for b, k in zip(box, BLOCK))
        missing = ~self._done[blocks]  # type: ignore[index]
        if not missing.any():
            return
        where = np.argwhere(missing)  # the missing blocks; their bounding box is resampled
        lo = where.min(axis=0) + [b.start for b in blocks]
        hi = where.max(axis=0) + 1 + [b.start for b in blocks]
        sub = tuple(slice(int(a) * k, min(int(z) * k, n)) for a, z, k, n in zip(lo, hi, BLOCK, self.shape))
        self._data[sub] = self._resample(sub)
        self._done[tuple(slice(int(a), int(z)) for a, z in zip(lo, hi))] = True  # type: ignore[index]

    def _resample(self, box: Box) -> np.ndarray:
        import SimpleITK as sitk

        if self._image is None:
            self._image = self.pet.to_sitk()
            if self._image.GetPixelID() != sitk.sitkFloat32:
                self._image = sitk.Cast(self._image, sitk.sitkFloat32)
        start = np.array([b.start for b in box], dtype=float)
        size = [b.stop - b.start for b in box]
        affine = self.grid.affine.copy()
        affine[:3, 3] = self.grid.voxel_to_world(start)
        reference = Volume(np.zeros((1, 1, 1), np.uint8), affine)
        image = _resample_sitk(self._image, reference, size)
        return sitk.GetArrayFromImage(image).T

    def full(self) -> np.ndarray:
        """The whole PET on the grid (resamples what is still missing)."""
        return self.box(tuple(slice(0, n) for n in self.shape))


def _resample_sitk(image, reference: Volume, size: Sequence[int]):
    import SimpleITK as sitk

    from ..geometry import _RAS_LPS, affine_spacing

    affine = reference.affine
    spacing = affine_spacing(affine)
    flt = sitk.ResampleImageFilter()
    flt.SetSize([int(s) for s in size])
    flt.SetOutputSpacing([float(s) for s in spacing])
    flt.SetOutputDirection([float(v) for v in (_RAS_LPS @ (affine[:3, :3] / spacing)).ravel()])
    flt.SetOutputOrigin([float(v) for v in _RAS_LPS @ affine[:3, 3]])
    flt.SetInterpolator(sitk.sitkLinear)
    flt.SetDefaultPixelValue(float("nan"))
    return flt.Execute(image)


def check_overlap(a: Volume, b: Volume, name_a: str, name_b: str) -> None:
    """:class:`GeometryError` when two volumes share no world space (more than 1 mm apart)."""
    a_lo, a_hi = a.world_bounds()
    b_lo, b_hi = b.world_bounds()
    if np.any(a_hi < b_lo - 1.0) or np.any(b_hi < a_lo - 1.0):
        raise GeometryError(
            f"{name_a} and {name_b} do not overlap in world space ({name_a} spans "
            f"{np.round(a_lo).tolist()}..{np.round(a_hi).tolist()} mm, {name_b} "
            f"{np.round(b_lo).tolist()}..{np.round(b_hi).tolist()} mm). They probably come from different "
            "studies, or a header lost its origin: check that the files belong together"
        )


def pet_sampler(study, grid: Volume | None = None) -> PetSampler:
    """The study's cached :class:`PetSampler` for ``grid`` (default: the label grid).

    Uses the whole resampled PET when :meth:`Study.pet_on_grid` has already been computed.
    """
    if study.pet is None:
        study.pet_on_grid()  # raises the StudyError that says a PET is needed
    grid = grid if grid is not None else study.grid
    key = ("napari_hnc.pet.sampler", tuple(grid.shape), np.round(grid.affine, 6).tobytes())
    def make() -> PetSampler:
        whole = study.peek_cached("pet_on_grid") if grid.same_grid(study.grid, atol=1e-6) else None
        return PetSampler.from_array(whole) if whole is not None else PetSampler(study.pet, grid)

    return study.cached(key, make)


def resample_box_reference(pet: Volume, grid: Volume, box: Box) -> np.ndarray:
    """The same values through :func:`napari_hnc.resample_to` on the cropped grid (slow path, for checks)."""
    return np.asarray(resample_to(pet, grid.crop(box), "linear", fill=np.nan).array)
