"""The torch worker: one long-lived thread per viewer that owns the models and the device.

The GUI posts :class:`Job` objects; the thread runs them one at a time (so a
:class:`~napari_hnc.RefinementSession` is only ever touched by this thread) and
hands results back to the GUI thread through Qt signals. A newer job with the
same ``key`` replaces an older one still waiting in the queue. Long jobs get
a progress callback and a cancel token.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from qtpy.QtCore import QObject, Signal

from ..progress import CancelToken

log = logging.getLogger(__name__)

_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    """Work for the torch thread.

    Attributes
    ----------
    kind : str
        What it is ("segment", "click", "edit", "undo"...), for the handlers.
    run : callable
        ``run(progress, cancel) -> result``, called on the torch thread.
    key : hashable, optional
        Jobs with the same key supersede each other while queued.
    context : dict
        Anything the GUI needs back with the result (edit counter, layer...).
    """

    kind: str
    run: Callable[[Callable[[int, int, str], None], CancelToken], Any]
    key: Hashable | None = None
    context: dict[str, Any] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_ids))
    cancel: CancelToken = field(default_factory=CancelToken)


class TorchWorker(QObject):
    """A queue of :class:`Job` s run in order by one daemon thread.

    Signals (delivered on the GUI thread): ``returned(job, result)``,
    ``errored(job, exception)``, ``progressed(job, done, total, description)``,
    ``busy(bool)``.
    """

    returned = Signal(object, object)
    errored = Signal(object, object)
    progressed = Signal(object, int, int, str)
    busy = Signal(bool)

    def __init__(self, name: str = "napari-hnc torch worker") -> None:
        super().__init__()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- GUI side
    def submit(self, job: Job) -> Job:
        """Queue a job (replacing a queued one with the same key); returns it."""
        with self._cond:
            if job.key is not None:
                for old in [j for j in self._queue if j.key == job.key]:
                    self._queue.remove(old)
                    log.debug("job %s superseded by %s", old.id, job.id)
            self._queue.append(job)
            self._cond.notify()
        return job

    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._cond:
            return len(self._queue) + (self._current is not None)

    def cancel(self, kind: str | None = None) -> None:
        """Drop queued jobs (of one kind, or all) and ask the running one to stop."""
        with self._cond:
            for job in [j for j in self._queue if kind is None or j.kind == kind]:
                self._queue.remove(job)
            if self._current is not None and (kind is None or self._current.kind == kind):
                self._current.cancel.cancel()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the thread after the running job (which is asked to cancel)."""
        self.cancel()
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ----------------------------------------------------------------- torch thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._current = self._queue.popleft()
            self.busy.emit(True)
            self._run(job)
            with self._cond:
                self._current = None
                idle = not self._queue
            if idle:
                self.busy.emit(False)

    def _run(self, job: Job) -> None:
        def progress(done: int, total: int, description: str = "") -> None:
            self.progressed.emit(job, int(done), int(total), str(description))

        try:
            result = job.run(progress, job.cancel)
        except BaseException as exc:  # reported to the GUI, never lost in the thread
            log.debug("job %s (%s) failed: %r", job.id, job.kind, exc)
            self.errored.emit(job, exc)
        else:
            self.returned.emit(job, result)
