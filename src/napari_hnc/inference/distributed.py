"""Sharding a cohort across processes started by ``torchrun`` (several GPUs or nodes).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; only then is
``torch.distributed`` initialised (NCCL on CUDA, gloo on the CPU) and torn down
again at the end. Each rank takes every ``WORLD_SIZE``-th case of the sorted
list, so no case is missed or done twice.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, TypeVar

from ..errors import HncError
from .device import available_cpus

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def label(self) -> str:
        return f"rank {self.rank}/{self.world_size}" if self.world_size > 1 else ""

    def device(self, requested: str) -> str:
        """The device of this rank: ``cuda:<local_rank>`` for CUDA runs, else as requested."""
        import torch

        wants_cuda = requested in ("auto", "cuda") and torch.cuda.is_available()
        return f"cuda:{self.local_rank}" if wants_cuda and self.world_size > 1 else requested

    def cpu_threads(self) -> int:
        """CPU threads per process, so the ranks on one machine share its CPUs."""
        return max(1, available_cpus() // max(1, self.local_world_size))


def env_info() -> DistInfo:
    """Rank and world size from the torchrun environment variables (not initialised).

    >>> env_info().world_size >= 1
    True
    """
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return DistInfo()
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env["RANK"])
        local = int(env.get("LOCAL_RANK", rank))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise HncError("RANK/WORLD_SIZE/LOCAL_RANK are not integers; start the run with torchrun") from None
    if not 0 <= rank < world:
        raise HncError(f"RANK={rank} does not fit WORLD_SIZE={world}; start the run with torchrun")
    return DistInfo(rank, world, local, local_world)


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistInfo]:
    """Initialise ``torch.distributed`` when started by torchrun; always tear it down.

    Outside torchrun this yields rank 0 of 1 and touches nothing.
    """
    info = env_info()
    if info.world_size <= 1:
        yield info
        return
    import torch
    import torch.distributed as dist

    use_cuda = info.device(device).startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    log.info("torch.distributed initialised: rank %d of %d (%s)", info.rank, info.world_size, backend)
    try:
        yield DistInfo(info.rank, info.world_size, info.local_rank, info.local_world_size, True)
    finally:
        dist.destroy_process_group()


def shard(items: Sequence[T], info: DistInfo) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th one, starting at ``rank``.

    >>> shard(list("abcde"), DistInfo(rank=1, world_size=2))
    ['b', 'd']
    """
    return list(items[info.rank :: info.world_size])


def gather(items: list[Any], info: DistInfo) -> list[Any]:
    """All ranks' ``items`` concatenated in rank order (this rank's only when not distributed)."""
    if not info.initialized:
        return list(items)
    import torch.distributed as dist

    everything: list[Any] = [None] * info.world_size
    dist.all_gather_object(everything, items)
    return [item for part in everything for item in part]
