"""Draw the CT (HU), the labels and the PET (SUV) of one case from its anatomy and lesions.

* **CT**: the shapes painted in order on the CT grid, lesions on top (never over
  bone or cartilage, never outside the body), then Gaussian noise.
* **Labels**: each lesion's voxels on the CT grid, from its geometry alone.
* **PET**: uptake painted on a finer copy of the PET grid (moved by the PET/CT
  offset), averaged into PET voxels (tissue-fraction partial volume), blurred
  on the PET grid to the point-spread FWHM, then signal-dependent noise. Each
  lesion's uptake is scaled so that the SUVmax *measured in the final image*
  (PET resampled linearly onto the CT grid, as :meth:`Study.pet_on_grid` does,
  maximum over the lesion's label voxels) equals the lesion's target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from ..conventions import PRIMARY
from ..pet.components import largest_component
from ..pet.grow import flood_component
from ..geometry import Volume, resample_to
from .anatomy import AIR, HARD_HU, Anatomy
from .lesions import LesionSpec
from .shapes import Box, Grid, paint

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
SUV_NOISE_REFERENCE = 2.0  # the noise CV is stated at this SUV; noise grows like sqrt(SUV)
MIN_SUVMAX = 2.5
MIN_KEPT_FRACTION = 0.6  # a node keeps at least this much of its shape, or is left out


@dataclass(frozen=True)
class Acquisition:
    """How the images were "acquired": PET resolution and noise, CT noise, PET/CT misregistration."""

    psf_fwhm_mm: float
    pet_noise_cv: float
    ct_noise_hu: float
    offset_mm: tuple[float, float, float]


@dataclass
class DrawnLesion:
    """A lesion as drawn: its label voxels (a box of the CT grid) and, once the PET is made, its SUVmax."""

    spec: LesionSpec
    box: Box
    mask: np.ndarray
    amplitude: float = 0.0
    suvmax: float = 0.0
    suvmax_index: tuple[int, int, int] = (0, 0, 0)
    pet_box: Box | None = None
    unit: np.ndarray | None = None  # blurred unit-amplitude uptake on pet_box
    touching: bool = False  # it touches another lesion (hard cases): calibrated on its own uptake


# --------------------------------------------------------------------------- CT and labels


def render_ct(anatomy: Anatomy, specs: list[LesionSpec], grid: Grid, rng: np.random.Generator,
              noise_hu: float) -> tuple[np.ndarray, np.ndarray, list[DrawnLesion]]:
    """CT (int16 HU), labels (uint8) and the lesions' label voxels."""
    hu = np.full(grid.shape, AIR, np.int16)
    for p in anatomy.paints:
        paint(hu, grid, p.shape, p.hu, bounds=p.bounds)
    labels = np.zeros(grid.shape, np.uint8)
    voxel_ml = abs(float(np.prod(grid.step))) / 1000.0
    drawn: list[DrawnLesion] = []
    for spec in specs:
        lo, hi = spec.shape.bounds()
        box = grid.box(lo, hi)
        if box is None:
            continue
        xyz = grid.open_coords(box, np.zeros(3))
        inside, viable, necrotic = spec.pattern(*xyz)
        mask = largest_component(inside & anatomy.core.inside(*xyz) & (hu[box] < HARD_HU))
        if mask.sum() * voxel_ml < MIN_KEPT_FRACTION * spec.shape.volume_ml() and spec.label != PRIMARY:
            continue  # a node squeezed by bone or skin: leave it out rather than draw a sliver
        labels[box][mask] = spec.label
        hu[box][mask] = np.where(necrotic[mask], spec.necrosis_hu, spec.hu).astype(np.int16)
        for earlier in drawn:  # a lesion drawn against an earlier one (a hard case) takes their shared voxels
            _give_up(earlier, box, mask)
        drawn.append(DrawnLesion(spec, box, mask))
    noise = rng.standard_normal(grid.shape, dtype=np.float32)
    noise *= np.float32(noise_hu)
    np.rint(noise, out=noise)
    hu += noise.astype(np.int16)
    np.clip(hu, -1024, 3071, out=hu)
    return hu, labels, drawn


def _give_up(lesion: DrawnLesion, box: Box, mask: np.ndarray) -> None:
    """Drop from ``lesion`` the voxels of ``mask`` (on ``box``) where the two overlap."""
    inner = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(lesion.box, box))
    if any(s.stop <= s.start for s in inner):
        return
    mine = tuple(slice(i.start - a.start, i.stop - a.start) for i, a in zip(inner, lesion.box))
    theirs = tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inner, box))
    lesion.mask[mine] &= ~mask[theirs]


def instance_map(shape, lesions: list[DrawnLesion]) -> np.ndarray:
    """uint16 lesion ids (1, 2, ... in the order of ``lesions``) on the CT grid."""
    out = np.zeros(shape, np.uint16)
    for number, lesion in enumerate(lesions, start=1):
        out[lesion.box][lesion.mask] = number
    return out


# --------------------------------------------------------------------------- PET


def fine_grid(grid: Grid, factor: int) -> Grid:
    """``grid`` with each voxel split ``factor`` x ``factor`` in-plane (same outer bounds)."""
    step = grid.step / np.array([factor, factor, 1.0])
    origin = grid.origin - step * np.array([(factor - 1) / 2.0, (factor - 1) / 2.0, 0.0])
    affine = np.diag([*step, 1.0])
    affine[:3, 3] = origin
    return Grid((grid.shape[0] * factor, grid.shape[1] * factor, grid.shape[2]), affine)


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return array
    nx, ny, nz = array.shape
    return array.reshape(nx // factor, factor, ny // factor, factor, nz).mean(axis=(1, 3), dtype=np.float32)


def blur_sigma(grid: Grid, fwhm_mm: float, factor: int) -> np.ndarray:
    """Gaussian sigma (voxels) that, after averaging ``factor`` sub-voxels, gives the PSF FWHM."""
    sigma_mm = fwhm_mm * FWHM_TO_SIGMA
    box_var = (np.abs(grid.step) ** 2 / 12.0) * (np.array([factor, factor, 1]) > 1)
    return np.sqrt(np.maximum(sigma_mm**2 - box_var, 0.25 * sigma_mm**2)) / np.abs(grid.step)


def _hardness(anatomy: Anatomy, grid: Grid, box: Box, shift: np.ndarray) -> np.ndarray:
    """Where the last paint is bone or cartilage, on a box of ``grid`` (shapes moved by ``shift``)."""
    hard = np.zeros(tuple(s.stop - s.start for s in box), bool)
    corners = grid.origin + grid.step * np.array([[s.start for s in box], [s.stop - 1 for s in box]]) - shift
    for p in anatomy.paints_touching(corners.min(axis=0) - 1.0, corners.max(axis=0) + 1.0):
        if p.suv is not None:
            paint(hard, grid, p.shape, p.hard, shift, within=box, bounds=p.bounds)
    return hard


class PetImage:
    """The PET of one case being made: smooth signal, noise field, lesion amplitudes."""

    def __init__(self, anatomy: Anatomy, specs: list[DrawnLesion], grid: Grid, factor: int,
                 acq: Acquisition, rng: np.random.Generator) -> None:
        self.grid, self.acq, self.lesions = grid, acq, specs
        shift = np.asarray(acq.offset_mm, float)
        fine = fine_grid(grid, factor)
        uptake = np.zeros(fine.shape, np.float32)
        for p in anatomy.paints:
            if p.suv is not None:
                paint(uptake, fine, p.shape, p.suv, shift, bounds=p.bounds)
        self.sigma = blur_sigma(grid, acq.psf_fwhm_mm, factor)
        margin = int(np.ceil(4 * self.sigma.max())) + 2
        for number, lesion in enumerate(specs):
            self._cut_lesion(anatomy, lesion, fine, factor, uptake, shift, margin, [l.spec for l in specs[number + 1:]])
        self.signal = ndimage.gaussian_filter(block_mean(uptake, factor), self.sigma, mode="nearest", truncate=4.0)
        noise = ndimage.gaussian_filter(rng.standard_normal(grid.shape, dtype=np.float32), 0.5)
        self.noise = noise / np.float32(noise.std())

    def _cut_lesion(self, anatomy, lesion: DrawnLesion, fine: Grid, factor: int, uptake: np.ndarray,
                    shift: np.ndarray, margin: int, later: list | None = None) -> None:
        """Take the lesion out of the background uptake and keep its blurred unit uptake apart.

        Where a lesion drawn later overlaps it (touching lesions of a hard case),
        the later one's uptake is the only one there.
        """
        lo, hi = lesion.spec.shape.bounds()
        coarse = self.grid.box(lo + shift - 4.0, hi + shift + 4.0)
        if coarse is None:
            return
        fbox = (slice(coarse[0].start * factor, coarse[0].stop * factor),
                slice(coarse[1].start * factor, coarse[1].stop * factor), coarse[2])
        xyz = fine.open_coords(fbox, shift)
        inside, viable, necrotic = lesion.spec.pattern(*xyz)
        inside &= anatomy.core.inside(*xyz) & ~_hardness(anatomy, fine, fbox, shift)
        for other in later or []:
            o_lo, o_hi = other.shape.bounds()
            if np.all(o_hi >= lo - 4.0) and np.all(o_lo <= hi + 4.0):
                inside &= ~other.shape.inside(*xyz)
        region = uptake[fbox]
        region[inside] = np.where(necrotic[inside], lesion.spec.necrosis_suv, 0.0)
        unit = block_mean(np.where(inside, viable, 0).astype(np.float32), factor)
        outer = tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(coarse, self.grid.shape))
        padded = np.zeros(tuple(s.stop - s.start for s in outer), np.float32)
        padded[tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(coarse, outer))] = unit
        lesion.pet_box = outer
        lesion.unit = ndimage.gaussian_filter(padded, self.sigma, mode="constant", truncate=4.0)

    def noisy(self, box: Box | None = None) -> np.ndarray:
        """Signal plus noise (SUV >= 0), on ``box`` or everywhere."""
        box = box or (slice(None),) * 3
        signal = np.maximum(self.signal[box], 0)
        sd = np.float32(self.acq.pet_noise_cv) * np.sqrt(np.float32(SUV_NOISE_REFERENCE) * signal)
        return np.maximum(signal + sd * self.noise[box], 0).astype(np.float32)

    def set_amplitude(self, lesion: DrawnLesion, amplitude: float) -> None:
        if lesion.unit is not None:
            self.signal[lesion.pet_box] += np.float32(amplitude - lesion.amplitude) * lesion.unit
        lesion.amplitude = amplitude


def pet_on_box(source: Callable[[Box], np.ndarray], pet_grid: Grid, ct_grid: Grid, box: Box) -> np.ndarray | None:
    """The PET linearly resampled onto ``box`` of the CT grid (None when the PET does not reach it)."""
    corners = ct_grid.origin + ct_grid.step * np.array([[s.start for s in box], [s.stop - 1 for s in box]])
    margin = 2.0 * np.abs(pet_grid.step)
    src_box = pet_grid.box(corners.min(axis=0) - margin, corners.max(axis=0) + margin)
    if src_box is None:
        return None
    src = Volume(source(src_box), _crop_affine(pet_grid, src_box))
    reference = Volume(np.zeros((1, 1, 1), np.uint8), _crop_affine(ct_grid, box))
    shape = tuple(s.stop - s.start for s in box)
    return np.asarray(resample_to(src, reference, "linear", fill=0.0, shape=shape).array)


def measure(source: Callable[[Box], np.ndarray], pet_grid: Grid, ct_grid: Grid,
            lesion: DrawnLesion) -> tuple[float, tuple[int, int, int]]:
    """SUVmax over the lesion's label voxels of the PET linearly resampled onto the CT grid, and where.

    ``source(box)`` gives the PET values of a box of the PET grid.
    """
    resampled = pet_on_box(source, pet_grid, ct_grid, lesion.box)
    if resampled is None:
        return 0.0, tuple(s.start for s in lesion.box)  # type: ignore[return-value]
    shape = resampled.shape
    values = np.where(lesion.mask, resampled, -np.inf)
    flat = int(np.argmax(values))
    local = np.unravel_index(flat, shape)
    return float(values.flat[flat]), tuple(int(s.start + i) for s, i in zip(lesion.box, local))  # type: ignore[return-value]


def calibrate(img: PetImage, ct_grid: Grid, lesion: DrawnLesion, target: float) -> None:
    """Scale the lesion's uptake (secant steps) until its measured SUVmax is ``target``."""
    peak = float(lesion.unit.max()) if lesion.unit is not None else 0.0
    if peak <= 0:
        return
    floor = 0.5 * target / peak  # a lesion always has uptake of its own

    def measured(amplitude: float) -> float:
        img.set_amplitude(lesion, amplitude)
        return measure(img.noisy, img.grid, ct_grid, lesion)[0]

    a0, m0 = floor, measured(floor)
    a1 = max(floor, a0 + (target - m0) / peak)
    m1 = measured(a1)
    for _ in range(8):
        if abs(m1 - target) <= 0.002 * target or m1 == m0:
            break
        a0, m0, a1 = a1, m1, max(floor, a1 + (target - m1) * (a1 - a0) / (m1 - m0))
        m1 = measured(a1)
    img.set_amplitude(lesion, a1)


#: How a site's physicians delineate a lesion (``generate_case(delineation=...)``): ``extent`` labels
#: all of it, as the bundled models learnt; ``pet41`` labels its metabolic volume, the fixed-threshold
#: convention for MTV (the lesion's voxels at >= 41 % of its SUVmax on the PET, connected to the SUVmax
#: voxel): cold necrotic parts and the faint rim are left out.
DELINEATIONS = ("extent", "pet41")
PET41_FRACTION = 0.41


def delineate_metabolic(lesions: list[DrawnLesion], labels: np.ndarray, pet: np.ndarray, pet_grid: Grid,
                        ct_grid: Grid, fraction: float = PET41_FRACTION) -> None:
    """Shrink each lesion's label voxels (``lesion.mask`` and ``labels``, in place) to its metabolic volume.

    A lesion keeps the voxels of its own label at or above ``fraction`` of its SUVmax on the PET (linearly
    resampled onto the CT grid, as its SUVmax is measured), connected (26-neighbourhood) to its SUVmax voxel.
    """
    for lesion in lesions:
        resampled = pet_on_box(lambda box: pet[box], pet_grid, ct_grid, lesion.box)
        if resampled is None or lesion.suvmax <= 0:
            continue
        hot = lesion.mask & (resampled >= np.float32(fraction * lesion.suvmax))
        keep = flood_component(hot, tuple(int(i - s.start) for i, s in zip(lesion.suvmax_index, lesion.box)))
        if not keep.any():  # the SUVmax voxel below its own threshold (rounding): keep every hot voxel
            keep = hot
        labels[lesion.box][lesion.mask & ~keep] = 0
        lesion.mask = keep


def mark_touching(lesions: list[DrawnLesion], spacing, distance_mm: float) -> None:
    """Mark the lesions that lie within ``distance_mm`` of another (only hard cases have such)."""
    from scipy import ndimage

    for lesion in lesions:
        reach = [int(np.ceil(distance_mm / abs(float(s)))) + 1 for s in spacing]
        box = tuple(slice(max(b.start - r, 0), b.stop + r) for b, r in zip(lesion.box, reach))
        for other in lesions:
            if other is lesion:
                continue
            inner = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(other.box, box))
            if any(s.stop <= s.start for s in inner):
                continue
            mine = np.zeros(tuple(s.stop - s.start for s in box), bool)
            mine[tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(lesion.box, box))] = lesion.mask
            near = ndimage.distance_transform_edt(~mine, sampling=[abs(float(s)) for s in spacing]) <= distance_mm
            theirs = other.mask[tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, other.box))]
            if (near[tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inner, box))] & theirs).any():
                lesion.touching = True
                break


def _calibrate_alone(img: "PetImage", ct_grid: Grid, lesion: DrawnLesion, lesions: list[DrawnLesion]) -> None:
    """Calibrate a lesion that touches others with theirs taken out, so its SUVmax is its own uptake's.

    A cool node touching a hot primary then keeps an uptake of its own rather
    than being scaled down to the primary's spill-over.
    """
    saved = [(other, other.amplitude) for other in lesions if other is not lesion and other.amplitude]
    for other, _ in saved:
        img.set_amplitude(other, 0.0)
    calibrate(img, ct_grid, lesion, lesion.spec.target_suvmax)
    for other, amplitude in saved:
        img.set_amplitude(other, amplitude)


def render_pet(anatomy: Anatomy, lesions: list[DrawnLesion], grid: Grid, ct_grid: Grid, factor: int,
               acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """The PET (float32 SUV); fills in each lesion's ``suvmax`` and ``suvmax_index`` (CT grid)."""
    img = PetImage(anatomy, lesions, grid, factor, acq, rng)
    mark_touching(lesions, ct_grid.step, acq.psf_fwhm_mm)
    for lesion in lesions:
        if lesion.touching:
            _calibrate_alone(img, ct_grid, lesion, lesions)
        else:
            calibrate(img, ct_grid, lesion, lesion.spec.target_suvmax)
    for _ in range(5):
        pet = img.noisy()
        for lesion in lesions:
            lesion.suvmax, lesion.suvmax_index = measure(lambda b: pet[b], grid, ct_grid, lesion)
        low = [lesion for lesion in lesions if lesion.suvmax < MIN_SUVMAX + 0.05]
        if not low:
            return pet
        for lesion in low:
            calibrate(img, ct_grid, lesion, MIN_SUVMAX + 0.2)
    raise RuntimeError("could not bring every lesion to SUVmax >= 2.5; please report this seed")


def _crop_affine(grid: Grid, box: Box) -> np.ndarray:
    affine = grid.affine.copy()
    affine[:3, 3] = grid.origin + grid.step * np.array([s.start for s in box])
    return affine
