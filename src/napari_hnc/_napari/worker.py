"""The torch worker: one long-lived thread per viewer that owns the models and the device.

The GUI posts :class:`Job` objects; the thread runs them one at a time (so a
:class:`~napari_hnc.RefinementSession` is only ever touched by this thread) and
hands results back to the GUI thread through Qt signals. A newer job with the
same ``key`` replaces an older one still waiting in the queue. Long jobs get
a progress callback and a cancel token.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import sys
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from qtpy.QtCore import QObject, Signal

from ..progress import CancelToken

log = logging.getLogger(__name__)

_ids = itertools.count(1)

#: every worker still running, so that quitting the application (or Python) stops them first: a daemon
#: thread killed inside torch at interpreter exit aborts the process ("terminate called without an
#: active exception", exit code 134)
_WORKERS: "weakref.WeakSet[TorchWorker]" = weakref.WeakSet()


def shutdown_all(timeout: float = 10.0) -> None:
    """Cancel and join every running worker (on application quit and at interpreter exit)."""
    for worker in list(_WORKERS):
        worker.shutdown(timeout)


atexit.register(shutdown_all)
_hooked: list[Any] = []


def _quit_with_application() -> None:
    """Stop the workers when the Qt application quits (once per application)."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None and app not in _hooked:
        app.aboutToQuit.connect(shutdown_all)
        _hooked.append(app)


def default_threads() -> int:
    """torch threads for the worker: all CPUs but one, which the GUI keeps (at least one)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


def _limit_torch_threads(threads: int) -> None:
    """Set the torch (OpenMP) thread count of the calling thread.

    OpenMP keeps the thread count per calling thread: set on the GUI thread it would leave the
    worker with one thread per core, which on busy cores costs ten times the time.
    """
    torch = sys.modules.get("torch")
    if torch is None:  # the worker never imports torch itself (see Refiner)
        return
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


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


#: The worker threads' niceness above the GUI's (Linux): on a busy laptop CPU the scheduler runs the GUI's
#: drawing before inference (the GIL is still shared: Python work on the worker can still delay a redraw).
WORKER_NICENESS = 5


def _yield_to_gui() -> None:
    """Lower the calling thread's CPU priority by :data:`WORKER_NICENESS` (Linux only: elsewhere
    ``setpriority`` would change the whole process). Threads it starts (torch's pool) inherit it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICENESS)
    except (AttributeError, OSError) as exc:  # a sandbox without the call: the worker runs as is
        log.debug("worker priority left as it is: %s", exc)


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

    def __init__(self, name: str = "napari-hnc torch worker", threads: int | None = None, *,
                 torch: bool = True) -> None:
        super().__init__()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._in_flight = 0  # results sent to the GUI thread and not handled there yet
        self._stopped = False
        # connected first, so it runs before every other handler of a result
        self.returned.connect(self._delivered)
        self.errored.connect(self._delivered)
        #: torch threads on the worker thread (default: all CPUs but one)
        self.threads = threads or default_threads()
        #: False for a worker that runs no torch (measuring, autosaving): it must not touch torch's thread pool,
        #: whose resizing waits, holding the GIL, for the inference running on the torch worker
        self.uses_torch = torch
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        _WORKERS.add(self)
        _quit_with_application()
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
        """Jobs waiting or running, and results on their way to the GUI thread (a job just ended is
        pending until its result's handlers run: a redraw started meanwhile would meet the result)."""
        with self._cond:
            return len(self._queue) + (self._current is not None) + self._in_flight

    def _delivered(self, _job: Job, _result: Any) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)

    def cancel(self, kind: str | None = None) -> None:
        """Drop queued jobs (of one kind, or all) and ask the running one to stop."""
        with self._cond:
            for job in [j for j in self._queue if kind is None or j.kind == kind]:
                self._queue.remove(job)
            if self._current is not None and (kind is None or self._current.kind == kind):
                self._current.cancel.cancel()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the thread after the running job (which is asked to cancel); True once it has ended."""
        self.cancel()
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the torch worker is still busy after %.0f s", timeout)
            return False
        _WORKERS.discard(self)
        return True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ----------------------------------------------------------------- torch thread
    def _loop(self) -> None:
        _yield_to_gui()
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._current = self._queue.popleft()
            if self.uses_torch:
                _limit_torch_threads(self.threads)
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
            with self._cond:
                self._in_flight += 1
            self.errored.emit(job, exc)
        else:
            with self._cond:
                self._in_flight += 1
            self.returned.emit(job, result)
