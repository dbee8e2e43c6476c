"""Start napari with a study and the napari-hnc docks (``napari-hnc demo``)."""

from __future__ import annotations

from pathlib import Path

#: Dock widgets the demo opens, by their napari.yaml display names.
DEMO_DOCKS = ("Study", "Segment and refine", "Lesions")


def launch_demo(study: str | Path | None = None, *, run: bool = True):
    """Open a napari window with the study (default: the bundled sample) and the docks."""
    import napari

    from ..sample import sample_study_path
    from .controller import open_study

    viewer = napari.Viewer(title="napari-hnc")
    for dock in DEMO_DOCKS:
        viewer.window.add_plugin_dock_widget("napari-hnc", dock)
    open_study(viewer, study or sample_study_path())
    if run:
        napari.run()
    return viewer
