"""npe2 writers: labels and images to NIfTI on the grid and header they were read with."""

from __future__ import annotations

from typing import Any

from ..io.nifti import save_labels, write_nifti
from .layers import layer_volume


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer as uint8 NIfTI (atomically) on its image's grid, affine and codes.

    Its lesion instances (and their provenance) go beside it when napari-hnc keeps them for the layer.
    """
    volume = layer_volume(data, attributes)
    return [str(save_labels(volume, volume, path))]


def write_image(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write an Image layer as NIfTI (atomically), keeping its source grid, dtype and header."""
    volume = layer_volume(data, attributes)
    return [str(write_nifti(volume, path))]
