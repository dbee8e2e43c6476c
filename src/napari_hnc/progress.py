"""Progress callbacks and cancel tokens for long-running core functions.

Core functions take ``progress(done, total, description)`` and a
:class:`CancelToken`; the napari layer maps them onto its progress bars and
worker threads, the CLI onto tqdm.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[int, int, str], None]


def no_progress(done: int, total: int, description: str = "") -> None:
    """A progress callback that does nothing."""


class CancelToken:
    """Set from any thread to ask a running function to stop at its next check.

    >>> token = CancelToken()
    >>> token.cancel()
    >>> token.raise_if_cancelled()
    Traceback (most recent call last):
    ...
    napari_hnc.errors.Cancelled: cancelled by the user
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def check(cancel: Optional[CancelToken]) -> None:
    """Raise :class:`Cancelled` when ``cancel`` is set (None never cancels)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def tqdm_progress(**tqdm_kwargs) -> ProgressFn:
    """A progress callback drawing a tqdm bar (for the CLI)."""
    from tqdm.auto import tqdm

    bar = None

    def update(done: int, total: int, description: str = "") -> None:
        nonlocal bar
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, **tqdm_kwargs)
        bar.set_description_str(description, refresh=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update
