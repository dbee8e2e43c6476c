"""Synthetic head-and-neck-like PET/CT studies with known lesions, and tiny models, for the model tests.

The CT is LPS (like most DICOM-derived files), the PET lies on another, coarser
grid with another origin, so any mix-up of axes, flips or half-voxel shifts
between the grids moves the lesions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from napari_hnc.geometry import Volume
from napari_hnc.models import ModelCard, Preprocessing, save_model
from napari_hnc.models.card import CLICK_INPUTS, IMAGE_INPUTS
from napari_hnc.models.weights_io import Model
from napari_hnc.study import Study


@pytest.fixture
def one_torch_thread():
    """Run torch on one CPU thread: tiny test networks are dominated by thread synchronisation,
    which on a busy shared machine costs far more than the arithmetic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Lesion:
    centre: tuple[float, float, float]  # world RAS mm
    radius_mm: float
    label: int = 1
    suv: float = 8.0


def lps_affine(spacing: Sequence[float], origin: Sequence[float]) -> np.ndarray:
    out = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    out[:3, 3] = origin
    return out


def _world_grid(affine: np.ndarray, shape) -> np.ndarray:
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


def neck_study(
    lesions: Sequence[Lesion] = (Lesion((10.0, -5.0, 12.0), 9.0, 1), Lesion((-30.0, 15.0, -6.0), 6.0, 2)),
    *,
    ct_shape=(96, 96, 40),
    ct_spacing=(1.25, 1.25, 2.5),
    pet_spacing=(4.0, 4.0, 3.0),
    seed: int = 0,
    case_id: str = "SYN-001",
) -> Study:
    """A CT with an elliptic body in air, a PET with hot balls, and the true labels on the CT grid."""
    rng = np.random.default_rng(seed)
    extent = np.asarray(ct_shape) * np.asarray(ct_spacing)
    ct_aff = lps_affine(ct_spacing, (extent[0] / 2, extent[1] / 2, -extent[2] / 2))
    world = _world_grid(ct_aff, ct_shape)
    body = (world[..., 0] / (0.42 * extent[0])) ** 2 + (world[..., 1] / (0.36 * extent[1])) ** 2 < 1
    ct = np.where(body, 40.0, -1000.0) + rng.normal(0, 10, ct_shape)
    truth = np.zeros(ct_shape, np.uint8)
    for lesion in lesions:
        truth[np.linalg.norm(world - lesion.centre, axis=-1) <= lesion.radius_mm] = lesion.label
    pet_shape = tuple(int(np.ceil(e / s)) + 2 for e, s in zip(extent, pet_spacing))
    pet_aff = lps_affine(pet_spacing, (extent[0] / 2 + 3.0, extent[1] / 2 + 3.0, -extent[2] / 2 - 2.0))
    pet_world = _world_grid(pet_aff, pet_shape)
    pet = np.where(
        (pet_world[..., 0] / (0.42 * extent[0])) ** 2 + (pet_world[..., 1] / (0.36 * extent[1])) ** 2 < 1, 1.0, 0.05
    )
    for lesion in lesions:
        pet[np.linalg.norm(pet_world - lesion.centre, axis=-1) <= lesion.radius_mm] = lesion.suv
    pet = (pet + rng.normal(0, 0.05, pet_shape)).clip(0).astype(np.float32)
    ct_vol = Volume(ct.astype(np.int16), ct_aff, {"role": "ct"})
    pet_vol = Volume(pet, pet_aff, {"role": "pet", "units": "SUVbw"})
    return Study(ct_vol, pet_vol, ct_vol.with_array(truth, role="labels"), case_id, "generic")


def write_hecktor2022(study: Study, folder: Path) -> Path:
    """Write the study's CT and PET as ``<id>__CT.nii.gz`` / ``<id>__PT.nii.gz``; return the CT path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, suffix in (("ct", "CT"), ("pet", "PT")):
        vol = getattr(study, role)
        image = nib.Nifti1Image(vol.array, vol.affine)
        image.set_qform(vol.affine, code=1)
        image.set_sform(vol.affine, code=1)
        paths[role] = folder / f"{study.case_id}__{suffix}.nii.gz"
        nib.save(image, str(paths[role]))
    return paths["ct"]


class ThresholdNet(nn.Module):
    """A fully convolutional toy 'network' with known answers: class ``label`` where SUV > threshold.

    Channel ``pet_channel`` holds SUV (card preprocessing ``pet="suv"`` with scale 1).
    With ``click_guided`` it ignores the click channels.
    """

    divisor = 1

    def __init__(self, in_channels: int = 2, pet_channel: int = 1, threshold: float = 4.0, gain: float = 4.0,
                 label: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, 3, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.tensor([0.0, -50.0, -50.0]))
            self.conv.bias[label] = -gain * threshold
            self.conv.weight[label, pet_channel] = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def threshold_card(click: bool = False, **changes) -> ModelCard:
    inputs = IMAGE_INPUTS + CLICK_INPUTS if click else IMAGE_INPUTS
    card = ModelCard(
        name="toy-threshold", architecture="ThresholdNet", weights=("toy.safetensors",), inputs=inputs,
        task="click" if click else "automatic", spacing_mm=(2.5, 2.5, 2.5),
        patch_size=(32, 32, 16) if click else (24, 24, 16),
        preprocessing=Preprocessing(pet="suv", pet_scale=1.0), min_region_ml=0.0,
    )
    return card.with_changes(**changes)


def threshold_model(click: bool = False, **changes) -> Model:
    card = threshold_card(click, **changes)
    return Model(card, [ThresholdNet(card.in_channels)])


def tiny_card(name: str = "tiny", *, architecture: str = "SENormResUNet", click: bool = False, folds: int = 1) -> ModelCard:
    weights = (f"{name}.safetensors",) if folds == 1 else tuple(f"{name}_f{i}.safetensors" for i in range(folds))
    return ModelCard(
        name=name, architecture=architecture, arguments={"base_channels": 4, "depth": 2},
        inputs=IMAGE_INPUTS + CLICK_INPUTS if click else IMAGE_INPUTS, task="click" if click else "automatic",
        spacing_mm=(4.0, 4.0, 4.0), patch_size=(16, 16, 16), weights=weights,
    )


def save_tiny_model(folder: Path, name: str = "tiny", **kwargs) -> Path:
    """A randomly initialised tiny model written as card + safetensors; returns the card path."""
    card = tiny_card(name, **kwargs)
    return save_model(Model.random(card, seed=0).networks, card, folder)
