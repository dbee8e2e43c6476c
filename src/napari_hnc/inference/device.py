"""Device selection and the CUDA out-of-memory fallback.

* ``"auto"`` picks CUDA when present, else Apple's MPS, else the CPU.
* On CUDA the networks run under float16 autocast.
* On the CPU torch's thread count is set (by default to the CPUs this process may use).
* An out-of-memory error retries with half the tile batch, down to 1, then (from CUDA or MPS) on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

import torch

from ..errors import ModelError

log = logging.getLogger(__name__)
T = TypeVar("T")
_OOM_TEXTS = ("out of memory", "not enough memory", "can't allocate memory")


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.

    >>> select_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise ModelError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} was asked for but this torch build sees no CUDA GPU; use 'auto' or 'cpu'")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ModelError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA device(s)")
    if chosen.type == "mps" and not _mps_available():
        raise ModelError("device 'mps' was asked for but MPS is not available here; use 'auto' or 'cpu'")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ModelError(f"device {device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")
    return chosen


@dataclass(frozen=True)
class DeviceConfig:
    """Where and how networks run.

    Parameters
    ----------
    device : torch.device
    threads : int or None
        CPU threads (None: all available CPUs). Set on :meth:`activate`.
    autocast : bool
        Mixed precision (float16) on CUDA.
    """

    device: torch.device
    threads: int | None = None
    autocast: bool = True

    @classmethod
    def create(cls, device: str | torch.device = "auto", threads: int | None = None) -> "DeviceConfig":
        return cls(select_device(device), threads)

    def activate(self) -> None:
        """Apply the CPU thread count (the only global setting)."""
        if self.device.type == "cpu":
            wanted = self.threads or available_cpus()
            if torch.get_num_threads() != wanted:
                torch.set_num_threads(wanted)
                log.debug("torch CPU threads set to %d", wanted)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """``torch.inference_mode`` plus CUDA autocast when enabled."""
        with torch.inference_mode():
            if self.device.type == "cuda" and self.autocast:
                with torch.autocast("cuda", dtype=torch.float16):
                    yield
            else:
                yield


def is_out_of_memory(exc: BaseException) -> bool:
    """True for out-of-memory errors of CUDA, MPS or the CPU allocator."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or any(p in text for p in _OOM_TEXTS)
    )


def run_with_fallback(
    run: Callable[[torch.device, int], T], device: torch.device, batch_size: int
) -> T:
    """Call ``run(device, batch_size)``; on out-of-memory halve the batch, then fall back to the CPU.

    >>> calls = []
    >>> def run(device, batch):
    ...     calls.append((device.type, batch))
    ...     if device.type != "cpu":
    ...         raise RuntimeError("CUDA out of memory")
    ...     return "done"
    >>> run_with_fallback(run, torch.device("meta"), 4), calls
    ('done', [('meta', 4), ('meta', 2), ('meta', 1), ('cpu', 1)])
    """
    while True:
        try:
            return run(device, batch_size)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled
            if not is_out_of_memory(exc):
                raise
            _free(device)
            if batch_size > 1:
                batch_size //= 2
                log.warning("out of memory on %s; retrying with %d tile(s) per batch", device, batch_size)
            elif device.type != "cpu":
                log.warning("out of memory on %s even with one tile; continuing on the CPU (slower)", device)
                device = torch.device("cpu")
            else:
                raise ModelError(
                    "out of memory on the CPU even with one tile at a time; close other programs, or use a "
                    "model card with a smaller patch_size"
                ) from exc


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
