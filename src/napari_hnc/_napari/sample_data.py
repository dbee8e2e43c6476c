"""npe2 sample data: the bundled studies as layers."""

from __future__ import annotations

from ..sample import PHANTOM_SAMPLE_SEED, sample_study_path
from ..study import load_study
from .layers import LayerDataTuple, study_layers


def sample_sts001() -> list[LayerDataTuple]:
    """Real FDG PET/CT with a tumour mask (TCIA Soft-tissue Sarcoma STS_001, CC BY 3.0)."""
    return study_layers(load_study(sample_study_path("sts001")))


def sample_phantom() -> list[LayerDataTuple]:
    """A synthetic head-and-neck FDG PET/CT with a primary tumour and nodes (generated in memory)."""
    from ..phantom import generate_case

    return study_layers(generate_case(PHANTOM_SAMPLE_SEED, "default").study)
