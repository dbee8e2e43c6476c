"""Resume checkpoints: plain tensors and primitives written with ``torch.save`` and read back with
``torch.load(..., weights_only=True)`` (no pickled objects are ever executed).

A checkpoint holds the network, optimiser and scheduler states, the number of
finished epochs, the best validation score so far and the per-epoch history;
the final weights are safetensors written by :func:`napari_hnc.models.save_model`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import torch

from ..errors import HncError

CHECKPOINT = "last.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    >>> import tempfile
    >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "last.pt", {"epoch": 3, "w": torch.ones(2)})
    >>> state = load_checkpoint(path)
    >>> state["epoch"], state["w"].tolist()
    (3, [1.0, 1.0])
    """
    path = Path(path)
    if not path.is_file():
        raise HncError(f"there is no checkpoint {path} to resume from; start the run without --resume")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise HncError(f"the checkpoint {path} cannot be read ({exc}); delete it and start again") from exc
