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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
