"""Synthetic PET studies with known answers for the PET delineation and quantification tests."""

from __future__ import annotations

import numpy as np

from napari_hnc.geometry import Volume
from napari_hnc.study import Study
from synthetic import affine, ball


def pet_only(pet: np.ndarray, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), axcodes="RAS") -> Study:
    """A PET-only study (labels on the PET grid)."""
    return Study(ct=None, pet=Volume(np.asarray(pet, np.float32), affine(spacing, origin, axcodes), {"role": "pet"}))


def two_grids(background: float = 1.0, hot: float = 8.0) -> tuple[Study, np.ndarray]:
    """An LPS CT of 1x1x2 mm and an LPS PET of 2x2x2 mm with another origin; a 10 mm ball of SUV ``hot``.

    Returns the study and the lesion centre in world mm.
    """
    ct_aff = affine((1.0, 1.0, 2.0), (40.0, 30.0, -20.0), "LPS")
    pet_aff = affine((2.0, 2.0, 2.0), (44.5, 33.5, -22.0), "LPS")
    ct = Volume(np.zeros((80, 70, 30), np.int16), ct_aff, {"role": "ct"})
    centre = ct.voxel_to_world((40, 35, 15))
    pet_vol = Volume(np.full((44, 38, 34), background, np.float32), pet_aff, {"role": "pet"})
    centre_pet = pet_vol.world_to_voxel(centre)
    pet_vol.array[ball(pet_vol.shape, centre_pet, 5.0)] = hot
    return Study(ct, pet_vol, case_id="two-grids"), centre


def blurred_study(balls, *, shape=(100, 100, 50), ct_spacing=(1.0, 1.0, 2.0), pet_spacing=(2.0, 2.0, 2.0),
                  fwhm_mm: float = 6.0, background: float = 1.0, seed: int = 0):
    """A CT/PET study with blurred hot balls, like lesions on a real PET; returns ``(study, truth ids)``.

    ``balls`` are ``(centre voxel of the CT grid, radius mm, SUV, class)`` or with a fifth item, the
    radius (mm) of a cold necrotic core (SUV 0.5). Truth ids number the balls 1, 2, ... on the CT grid.
    """
    from scipy import ndimage

    from napari_hnc.pet.thresholds import ball as ball_mm

    rng = np.random.default_rng(seed)
    ct_aff = affine(ct_spacing, (0.0, 0.0, 0.0))
    ct = Volume(np.full(shape, 40, np.int16), ct_aff, {"role": "ct"})
    truth = np.zeros(shape, np.uint16)
    labels = np.zeros(shape, np.uint8)
    fine = np.full(shape, background, np.float32)
    for number, item in enumerate(balls, start=1):
        centre, radius, suv, label = item[:4]
        inside = ball_mm(shape, centre, ct_spacing, radius)
        truth[inside & (truth == 0)] = number
        labels[inside & (labels == 0)] = label
        fine[inside] = suv
        if len(item) > 4:
            fine[ball_mm(shape, centre, ct_spacing, item[4])] = 0.5
    sigma = [fwhm_mm / 2.355 / s for s in ct_spacing]
    blurred = ndimage.gaussian_filter(fine, sigma)
    step = [int(round(p / c)) for p, c in zip(pet_spacing, ct_spacing)]
    pet = blurred[::step[0], ::step[1], ::step[2]] * (1.0 + rng.normal(0, 0.03, blurred[::step[0], ::step[1], ::step[2]].shape))
    pet_vol = Volume(pet.astype(np.float32), affine(pet_spacing, (0.0, 0.0, 0.0)), {"role": "pet", "units": "SUVbw"})
    study = Study(ct, pet_vol, ct.with_array(labels, role="labels", instances=truth), case_id="BLUR", layout="generic")
    return study, truth
