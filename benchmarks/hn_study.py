"""A synthetic head-and-neck-sized PET/CT study for the model benchmarks.

CT: 512 x 512 x ``slices`` voxels of 0.977 x 0.977 x 3 mm (int16, LPS), a neck
(elliptic, ~15 x 19 cm) above shoulders (~40 x 22 cm), a couch below the body
separated by air, noise. PET: 4 x 4 x 3 mm (float32, SUV), body at SUV ~1 with
hot lesions (a primary and two nodes) and brain-like uptake at the top.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

LESIONS_MM = ((15.0, -20.0, 40.0, 14.0, 9.0), (-35.0, 5.0, 10.0, 8.0, 6.0), (40.0, 0.0, -20.0, 7.0, 5.0))


def _lps(spacing, origin) -> np.ndarray:
    out = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    out[:3, 3] = origin
    return out


def make_arrays(slices: int = 100, seed: int = 0):
    """CT and PET arrays with their affines: ``(ct, ct_affine, pet, pet_affine)``."""
    rng = np.random.default_rng(seed)
    ct_spacing, ct_shape = (0.977, 0.977, 3.0), (512, 512, slices)
    half = np.array(ct_shape[:2]) * ct_spacing[:2] / 2
    z_extent = slices * 3.0
    ct_aff = _lps(ct_spacing, (half[0], half[1], -z_extent / 2))
    x = ct_aff[0, 3] + ct_aff[0, 0] * np.arange(512)
    y = ct_aff[1, 3] + ct_aff[1, 1] * np.arange(512)
    z = ct_aff[2, 3] + 3.0 * np.arange(slices)
    ct = np.full(ct_shape, -1000, np.int16)
    for k, zk in enumerate(z):
        rx, ry = (75.0, 95.0) if zk > -z_extent / 6 else (200.0, 110.0)  # neck above, shoulders below
        body = (x[:, None] / rx) ** 2 + ((y[None, :] + 10) / ry) ** 2 < 1
        ct[:, :, k][body] = 40
        ct[:, :, k][(y[None, :] > 150) & (y[None, :] < 160) & (np.abs(x[:, None]) < 230)] = 200  # couch
    ct += rng.normal(0, 12, ct_shape).astype(np.int16)
    pet_spacing = (4.0, 4.0, 3.0)
    pet_shape = (128, 128, slices)
    pet_aff = _lps(pet_spacing, (256.0, 256.0, -z_extent / 2))
    px = pet_aff[0, 3] - 4.0 * np.arange(128)
    py = pet_aff[1, 3] - 4.0 * np.arange(128)
    pz = pet_aff[2, 3] + 3.0 * np.arange(slices)
    grid = np.stack(np.meshgrid(px, py, pz, indexing="ij"), axis=-1)
    pet = np.where((grid[..., 0] / 150) ** 2 + ((grid[..., 1] + 10) / 100) ** 2 < 1, 1.0, 0.02)
    pet[grid[..., 2] > z_extent / 2 - 40] *= 6.0  # brain-like uptake at the top
    for cx, cy, cz, radius, suv in LESIONS_MM:
        pet[np.linalg.norm(grid - (cx, cy, cz), axis=-1) < radius] = suv
    pet = np.clip(pet + rng.normal(0, 0.1, pet_shape), 0, None).astype(np.float32)
    return ct, ct_aff, pet, pet_aff


def write_study(folder: Path, case_id: str = "BENCH-001", slices: int = 100) -> Path:
    """Write the study as HECKTOR 2022 files (once); return the CT path."""
    folder.mkdir(parents=True, exist_ok=True)
    ct_path = folder / f"{case_id}__CT.nii.gz"
    if ct_path.exists():
        return ct_path
    ct, ct_aff, pet, pet_aff = make_arrays(slices)
    for array, aff, path in ((ct, ct_aff, ct_path), (pet, pet_aff, folder / f"{case_id}__PT.nii.gz")):
        image = nib.Nifti1Image(array, aff)
        image.set_qform(aff, code=1)
        image.set_sform(aff, code=1)
        nib.save(image, str(path))
    return ct_path
