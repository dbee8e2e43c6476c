"""Tiny labelled PET/CT datasets on disk (HECKTOR 2022 and autoPET layouts) and tiny cards, for the training tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from napari_hnc.models import ModelCard
from napari_hnc.models.card import CLICK_INPUTS, IMAGE_INPUTS
from synthetic_pet_ct import Lesion, neck_study, write_hecktor2022


def _save(volume, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(volume.array), volume.affine)
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    nib.save(image, str(path))
    return path


def case_lesions(seed: int) -> tuple[Lesion, ...]:
    """A primary (label 1) and a node (label 2) whose positions depend on the seed."""
    rng = np.random.default_rng(seed)
    primary = Lesion(tuple(rng.uniform(-15, 15, 3) + (10.0, -5.0, 5.0)), float(rng.uniform(9, 12)), 1, 8.0)
    node = Lesion(tuple(rng.uniform(-6, 6, 3) + (-30.0, 15.0, -10.0)), float(rng.uniform(5, 7)), 2, 5.0)
    return primary, node


def write_dataset(root: Path, n: int = 4, *, seed: int = 0) -> Path:
    """``n`` small HECKTOR 2022 studies (CT, PET, labels in labelsTr) under ``root``; returns ``root``."""
    for k in range(n):
        study = neck_study(case_lesions(seed + k), seed=seed + k, case_id=f"SYN-{seed + k:03d}")
        write_hecktor2022(study, root / "imagesTr")
        _save(study.labels, root / "labelsTr" / f"{study.case_id}.nii.gz")
    return root


def write_autopet(root: Path, patients: int = 2, studies: int = 2) -> Path:
    """An autoPET tree ``<patient>/<study>/CTres.nii.gz, SUV.nii.gz, SEG.nii.gz``."""
    for p in range(patients):
        for s in range(studies):
            study = neck_study(case_lesions(p * 10 + s), seed=p * 10 + s)
            folder = root / f"PETCT_{p:04d}" / f"study{s}"
            _save(study.ct, folder / "CTres.nii.gz")
            _save(study.pet, folder / "SUV.nii.gz")
            _save(study.labels, folder / "SEG.nii.gz")
    return root


def tiny_train_card(click: bool = False, name: str = "tiny", architecture: str = "SENormResUNet") -> ModelCard:
    """A small card at 4 mm for training tests (the synthetic studies are about 30 x 30 x 25 voxels there)."""
    arguments = {"base_channels": 4, "depth": 2} | ({"heads": 2} if architecture == "ResUNetMHSA" else {})
    return ModelCard(
        name=name, architecture=architecture, arguments=arguments,
        inputs=IMAGE_INPUTS + CLICK_INPUTS if click else IMAGE_INPUTS, task="click" if click else "automatic",
        spacing_mm=(4.0, 4.0, 4.0), patch_size=(16, 16, 16), weights=(f"{name}.safetensors",),
    )
