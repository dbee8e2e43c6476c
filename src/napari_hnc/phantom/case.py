"""One synthetic head-and-neck PET/CT case: :func:`generate_case` and what it returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..conventions import CLASS_NAMES
from ..errors import HncError
from ..geometry import Volume
from ..study import Study
from .anatomy import Anatomy
from .model import build_anatomy
from .lesions import HARD_KINDS, sample_hard_lesions, sample_lesions
from .presets import PhantomPreset, get_preset, lps_grid
from .render import DELINEATIONS, Acquisition, DrawnLesion, delineate_metabolic, instance_map, render_ct, render_pet
from .shapes import Grid
from .torso import add_torso

log = logging.getLogger(__name__)

#: Bumped whenever a change makes the same seed give other images. Version 2 adds hard cases
#: (``hard_cases``); with ``hard_cases=0`` every seed gives the images of version 1.
GENERATOR_VERSION = 2
#: Share of a cohort's cases drawn as hard cases by default (touching lesions, a large necrotic nodal mass).
COHORT_HARD_CASES = 0.3
MISREGISTRATION_PROBABILITY = 0.5


def case_id(seed: int) -> str:
    """``PHANTOM-0007`` for seed 7."""
    return f"PHANTOM-{int(seed):04d}"


@dataclass(frozen=True)
class Lesion:
    """A lesion of a phantom, as measured in the images written.

    Attributes
    ----------
    label : int
        1 primary tumour, 2 lymph node (HECKTOR 2022).
    site : str
        Primary site (e.g. "oropharynx (tonsil)") or nodal level (e.g. "level II").
    side : str
        The patient's "left" or "right".
    center : tuple of float
        Centroid of its label voxels, world RAS mm.
    volume_ml : float
        Volume of its label voxels.
    shape_volume_ml : float
        Volume of the continuous shape it was drawn from (before voxelisation and
        before bone or the skin cut it).
    suvmax : float
        Maximum of the PET resampled (linearly) onto the CT grid over its label voxels.
    suvmax_point : tuple of float
        Where that maximum is, world RAS mm.
    necrotic : bool
        Whether it has a necrotic (cold) core; the core is part of the label.
    """

    label: int
    site: str
    side: str
    center: tuple[float, float, float]
    volume_ml: float
    shape_volume_ml: float
    suvmax: float
    suvmax_point: tuple[float, float, float]
    necrotic: bool

    @property
    def kind(self) -> str:
        return "primary" if self.label == 1 else "node"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "class": self.kind, "class_name": CLASS_NAMES[self.label], "site": self.site,
            "side": self.side, "center_ras_mm": _r(self.center, 2), "volume_ml": round(self.volume_ml, 4),
            "shape_volume_ml": round(self.shape_volume_ml, 4), "suvmax": round(self.suvmax, 4),
            "suvmax_ras_mm": _r(self.suvmax_point, 2), "necrotic": self.necrotic,
        }


@dataclass(frozen=True)
class PhantomCase:
    """A generated case: the study (CT in HU, PET in SUV, labels on the CT grid) and its truth."""

    case_id: str
    seed: int
    preset: str
    study: Study
    lesions: tuple[Lesion, ...]
    physiology: tuple[dict[str, Any], ...] = ()
    landmarks: dict[str, float] = field(default_factory=dict)
    acquisition: Acquisition | None = None
    hard_case: str = "none"
    delineation: str = "extent"

    def to_json(self) -> dict[str, Any]:
        """Everything known about the case, JSON-ready (world coordinates are RAS mm)."""
        acq = self.acquisition
        return {
            "case_id": self.case_id, "seed": self.seed, "preset": self.preset, "generator_version": GENERATOR_VERSION,
            "hard_case": self.hard_case, "delineation": self.delineation,
            "coordinates": "world RAS+ mm (NIfTI)",
            "lesions": [{**lesion.to_json(), "instance": number} for number, lesion in enumerate(self.lesions, start=1)],
            "physiology": [{"name": h["name"], "center_ras_mm": _r(h["center"], 2), "suv": round(h["suv"], 3)}
                           for h in self.physiology],
            "landmarks_mm": {k: round(float(v), 2) for k, v in self.landmarks.items()},
            "ct": _grid_json(self.study.ct), "pet": {**_grid_json(self.study.pet), **({
                "psf_fwhm_mm": round(acq.psf_fwhm_mm, 3), "noise_cv_at_suv2": round(acq.pet_noise_cv, 4),
                "pet_ct_offset_mm": _r(acq.offset_mm, 3)} if acq else {})},
        }


def _r(values: Any, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _grid_json(volume: Volume | None) -> dict[str, Any]:
    if volume is None:
        return {}
    return {"shape": list(volume.shape), "spacing_mm": _r(volume.spacing, 4), "orientation": "".join(volume.orientation)}


@dataclass(frozen=True)
class Scanner:
    """The ranges a case's acquisition is drawn from: the scanner and protocol of one site.

    ``default`` is the site of the bundled models' training phantoms; ``target`` is another
    clinic (PSF FWHM 8-9 mm, about twice the PET noise, a sharper CT kernel with about 1.7x the
    CT noise), the domain shift of ``benchmarks/smart_labelling.py``.
    """

    name: str = "default"
    psf_fwhm_mm: tuple[float, float] = (5.0, 7.0)
    pet_noise_cv: tuple[float, float] = (0.08, 0.14)
    ct_noise_hu: tuple[float, float] = (10.0, 18.0)


SCANNERS = {"default": Scanner(), "target": Scanner("target", (8.0, 9.0), (0.16, 0.28), (20.0, 30.0))}


def get_scanner(scanner: str | Scanner) -> Scanner:
    if isinstance(scanner, Scanner):
        return scanner
    if scanner not in SCANNERS:
        raise HncError(f"unknown phantom scanner {scanner!r}; choose one of {sorted(SCANNERS)}")
    return SCANNERS[scanner]


def _acquisition(rng: np.random.Generator, misregistration: bool, scanner: Scanner = Scanner()) -> Acquisition:
    fwhm, cv = rng.uniform(*scanner.psf_fwhm_mm), rng.uniform(*scanner.pet_noise_cv)
    ct_noise = rng.uniform(*scanner.ct_noise_hu)
    direction = rng.normal(size=3)
    magnitude = rng.uniform(0.5, 3.0) if (misregistration and rng.random() < MISREGISTRATION_PROBABILITY) else 0.0
    offset = direction / np.linalg.norm(direction) * magnitude
    return Acquisition(float(fwhm), float(cv), float(ct_noise), tuple(float(v) for v in offset))  # type: ignore[arg-type]


def _grids(rng: np.random.Generator, preset: PhantomPreset, anatomy: Anatomy) -> tuple[Grid, Grid, np.ndarray]:
    """CT and PET grids (anatomical frame) and the anatomical-to-world translation."""
    center = (rng.uniform(-6, 6), rng.uniform(-14, 0))
    if preset.whole_body:  # the top slice lies 5-15 mm above the head, the torso below
        z_top = anatomy.landmarks["vertex_z"] + rng.uniform(5, 15)
    else:  # the lowest slice lies 5-15 mm below the sternal notch: clavicles in, brain at the top
        z_top = anatomy.landmarks["sternal_notch_z"] - rng.uniform(5, 15) + (preset.ct_shape[2] - 1) * preset.ct_spacing[2]
    ct = lps_grid(preset.ct_shape, preset.ct_spacing, center, z_top)
    pet_center = (center[0] + rng.uniform(-3, 3), center[1] + rng.uniform(-3, 3))
    pet = lps_grid(preset.pet_shape, preset.pet_spacing, pet_center, z_top + preset.pet_spacing[2] * rng.uniform(1.2, 2.0))
    to_world = np.array([rng.uniform(-10, 10), rng.uniform(-40, 40), rng.uniform(-900, -300)])
    return ct, pet, to_world


def _world(grid: Grid, to_world: np.ndarray) -> np.ndarray:
    affine = grid.affine.copy()
    affine[:3, 3] += to_world
    return affine


def generate_case(seed: int, preset: str | PhantomPreset = "default", *, misregistration: bool = True,
                  hard_cases: float | str = 0.0, scanner: str | Scanner = "default",
                  delineation: str = "extent") -> PhantomCase:
    """Generate one synthetic head-and-neck FDG PET/CT case, in memory.

    Parameters
    ----------
    seed : int
        The case's seed (>= 0); the same seed gives the same case (and the same
        anatomy and lesions in every preset). Its id is ``PHANTOM-<seed>``.
    preset : {"default", "small", "wholebody", "wholebody-small"}
        ``default``: CT 512 x 512 x 80 of 0.98 x 0.98 x 3 mm, PET 128 x 128 x 84 of
        4 x 4 x 3 mm. ``small``: CT of 2 x 2 x 3 mm over 32 cm, for tests.
        ``wholebody``: head to mid-thigh, CT 512 x 512 x 600 of 0.98 x 0.98 x 2 mm,
        PET 200 x 200 x 600 of 2.5 x 2.5 x 2 mm, with lungs, heart, liver, spleen,
        kidneys and bladder; ``wholebody-small``: the same on 4 mm voxels, for tests.
        The head and neck (and the lesions) of a seed are the same in every preset.
    misregistration : bool
        Allow the random rigid PET/CT offset (up to 3 mm, in half of the cases).
    hard_cases : float or str
        Chance that the case is drawn as a hard one (a chain of touching nodes, a
        node touching the primary, or a large necrotic nodal mass of 30-120 ml),
        from a random stream of its own: with 0 every seed gives the case of
        generator version 1. A kind name (``"node chain"``, ``"node on the
        primary"``, ``"necrotic nodal mass"``) or ``"touching"`` (one of the first
        two) forces one.
    scanner : {"default", "target"} or Scanner
        The ranges of PSF FWHM, PET noise and CT noise (:class:`Scanner`); ``default`` gives
        the cases of earlier versions.
    delineation : {"extent", "pet41"}
        How the site's physicians delineate a lesion: ``extent`` (default, as in earlier versions)
        labels all of it; ``pet41`` labels its metabolic volume, the fixed-threshold convention for
        MTV: its voxels at >= 41 % of its SUVmax on the PET, connected to the SUVmax voxel (cold
        necrotic parts and the faint rim left out). The images are the same for both.

    Returns
    -------
    PhantomCase
        ``.study`` (CT in HU, PET in SUV, labels 1 primary / 2 node on the CT grid,
        LPS-oriented grids with different origins) and ``.lesions``.

    Examples
    --------
    >>> case = generate_case(7, "small")
    >>> case.case_id, case.study.ct.orientation, case.lesions[0].kind
    ('PHANTOM-0007', ('L', 'P', 'S'), 'primary')
    >>> all(lesion.suvmax >= 2.5 for lesion in case.lesions)
    True
    """
    if int(seed) < 0:
        raise HncError(f"phantom seeds are integers >= 0, got {seed}; pass 0 or more")
    if delineation not in DELINEATIONS:
        raise HncError(f"unknown delineation {delineation!r}; choose one of {list(DELINEATIONS)}")
    preset = get_preset(preset)
    streams = np.random.SeedSequence(int(seed)).spawn(7)  # the first five as in version 1
    anatomy_rng, lesion_rng, setup_rng, ct_rng, pet_rng, torso_rng, hard_rng = (np.random.default_rng(s) for s in streams)
    anatomy = build_anatomy(anatomy_rng)
    specs = sample_lesions(lesion_rng, anatomy)
    specs, hard = _hard_case(hard_rng, anatomy, specs, hard_cases)
    if preset.whole_body:
        anatomy = add_torso(anatomy, torso_rng)
    acq = _acquisition(setup_rng, misregistration, get_scanner(scanner))
    ct_grid, pet_grid, to_world = _grids(setup_rng, preset, anatomy)
    hu, labels, drawn = render_ct(anatomy, specs, ct_grid, ct_rng, acq.ct_noise_hu)
    pet = render_pet(anatomy, drawn, pet_grid, ct_grid, preset.pet_supersample, acq, pet_rng)
    if delineation == "pet41":
        delineate_metabolic(drawn, labels, pet, pet_grid, ct_grid)
    cid = case_id(seed)
    ct_vol = Volume(hu, _world(ct_grid, to_world), {"role": "ct", "units": "HU", "case_id": cid})
    pet_vol = Volume(pet, _world(pet_grid, to_world), {"role": "pet", "units": "SUVbw", "case_id": cid})
    label_vol = Volume(labels, ct_vol.affine.copy(), {"role": "labels", "case_id": cid,
                                                      "instances": instance_map(labels.shape, drawn)})
    study = Study(ct_vol, pet_vol, label_vol, cid, "hecktor2022")
    lesions = tuple(_lesion_record(d, ct_vol) for d in drawn)
    physiology = tuple({**h, "center": tuple(np.asarray(h["center"]) + to_world)} for h in anatomy.physiology)
    landmarks = {k: float(v + (to_world[2] if k.endswith("_z") else to_world[0])) for k, v in anatomy.landmarks.items()}
    log.info("generated %s (%s): %d lesions", cid, preset.name, len(lesions))
    return PhantomCase(cid, int(seed), preset.name, study, lesions, physiology, landmarks, acq, hard, delineation)


def _hard_case(rng: np.random.Generator, anatomy: Anatomy, specs, hard_cases: float | str):
    """The lesions, redrawn as a hard case when the case's own stream says so (see :func:`generate_case`)."""
    if isinstance(hard_cases, str):
        kinds = ("node chain", "node on the primary") if hard_cases == "touching" else (hard_cases,)
        if not set(kinds) <= set(HARD_KINDS):
            raise HncError(f"unknown hard case {hard_cases!r}; choose one of {sorted(HARD_KINDS)} or 'touching'")
        return sample_hard_lesions(rng, anatomy, specs, kinds[int(rng.integers(0, len(kinds)))])
    if not 0.0 <= float(hard_cases) <= 1.0:
        raise HncError(f"hard_cases is a chance between 0 and 1, got {hard_cases}")
    if float(hard_cases) > 0.0 and rng.random() < float(hard_cases):
        return sample_hard_lesions(rng, anatomy, specs)
    return specs, "none"


def _lesion_record(drawn: DrawnLesion, ct: Volume) -> Lesion:
    idx = np.argwhere(drawn.mask) + np.array([s.start for s in drawn.box])
    center = ct.voxel_to_world(idx.mean(axis=0))
    spec = drawn.spec
    return Lesion(spec.label, spec.site, spec.side, tuple(float(v) for v in center),  # type: ignore[arg-type]
                  float(len(idx) * ct.voxel_volume_ml), spec.shape.volume_ml(), float(drawn.suvmax),
                  tuple(float(v) for v in ct.voxel_to_world(drawn.suvmax_index)), spec.core > 0)  # type: ignore[arg-type]
