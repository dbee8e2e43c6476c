"""Tiny synthetic volumes and studies with known geometry, for tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), axcodes="RAS") -> np.ndarray:
    """An axis-aligned affine with the given spacing, origin and voxel-axis directions."""
    out = np.eye(4)
    directions = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    for col, code in enumerate(axcodes):
        row, sign = directions[code]
        out[:3, col] = 0.0
        out[row, col] = sign * spacing[col]
    out[:3, 3] = origin
    return out


def rotation(degrees: float, axis: int = 0) -> np.ndarray:
    """4x4 rotation about world axis 0 (x), 1 (y) or 2 (z)."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [a for a in range(3) if a != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def save_nifti(array: np.ndarray, aff: np.ndarray, path: Path, *, qcode: int = 1, scode: int = 1) -> Path:
    img = nib.Nifti1Image(array, aff)
    img.set_qform(aff, code=qcode)
    img.set_sform(aff, code=scode)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def ball(shape, center_vox, radius_vox) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    d2 = sum((g - c) ** 2 for g, c in zip(grid, center_vox))
    return d2 <= radius_vox**2


def write_hecktor2022(root: Path, case_id: str = "CASE-001", *, ct_shape=(40, 36, 20), pet_shape=(20, 18, 20),
                      with_labels: bool = True, split_folders: bool = False, seed: int = 0) -> dict[str, Path]:
    """A small HECKTOR 2022 study: LPS CT (1x1x2 mm), LPS PET (2x2x2 mm), a ball lesion of label 1."""
    rng = np.random.default_rng(seed)
    ct_aff = affine((1.0, 1.0, 2.0), (20.0, 18.0, -20.0), "LPS")
    pet_aff = affine((2.0, 2.0, 2.0), (19.5, 17.5, -20.0), "LPS")
    ct = rng.normal(40, 10, ct_shape).astype(np.int16)
    pet = np.abs(rng.normal(1.0, 0.1, pet_shape)).astype(np.float32)
    center_ct = np.array(ct_shape) / 2
    lesion = ball(ct_shape, center_ct, 5)
    world = nib.affines.apply_affine(ct_aff, center_ct)
    center_pet = nib.affines.apply_affine(np.linalg.inv(pet_aff), world)
    pet[ball(pet_shape, center_pet, 3)] = 8.0
    images = root / "imagesTr" if split_folders else root
    labels_dir = root / "labelsTr" if split_folders else root
    paths = {
        "ct": save_nifti(ct, ct_aff, images / f"{case_id}__CT.nii.gz"),
        "pet": save_nifti(pet, pet_aff, images / f"{case_id}__PT.nii.gz"),
    }
    if with_labels:
        paths["labels"] = save_nifti(lesion.astype(np.uint8), ct_aff, labels_dir / f"{case_id}.nii.gz")
    return paths
