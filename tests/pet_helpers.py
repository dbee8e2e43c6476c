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
