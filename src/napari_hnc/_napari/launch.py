"""Start napari with a study, the napari-hnc docks and the automatic proposal (``napari-hnc demo``)."""

from __future__ import annotations

from pathlib import Path

#: Dock widgets the demo opens, by their napari.yaml display names: the one compact dock.
DEMO_DOCKS = ("napari-hnc",)
#: the demo window's size (px): the canvas gets more than 60 % of its width
DEMO_WINDOW = (1600, 1000)


def launch_demo(study: str | Path | None = None, *, run: bool = True, segment: bool = True):
    """Open a napari window with the study (default: the bundled sample) and the docks.

    When an automatic model is installed it segments the study in the torch
    worker; the study's own labels (if any) are then shown as an outlined
    "reference" layer beside the proposal.
    """
    import napari
    import numpy as np

    from ..models.registry import available_models
    from ..sample import sample_study_path
    from ..study import load_study
    from .controller import controller_for, open_study
    from .layers import META_ROLE, labels_layer

    viewer = napari.Viewer(title="napari-hnc")
    loaded = load_study(study or sample_study_path())
    has_model = segment and any(e.card.task == "automatic" for e in available_models())
    if has_model and loaded.labels is not None:
        reference = loaded.labels
        open_study(viewer, loaded.with_labels(None))
        data, kwargs, _ = labels_layer(reference, case_id=loaded.case_id, name=f"{loaded.case_id} reference")
        kwargs["metadata"][META_ROLE] = "reference"
        viewer.add_labels(data, **kwargs).contour = 1
        viewer.layers.selection.active = controller_for(viewer).labels_layer()
        # open on the reference lesion, not on the PET maximum (which may lie on an edge slice)
        from ..pet.components import largest_lesion_centre

        controller_for(viewer).go_to(loaded.grid.voxel_to_world(largest_lesion_centre(np.asarray(reference.array))))
    else:
        open_study(viewer, loaded)
    for dock in DEMO_DOCKS:
        viewer.window.add_plugin_dock_widget("napari-hnc", dock, tabify=False)
    if hasattr(viewer.window, "resize"):
        viewer.window.resize(*DEMO_WINDOW)
    controller_for(viewer).views.show()  # axial, coronal and sagittal
    if has_model:
        controller_for(viewer).refiner.auto_segment("default")
    if run:
        napari.run()
    return viewer
