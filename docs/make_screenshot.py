"""Write docs/images/screenshot.png: the napari-hnc window on a study, after the automatic proposal.

Run under a display (``xvfb-run -a python docs/make_screenshot.py [--study PATH]``). By default it
opens the synthetic head-and-neck phantom sample as ``napari-hnc demo`` does (axial, coronal and
sagittal views, the compact dock), segments it with the installed default model in the torch
worker, measures the lesions and saves a screenshot of the whole window. The side views' canvases
are grabbed one by one and put where they are in the window (a grab of the window leaves other
OpenGL canvases black).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", help="study to show (default: the phantom sample)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images" / "screenshot.png")
    args = parser.parse_args()
    import os
    import tempfile

    # a fresh user data folder: an autosave of an earlier run would be offered back in a message box
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="napari-hnc-screenshot-")

    import napari
    import numpy as np
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication

    import napari_hnc
    from napari_hnc._napari.controller import controller_for
    from napari_hnc._napari.launch import launch_demo

    viewer = launch_demo(args.study or napari_hnc.sample_study_path("phantom"), run=False)
    viewer.window._qt_window.resize(1600, 1000)  # noqa: SLF001 (window size for the picture only)
    refiner = controller_for(viewer).refiner
    app = QApplication.instance()
    deadline = time.time() + 120
    while (refiner.worker.pending() or time.time() < deadline - 115) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(100):
        app.processEvents()
        time.sleep(0.01)
    docks = [w for w in viewer.window.dock_widgets.values() if type(w).__name__ == "HncDock"]
    lesions = [dock.lesions for dock in docks]
    if docks:
        docks[0].show_tab("Lesions")
    if lesions:
        lesions[0].measure()
        while lesions[0].frame is None and time.time() < deadline + 60:
            app.processEvents()
            time.sleep(0.02)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.zoom *= 1.9
    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture = np.array(viewer.screenshot(canvas_only=False, flash=False))
    window = viewer.window._qt_window  # noqa: SLF001 (where the side views sit, for the picture only)
    scale = picture.shape[1] / window.width()
    for qt_viewer in controller_for(viewer).views.qt_viewers().values():
        canvas = qt_viewer.canvas.native
        corner = canvas.mapTo(window, QPoint(0, 0))
        shot = np.asarray(qt_viewer.screenshot(flash=False))
        top, left = int(round(corner.y() * scale)), int(round(corner.x() * scale))
        rows, cols = min(shot.shape[0], picture.shape[0] - top), min(shot.shape[1], picture.shape[1] - left)
        picture[top:top + rows, left:left + cols] = shot[:rows, :cols]
    from napari.utils.io import imsave

    imsave(str(args.out), picture)
    print(f"wrote {args.out}")
    viewer.close()
    napari.Viewer.close_all()


if __name__ == "__main__":
    main()
