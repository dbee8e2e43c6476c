"""The Lesions dock: per-lesion (instance) MTV, SUVmax/mean/peak and TLG, study totals, export, class changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, Table
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QAbstractItemView, QHeaderView

from ...conventions import CLASS_NAMES, NODE, PRIMARY
from ...errors import HncError
from ..controller import controller_for
from ..keys import KEYS
from ..worker import Job

if TYPE_CHECKING:  # pragma: no cover
    import napari

#: wait this long after the last change before measuring again (strokes come in bursts)
REFRESH_DELAY_MS = 150

SHOWN = ["instance", "class_name", "volume_ml", "suv_max", "suv_mean", "suv_peak", "tlg"]
#: the table shows about six rows without scrolling
TABLE_MIN_HEIGHT = 190
HEADERS = ["lesion", "class", "MTV (ml)", "SUVmax", "SUVmean", "SUVpeak", "TLG"]


class LesionsWidget(Container):
    """Measure the lesions of the labels layer (in a worker thread) and export the table."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=False)
        self.controller = controller_for(napari_viewer)
        self.table = Table(value={h: [] for h in HEADERS})
        table = self.table.native
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # a double-click goes there, no editor
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setMinimumHeight(TABLE_MIN_HEIGHT)
        table.verticalHeader().setVisible(False)  # the "lesion" column numbers the rows
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setToolTip("every lesion, measured again after each change; double-click a row to go there "
                         f"(keys {KEYS['next_lesion'][0]} / {KEYS['previous_lesion'][0]}: next / previous lesion)")
        self.totals = Label(value="No measurement yet.")
        self.totals.native.setWordWrap(True)
        self.measure_button = PushButton(text="Measure lesions", tooltip="measure again now (done after every change)")
        self.export_path = FileEdit(label="Export to", mode="w", filter="*.csv *.json",
                                    tooltip="a .csv or .json file for the lesion table")
        self.export_button = PushButton(text="Export table (CSV or JSON)")
        self.new_class = ComboBox(label="Class", choices=[(CLASS_NAMES[c], c) for c in (PRIMARY, NODE)],
                                  tooltip="the class to give the lesion selected in the table")
        self.class_button = PushButton(text="Set class of selected lesion")
        self.accept_button = PushButton(text="Accept selected lesion",
                                        tooltip="lock it: clicks and models will not change it")
        self.delete_button = PushButton(text="Delete selected lesion")
        self.extend([self.table, self.totals, self.measure_button, self.new_class, self.class_button,
                     self.accept_button, self.delete_button, self.export_path, self.export_button])
        self.frame: pd.DataFrame | None = None
        self._worker = None
        self._again = False
        self._timer = QTimer(self.native)  # dies with the dock
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.measure)
        self.measure_button.changed.connect(lambda: self.measure())
        self.export_button.changed.connect(lambda: self._export())
        self.class_button.changed.connect(lambda: self._set_class())
        self.accept_button.changed.connect(lambda: self._accept())
        self.delete_button.changed.connect(lambda: self._delete())
        table.cellDoubleClicked.connect(self._go_to_row)
        self.controller.change_listeners.append(self._labels_changed)
        self.controller.listeners.append(self.refresh_soon)
        self.controller.lesion_listeners.append(self._highlight)
        #: the per-lesion rows kept up to date box by box after each click or model result
        self._live = None
        self._live_box = None  # the file-order box changed since the last measurement (None: all)
        self._generation = 0  # bumped when everything must be measured again
        self._refiner = self.controller.refiner
        self._refiner.lesion_listeners.append(self._region_changed)
        worker = self.controller.measure_worker()
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)
        self.native.destroyed.connect(self._detach)
        QTimer.singleShot(0, lambda: self.controller.attach_window(self.native))
        if self.controller.study is not None:
            self.refresh_soon()

    def _returned(self, job: Job, frame) -> None:
        if job is self._worker:
            if isinstance(frame, tuple):  # a full measurement that also built the live table
                frame, table, generation = frame
                if generation == self._generation:
                    self._live = table
            try:
                self.show_table(frame)
            except RuntimeError:  # the dock's Qt widgets are gone
                self._detach()
            finally:
                self._done()

    def _errored(self, job: Job, exc: BaseException) -> None:
        if job is self._worker:
            try:
                self._failed(exc)
            except RuntimeError:
                self._detach()
            finally:
                self._done()

    def _detach(self, *_args) -> None:
        try:
            worker = self.controller.measure_worker()
            worker.returned.disconnect(self._returned)
            worker.errored.disconnect(self._errored)
        except (TypeError, RuntimeError):
            pass
        for listeners, slot in ((self.controller.change_listeners, self._labels_changed),
                                (self.controller.listeners, self.refresh_soon),
                                (self.controller.lesion_listeners, self._highlight),
                                (self._refiner.lesion_listeners, self._region_changed)):
            if slot in listeners:
                listeners.remove(slot)

    def _labels_changed(self, kind: str = "edit") -> None:
        """A brush stroke (everything is measured again) or a model result (its region, see below)."""
        if kind == "edit":
            self.refresh_soon()

    def _region_changed(self, update) -> None:
        """A click or model result changed ``update.slices``: measure the lesions there (None: all)."""
        box = getattr(update, "slices", None)
        if box is None or self._live is None:
            self._live = None
        else:
            from ...pet.live import _union

            self._live_box = box if self._live_box is None else _union(self._live_box, box)
        self._timer.start(0)

    def refresh_soon(self, *_args) -> None:
        """Measure everything again shortly (a stroke, or another study opened)."""
        self._live = None
        self._generation += 1
        try:
            self._timer.start(REFRESH_DELAY_MS)
        except RuntimeError:  # the dock is gone
            self._detach()

    def measure(self) -> None:
        """Quantify in a worker thread; the table fills in when it returns (once more if changed meanwhile)."""
        if self._worker is not None:
            self._again = True
            return
        layer = self.controller.layer("labels")
        if layer is None or self.controller.layer("pet") is None:
            self.frame = None
            self.table.value = {h: [] for h in HEADERS}
            self.totals.value = "No lesions to measure: open a study with a PET."
            return
        self.measure_button.enabled = False
        self._worker = self.controller.measure_worker().submit(Job("measure", self._measurement()))

    def _measurement(self):
        """The measuring job: the live table's rows in the changed box, or everything."""
        live, box, self._live_box = self._live, self._live_box, None
        if live is None or box is None:
            refiner, ctl = self._refiner, self.controller

            def measure_all(progress, cancel):
                return ctl.quantify()

            if self._refiner._session is not None:  # clicks keep an instance map: follow it box by box from now
                labels, instances = np.array(refiner.file_labels()), np.array(refiner.file_instances())
                study = ctl.current_study()

                generation = self._generation

                def measure_all(progress, cancel):  # noqa: F811 - the same, keeping the live table
                    from ...pet.live import LiveLesionTable

                    table = LiveLesionTable(study, study.grid)
                    return table.update(labels, instances), table, generation

            return measure_all
        labels, instances = np.array(self._refiner.file_labels()), np.array(self._refiner.file_instances())
        return lambda progress, cancel: live.update(labels, instances, box)

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

        self._highlight(self.controller.current_lesion)

    def _go_to_row(self, row: int, _column: int) -> None:
        if self.frame is not None and 0 <= row < len(self.frame):
            lesion = self.frame.iloc[row]
            self.controller.current_lesion = int(lesion.instance)
            self.controller.go_to(np.array([lesion.centroid_x_mm, lesion.centroid_y_mm, lesion.centroid_z_mm]))

    def _highlight(self, lesion: int | None) -> None:
        """Select the row of ``lesion`` (the one gone to, or being refined)."""
        if self.frame is None or lesion is None:
            return
        rows = np.flatnonzero(self.frame["instance"].to_numpy() == lesion)
        if rows.size:
            self.table.native.selectRow(int(rows[0]))

    def selected_lesion(self) -> int | None:
        """The instance id of the table's selected row (None without a selection)."""
        rows = sorted({index.row() for index in self.table.native.selectedIndexes()})
        if self.frame is None or not rows or rows[0] >= len(self.frame):
            return None
        return int(self.frame.iloc[rows[0]]["instance"])

    def _chosen(self) -> int | None:
        """The selected lesion, or None after telling the user to select one."""
        lesion = self.selected_lesion()
        if lesion is None:
            show_error("Select a lesion in the table first.")
        return lesion

    def _set_class(self) -> None:
        if (lesion := self._chosen()) is not None:
            self.controller.refiner.set_class(lesion, int(self.new_class.value))

    def _accept(self) -> None:
        if (lesion := self._chosen()) is not None:
            self.controller.refiner.accept_lesion(lesion)

    def _delete(self) -> None:
        if (lesion := self._chosen()) is not None:
            self.controller.refiner.delete_lesion(lesion)

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
        self._worker = None
        try:
            self.measure_button.enabled = True
        except RuntimeError:
            return
        if self._again:
            self._again = False
            self.measure()

    def _failed(self, exc: Exception) -> None:
        show_error(str(exc) if isinstance(exc, HncError) else f"Could not measure the lesions: {exc!r}")
