"""Running the models: preprocessing per card, sliding window, ensembles, devices and click refinement.

The notebook entry points are :func:`segment` (whole study) and
:class:`RefinementSession` (click-guided refinement of one lesion at a time).
"""

from __future__ import annotations

from .automatic import Prediction, predict_probabilities, segment
from .device import DeviceConfig, run_with_fallback, select_device
from .ensemble import EnsemblePredictor
from .region import RegionUpdate
from .session import RefinementSession
from .sliding_window import WindowConfig, sliding_window

__all__ = [
    "DeviceConfig", "EnsemblePredictor", "Prediction", "RefinementSession", "RegionUpdate", "WindowConfig",
    "predict_probabilities", "run_with_fallback", "segment", "select_device", "sliding_window",
]
