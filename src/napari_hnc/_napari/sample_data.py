"""npe2 sample data: the bundled studies as layers."""

from __future__ import annotations

from ..sample import sample_study_path
from ..study import load_study
from .layers import LayerDataTuple, study_layers


def sample_sts001() -> list[LayerDataTuple]:
    """Real FDG PET/CT with a tumour mask (TCIA Soft-tissue Sarcoma STS_001, CC BY 3.0)."""
    return study_layers(load_study(sample_study_path("sts001")))
