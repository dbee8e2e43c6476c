"""Volumes <-> napari layer data tuples (the reader, the writer and the controller share these)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from napari.utils.colormaps import Colormap
from napari.utils.transforms import Affine

from ..conventions import CLASS_COLORS, CLASS_NAMES, ct_contrast_limits
from ..display import pet_display_max
from ..geometry import LayerGeometry, Volume, from_napari, to_napari
from ..study import Study, iter_volumes

#: Metadata keys napari-hnc puts on its layers.
META_ROLE = "napari_hnc_role"
META_CASE = "napari_hnc_case_id"
META_GEOMETRY = "napari_hnc_geometry"
#: A Labels layer's lesion instance ids (uint16, in the file's voxel order) and their provenance.
META_INSTANCES = "napari_hnc_instances"
META_PROVENANCE = "napari_hnc_provenance"

#: Hot-iron PET colour map: black (0 SUV) through red and yellow to white.
PET_COLORMAP = Colormap(
    colors=[[0, 0, 0, 1], [0.5, 0, 0, 1], [1, 0.2, 0, 1], [1, 0.75, 0, 1], [1, 1, 0.6, 1], [1, 1, 1, 1]],
    controls=[0.0, 0.2, 0.45, 0.7, 0.88, 1.0],
    name="PET hot iron",
)

LayerDataTuple = tuple[Any, dict[str, Any], str]


def pet_contrast_limits(array: np.ndarray) -> tuple[float, float]:
    """0 SUV to max(10 SUV, 99.9th percentile)."""
    return 0.0, pet_display_max(array)


def _metadata(volume: Volume, geometry: LayerGeometry, role: str, case_id: str | None) -> dict[str, Any]:
    return {
        "source_path": volume.metadata.get("path") or volume.metadata.get("source_path"),
        "affine": volume.affine.copy(),
        "header": volume.metadata.get("header"),
        "units": volume.metadata.get("units"),
        META_ROLE: role,
        META_CASE: case_id,
        META_GEOMETRY: geometry.as_metadata(),
    }


def image_layer(volume: Volume, role: str, *, case_id: str | None = None, name: str | None = None) -> LayerDataTuple:
    """Layer data tuple of a CT (grey, W400/L40) or PET (SUV, hot iron, additive)."""
    data, affine, geometry = to_napari(volume)
    kwargs: dict[str, Any] = {
        "name": name or f"{case_id or 'image'} {role.upper()}",
        "affine": affine,
        "metadata": _metadata(volume, geometry, role, case_id),
    }
    if role == "ct":
        kwargs.update(colormap="gray", contrast_limits=ct_contrast_limits(), blending="translucent")
    elif role == "pet":
        kwargs.update(
            colormap=PET_COLORMAP,
            contrast_limits=pet_contrast_limits(volume.array),
            blending="additive",
            interpolation2d="linear",
            interpolation3d="linear",
            rendering="mip",
        )
    return data, kwargs, "image"


def label_features() -> pd.DataFrame:
    """Features table naming each class (napari shows it in the status bar)."""
    return pd.DataFrame({"index": list(CLASS_NAMES), "class": list(CLASS_NAMES.values())})


def label_colormap() -> dict[int | None, tuple[float, ...]]:
    return {**CLASS_COLORS, None: (1.0, 0.85, 0.0, 1.0)}


def labels_layer(volume: Volume, *, case_id: str | None = None, name: str | None = None) -> LayerDataTuple:
    """Layer data tuple of a labels Volume (1 primary tumour, 2 lymph node)."""
    data, affine, geometry = to_napari(volume)
    if not data.flags.writeable:
        data = np.array(data)
    metadata = _metadata(volume, geometry, "labels", case_id)
    if volume.metadata.get("instances") is not None:
        metadata[META_INSTANCES] = np.array(volume.metadata["instances"], dtype=np.uint16, copy=True)
    if volume.metadata.get("provenance") is not None:
        metadata[META_PROVENANCE] = volume.metadata["provenance"]
    kwargs = {
        "name": name or f"{case_id or 'study'} labels",
        "affine": affine,
        "metadata": metadata,
        "colormap": label_colormap(),
        "features": label_features(),
        "opacity": 0.6,
    }
    return data, kwargs, "labels"


def volume_layer(volume: Volume, role: str, *, case_id: str | None = None) -> LayerDataTuple:
    if role == "labels":
        return labels_layer(volume, case_id=case_id)
    return image_layer(volume, role, case_id=case_id)


def study_layers(study: Study) -> list[LayerDataTuple]:
    """CT, PET and labels layers of a study (the labels' header is the CT's, so saving lines up)."""
    layers = []
    for role, volume in iter_volumes(study):
        if role == "labels" and volume.metadata.get("header") is None:
            volume = volume.with_array(volume.array, header=study.grid.metadata.get("header"))
        layers.append(volume_layer(volume, role, case_id=study.case_id))
    return layers


# --------------------------------------------------------------------------- back to Volumes


def data_to_world_matrix(attributes: dict[str, Any]) -> np.ndarray:
    """Full 4x4 data-to-world matrix from a layer's state (scale, translate, rotate, shear, affine)."""
    ndim = 3
    physical = Affine(
        scale=attributes.get("scale", np.ones(ndim)),
        translate=attributes.get("translate", np.zeros(ndim)),
        rotate=attributes.get("rotate", np.eye(ndim)),
        shear=attributes.get("shear", np.zeros(ndim * (ndim - 1) // 2)),
        ndim=ndim,
    )
    world = np.asarray(attributes.get("affine", np.eye(ndim + 1)), dtype=float)
    if isinstance(attributes.get("affine"), Affine):
        world = attributes["affine"].affine_matrix
    return world @ physical.affine_matrix


def layer_volume(data: Any, attributes: dict[str, Any]) -> Volume:
    """A Volume from a layer's data and state: on the source file's grid when the layer still sits there."""
    data = np.asarray(data)
    if data.ndim != 3:
        from ..errors import GeometryError

        raise GeometryError(f"napari-hnc writes 3D layers; this one has shape {data.shape}")
    meta = dict(attributes.get("metadata") or {})
    geometry = LayerGeometry.from_metadata(meta[META_GEOMETRY]) if META_GEOMETRY in meta else None
    volume = from_napari(data, data_to_world_matrix(attributes), geometry)
    if geometry is not None and np.allclose(volume.affine, geometry.file_affine):
        volume.metadata["header"] = meta.get("header")
        instances = meta.get(META_INSTANCES)
        if instances is not None and np.shape(instances) == volume.shape:
            volume.metadata["instances"] = instances
            volume.metadata["provenance"] = meta.get(META_PROVENANCE)
    volume.metadata["path"] = meta.get("source_path")
    return volume
