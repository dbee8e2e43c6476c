"""Options and checks every sub-command that writes files or picks a device shares.

* ``--overwrite``: no command replaces an existing file without it; the check runs before any work.
* ``--device``: checked when the command line is read (a bad value exits with 2, before anything loads).
* :func:`finished`: what a command has completed, so that Ctrl-C can say it (:func:`napari_hnc.cli.main`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterable

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default: %(default)s)"


def device_option(text: str) -> str:
    """argparse ``type=`` for ``--device``: the value, lower-cased, or an argparse error (exit 2).

    >>> device_option("CUDA:1")
    'cuda:1'
    """
    value = str(text).strip().lower()
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", type=device_option, help=DEVICE_HELP)


def check_device(name: str) -> None:
    """:class:`~napari_hnc.cli.UsageError` when the asked device is not available on this machine."""
    from ..cli import UsageError
    from ..errors import ModelError
    from ..inference.device import select_device

    try:
        select_device(name)
    except ModelError as exc:
        raise UsageError(f"--device {name}: {exc}") from None


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str = "existing output files") -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} (never replaced otherwise)")


def check_outputs(paths: Iterable[str | Path], args: argparse.Namespace, extra: str = "") -> None:
    """:class:`~napari_hnc.cli.UsageError` (exit 2) when an output exists and ``--overwrite`` was not given."""
    from ..cli import UsageError
    from ..errors import OutputExistsError
    from ..io.atomic import refuse_existing

    try:
        refuse_existing(paths, getattr(args, "overwrite", False), "--overwrite" + extra)
    except OutputExistsError as exc:
        raise UsageError(str(exc)) from None


def finished(args: argparse.Namespace, name: str) -> None:
    """Record that ``name`` (a case, a study) is done, for the Ctrl-C summary."""
    done = getattr(args, "_finished", None)
    if done is None:
        done = []
        setattr(args, "_finished", done)
    done.append(str(name))
