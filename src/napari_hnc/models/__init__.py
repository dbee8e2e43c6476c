"""Segmentation networks, model cards, weights and the model registry.

>>> from napari_hnc.models import ModelCard, Model
>>> card = ModelCard(name="tiny", architecture="ResUNetMHSA", arguments={"base_channels": 4, "depth": 2},
...                  weights=("tiny.safetensors",))
>>> Model.random(card, seed=0)
Model('tiny', ResUNetMHSA, 1 network(s), cpu)
"""

from __future__ import annotations

from .card import CLICK_INPUTS, IMAGE_INPUTS, ClickEncoding, ModelCard, Preprocessing
from .networks import ARCHITECTURES, ResUNetMHSA, RRSEUNet, SENormResUNet, UNet3D
from .presets import BUNDLED_PRESETS, preset_card
from .registry import (
    ENV_VAR,
    ModelEntry,
    available_models,
    bundled_dir,
    describe_installed,
    find_model,
    load_model,
    user_model_dirs,
)
from .weights_io import Model, build_network, load_model_file, save_model

__all__ = [
    "ARCHITECTURES", "BUNDLED_PRESETS", "CLICK_INPUTS", "ENV_VAR", "IMAGE_INPUTS", "ClickEncoding", "Model",
    "ModelCard", "ModelEntry", "Preprocessing", "RRSEUNet", "ResUNetMHSA", "SENormResUNet", "UNet3D",
    "available_models", "build_network", "bundled_dir", "describe_installed", "find_model", "load_model",
    "load_model_file", "preset_card", "save_model", "user_model_dirs",
]
