"""Shared fixtures: real data location, synthetic volumes with known geometry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _sts_candidates() -> list[Path]:
    env = os.environ.get("NAPARI_HNC_STS_DATA")
    return [Path(env)] if env else [REPO.parent / "shared" / "data" / "sts", Path("/work/shared/data/sts")]


@pytest.fixture(scope="session")
def sts_root() -> Path:
    """The real FDG PET/CT cases (TCIA Soft-tissue Sarcoma, CC BY 3.0) beside the checkout."""
    for candidate in _sts_candidates():
        if (candidate / "STS_001").is_dir():
            return candidate
    pytest.fail(
        "real test data not found; set NAPARI_HNC_STS_DATA to the folder holding STS_001..STS_003 "
        f"(looked in {[str(c) for c in _sts_candidates()]})"
    )


def _shared(name: str, env: str) -> list[Path]:
    value = os.environ.get(env)
    return [Path(value)] if value else [REPO.parent / "shared" / "data" / name, Path("/work/shared/data") / name]


@pytest.fixture(scope="session")
def dicom_hn_root() -> Path:
    """Two real H&N PET DICOM series with anonymised times (TCIA Head-Neck-PET-CT, CC BY 3.0; see its README)."""
    for candidate in _shared("dicom-hn", "NAPARI_HNC_DICOM_HN_DATA"):
        if (candidate / "HN-HGJ-016_PET").is_dir():
            return candidate
    pytest.fail("real test data not found; set NAPARI_HNC_DICOM_HN_DATA to the folder holding HN-HGJ-016_PET "
                f"and HN-HMR-029_PET (looked in {[str(c) for c in _shared('dicom-hn', 'NAPARI_HNC_DICOM_HN_DATA')]})")


@pytest.fixture(scope="session")
def ibsi_sts_root() -> Path:
    """41 real sarcoma PETs in SUV (IBSI validation set, CC BY 3.0; see its README)."""
    for candidate in _shared("ibsi-sts", "NAPARI_HNC_IBSI_STS_DATA"):
        if (candidate / "STS_001" / "PET_image.nii.gz").is_file():
            return candidate
    pytest.fail("real test data not found; set NAPARI_HNC_IBSI_STS_DATA to the folder holding STS_001/PET_image.nii.gz "
                f"(looked in {[str(c) for c in _shared('ibsi-sts', 'NAPARI_HNC_IBSI_STS_DATA')]})")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
