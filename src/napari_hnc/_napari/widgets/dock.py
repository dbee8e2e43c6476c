"""The one napari-hnc dock: the Study, Segment and Lesions panels as tabs, narrow enough for the canvas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QScrollArea, QTabWidget, QVBoxLayout, QWidget

from ..controller import controller_for
from .lesions import LesionsWidget
from .segment import SegmentWidget
from .study import StudyWidget

if TYPE_CHECKING:  # pragma: no cover
    import napari

#: the dock's widest (px): at 1600 px the canvas keeps more than 60 % of the window
DOCK_MAX_WIDTH = 290


class HncDock(QWidget):
    """Tabs "Study", "Segment" and "Lesions" in one narrow dock."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__()
        self.controller = controller_for(napari_viewer)
        self.study = StudyWidget(napari_viewer)
        self.segment = SegmentWidget(napari_viewer)
        self.lesions = LesionsWidget(napari_viewer)
        self.tabs = QTabWidget()
        for title, panel in (("Study", self.study), ("Segment", self.segment), ("Lesions", self.lesions)):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(panel.native)
            self.tabs.addTab(scroll, title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.setMaximumWidth(DOCK_MAX_WIDTH)

    def show_tab(self, title: str) -> None:
        """Bring the tab ``title`` ("Study", "Segment" or "Lesions") to the front."""
        titles = [self.tabs.tabText(i) for i in range(self.tabs.count())]
        self.tabs.setCurrentIndex(titles.index(title))
