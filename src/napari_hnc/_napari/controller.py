"""One controller per viewer: the open study, its layers and the actions on them.

Widgets read parameters and call one method here; nothing here draws widgets.
There is no global state: :func:`controller_for` keeps one controller per
viewer in a weak dictionary, so a closed viewer takes its controller with it.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Layer

from ..conventions import ct_contrast_limits
from ..errors import HncError
from ..geometry import Volume, ras_to_napari
from ..study import Study, load_study
from .layers import META_CASE, META_ROLE, labels_layer, layer_volume, study_layers
from .writer import write_labels

if TYPE_CHECKING:  # pragma: no cover
    from napari.components import ViewerModel

log = logging.getLogger(__name__)

_CONTROLLERS: "weakref.WeakKeyDictionary[Any, StudyController]" = weakref.WeakKeyDictionary()


class StudyController:
    """The study shown in one napari viewer and the operations the docks need."""

    def __init__(self, viewer: "ViewerModel") -> None:
        self._viewer = weakref.ref(viewer)
        self.study: Study | None = None
        self._refiner = None
        #: Called (no arguments) when a model was added, e.g. by the Improve dock.
        self.model_listeners: list = []
        #: Keep every saved study for "Improve the model" (the saved cases, :mod:`napari_hnc.training.saved_cases`).
        self.keep_saved_cases = True

    @property
    def refiner(self):
        """Automatic segmentation and click refinement through this viewer's torch worker."""
        if self._refiner is None:
            from .refine import Refiner

            self._refiner = Refiner(self)
        return self._refiner

    @property
    def viewer(self) -> "ViewerModel":
        viewer = self._viewer()
        if viewer is None:
            raise HncError("the viewer of this controller was closed")
        return viewer

    # ----------------------------------------------------------------- opening
    def open(self, source: str | Path | Study, **load_kwargs: Any) -> Study:
        """Load a study (path or :class:`Study`) and show it fused; adds an empty labels layer if needed."""
        study = source if isinstance(source, Study) else load_study(source, **load_kwargs)
        if study.labels is None:
            study = study.with_labels(study.empty_labels())
        for data, kwargs, layer_type in study_layers(study):
            self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        self.study = study
        self.viewer.reset_view()
        self.go_to(self._focus_point(study))
        return study

    def _focus_point(self, study: Study) -> np.ndarray:
        labels = np.asarray(study.labels.array) if study.labels is not None else None
        if labels is not None and labels.any():
            from ..pet.components import largest_lesion_centre

            return study.grid.voxel_to_world(largest_lesion_centre(labels))
        if study.pet is not None:
            peak = np.unravel_index(int(np.argmax(study.pet.array)), study.pet.shape)
            return study.pet.voxel_to_world(peak)
        return study.grid.center_world()

    def go_to(self, world_ras: Any) -> None:
        """Move the sliders to a world RAS point (mm)."""
        point = ras_to_napari(world_ras)
        for axis, value in enumerate(point):
            self.viewer.dims.set_point(axis, float(value))

    # ----------------------------------------------------------------- layers
    def layer(self, role: str) -> Layer | None:
        """This study's layer of a role ("ct", "pet", "labels"); the selected one wins among several."""
        case = self.study.case_id if self.study is not None else None
        candidates = [
            layer for layer in self.viewer.layers
            if layer.metadata.get(META_ROLE) == role and (case is None or layer.metadata.get(META_CASE) == case)
        ]
        selected = [layer for layer in candidates if layer in self.viewer.layers.selection]
        return (selected or candidates or [None])[-1]

    def current_study(self) -> Study:
        """The open study, or one rebuilt from the CT/PET layers napari-hnc opened (File > Open)."""
        if self.study is not None:
            return self.study
        volumes = {}
        for role in ("ct", "pet"):
            layer = self.layer(role)
            if isinstance(layer, Image):
                volume = layer_volume(layer.data, layer.as_layer_data_tuple()[1])
                volume.metadata.update(role=role, units=layer.metadata.get("units"))
                volumes[role] = volume
        if not volumes:
            raise HncError("no CT or PET opened by napari-hnc is shown; open a study first (File > Open, or the Study dock)")
        case = next(iter(l.metadata.get(META_CASE) for l in self.viewer.layers if l.metadata.get(META_CASE)), "study")
        self.study = Study(volumes.get("ct"), volumes.get("pet"), None, case_id=case)
        return self.study

    def labels_layer(self) -> Labels:
        """The study's labels layer, created empty on the label grid if there is none."""
        layer = self.layer("labels")
        if isinstance(layer, Labels):
            return layer
        study = self.current_study()
        data, kwargs, _ = labels_layer(study.empty_labels(), case_id=study.case_id)
        kwargs["metadata"]["header"] = study.grid.metadata.get("header")
        return self.viewer.add_labels(data, **kwargs)

    def labels_volume(self) -> Volume:
        """The labels as a Volume on the image grid they were drawn on."""
        layer = self.labels_layer()
        return layer_volume(layer.data, layer.as_layer_data_tuple()[1])

    def quantify(self):
        """Per-lesion table (MTV, SUVmax/mean/peak, TLG, centroid) of the labels layer."""
        from ..pet import quantify

        return quantify(self.current_study(), self.labels_volume())

    def save_labels(self, path: str | Path) -> Path:
        """Write the labels layer to NIfTI on its image's grid (atomically)."""
        layer = self.labels_layer()
        written = write_labels(str(path), layer.data, layer.as_layer_data_tuple()[1])
        return Path(written[0])

    def saved_case_job(self):
        """A function that adds the study and its labels to the saved cases (run it off the GUI thread)."""
        from ..training.saved_cases import record_case

        study, labels = self.current_study(), self.labels_volume()
        return lambda: record_case(study, labels)

    def models_changed(self) -> None:
        """Tell the docks that the installed models changed."""
        for listener in list(self.model_listeners):
            listener()

    # ----------------------------------------------------------------- display
    def set_ct_window(self, window: str | tuple[float, float]) -> None:
        layer = self.layer("ct")
        if isinstance(layer, Image):
            layer.contrast_limits = ct_contrast_limits(window)

    def set_pet_display(self, suv_max: float | None = None, opacity: float | None = None) -> None:
        layer = self.layer("pet")
        if not isinstance(layer, Image):
            return
        if suv_max is not None:
            layer.contrast_limits_range = (0.0, max(float(suv_max), layer.contrast_limits_range[1]))
            layer.contrast_limits = (0.0, float(suv_max))
        if opacity is not None:
            layer.opacity = float(opacity)

    def summary(self) -> str:
        """One line per image of the open study."""
        if self.study is None:
            return "No study open."
        lines = [f"Case {self.study.case_id} ({self.study.layout})"]
        for role in ("ct", "pet"):
            vol = getattr(self.study, role)
            if vol is not None:
                spacing = " x ".join(f"{s:.2f}" for s in vol.spacing)
                units = f", {vol.metadata.get('units')}" if role == "pet" else ""
                lines.append(f"{role.upper()}: {vol.shape} voxels of {spacing} mm{units}")
        return "\n".join(lines)


def controller_for(viewer: "ViewerModel") -> StudyController:
    """The viewer's controller, created on first use."""
    if viewer not in _CONTROLLERS:
        _CONTROLLERS[viewer] = StudyController(viewer)
    return _CONTROLLERS[viewer]


def open_study(viewer: "ViewerModel", path: str | Path | Study, **load_kwargs: Any) -> Study:
    """Open a PET/CT study in a napari viewer, fused and aligned in world millimetres.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    path : str, Path or Study
        Anything :func:`napari_hnc.load_study` accepts, or a loaded Study.
    **load_kwargs
        Passed to :func:`napari_hnc.load_study` (``ct=``, ``pet=``, ``labels=``...).

    Examples
    --------
    >>> import napari, napari_hnc
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> napari_hnc.open_study(viewer, napari_hnc.sample_study_path())  # doctest: +SKIP
    """
    return controller_for(viewer).open(path, **load_kwargs)
