"""The Lesions dock: per-lesion (instance) MTV, SUVmax/mean/peak and TLG, study totals, export, class changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, Table
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from ...conventions import CLASS_NAMES, NODE, PRIMARY
from ...errors import HncError
from ..controller import controller_for

if TYPE_CHECKING:  # pragma: no cover
    import napari

SHOWN = ["instance", "class_name", "volume_ml", "suv_max", "suv_mean", "suv_peak", "tlg"]
HEADERS = ["lesion", "class", "MTV (ml)", "SUVmax", "SUVmean", "SUVpeak", "TLG"]


class LesionsWidget(Container):
    """Measure the lesions of the labels layer (in a worker thread) and export the table."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=False)
        self.controller = controller_for(napari_viewer)
        self.table = Table(value={h: [] for h in HEADERS})
        self.totals = Label(value="No measurement yet.")
        self.measure_button = PushButton(text="Measure lesions")
        self.export_path = FileEdit(label="Export to", mode="w", filter="*.csv *.json")
        self.export_button = PushButton(text="Export table (CSV or JSON)")
        self.new_class = ComboBox(label="Class", choices=[(CLASS_NAMES[c], c) for c in (PRIMARY, NODE)],
                                  tooltip="the class to give the lesion selected in the table")
        self.class_button = PushButton(text="Set class of selected lesion")
        self.delete_button = PushButton(text="Delete selected lesion")
        self.extend([self.measure_button, self.table, self.totals, self.new_class, self.class_button,
                     self.delete_button, self.export_path, self.export_button])
        self.frame: pd.DataFrame | None = None
        self.measure_button.changed.connect(self.measure)
        self.export_button.changed.connect(self._export)
        self.class_button.changed.connect(self._set_class)
        self.delete_button.changed.connect(self._delete)
        self.table.native.cellDoubleClicked.connect(self._go_to_row)

    def measure(self) -> None:
        """Quantify in a worker thread; the table fills in when it returns."""
        self.measure_button.enabled = False
        self._worker = create_worker(
            self.controller.quantify,
            _connect={"returned": self.show_table, "errored": self._failed, "finished": self._done},
        )

    def show_table(self, frame: pd.DataFrame) -> None:
        from ...pet import study_totals

        self.frame = frame
        rows = frame[SHOWN].round({"volume_ml": 2, "suv_max": 2, "suv_mean": 2, "suv_peak": 2, "tlg": 1})
        self.table.value = {h: rows[c].tolist() for h, c in zip(HEADERS, SHOWN)}
        totals = study_totals(frame)
        self.totals.value = (
            f"MTV primary {totals['mtv_primary_ml']:.2f} ml, nodes {totals['mtv_nodes_ml']:.2f} ml, "
            f"total tumour burden {totals['total_tumour_burden_ml']:.2f} ml"
        )

    def _go_to_row(self, row: int, _column: int) -> None:
        if self.frame is not None and 0 <= row < len(self.frame):
            lesion = self.frame.iloc[row]
            self.controller.go_to(np.array([lesion.centroid_x_mm, lesion.centroid_y_mm, lesion.centroid_z_mm]))

    def selected_lesion(self) -> int | None:
        """The instance id of the table's selected row (None without a selection)."""
        rows = sorted({index.row() for index in self.table.native.selectedIndexes()})
        if self.frame is None or not rows or rows[0] >= len(self.frame):
            return None
        return int(self.frame.iloc[rows[0]]["instance"])

    def _set_class(self) -> None:
        lesion = self.selected_lesion()
        if lesion is None:
            show_error("Select a lesion in the table first (measure the lesions if the table is empty).")
            return
        self.controller.refiner.set_class(lesion, int(self.new_class.value))
        self._measure_when_idle()

    def _delete(self) -> None:
        lesion = self.selected_lesion()
        if lesion is None:
            show_error("Select a lesion in the table first (measure the lesions if the table is empty).")
            return
        self.controller.refiner.delete_lesion(lesion)
        self._measure_when_idle()

    def _measure_when_idle(self) -> None:
        worker = self.controller.refiner.worker
        measured = []

        def done(busy: bool) -> None:
            if not busy and not measured:
                measured.append(True)
                worker.busy.disconnect(done)
                self.measure()

        worker.busy.connect(done)
        if worker.pending() == 0:  # the job finished before we listened: its signal is gone
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, lambda: done(False))  # after the results already queued for the viewer

    def _export(self) -> None:
        from ...pet import write_quantification

        if self.frame is None:
            show_error("Measure the lesions first.")
            return
        try:
            path = write_quantification(self.frame, Path(self.export_path.value),
                                        case_id=self.controller.current_study().case_id)
        except HncError as exc:
            show_error(str(exc))
            return
        show_info(f"Lesion table written to {path}")

    def _done(self) -> None:
        self.measure_button.enabled = True

    def _failed(self, exc: Exception) -> None:
        show_error(str(exc) if isinstance(exc, HncError) else f"Could not measure the lesions: {exc!r}")
