"""The ``napari-hnc`` command line.

Each sub-command lives in :mod:`napari_hnc.commands` as a module with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside
``run`` so that ``napari-hnc --help`` answers at once.

Exit codes: 0 success, 2 bad usage, 1 a failed case (the reason is printed), 130 interrupted
(Ctrl-C: one line saying what was finished, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .errors import HncError

#: sub-command -> module implementing it
COMMANDS: dict[str, str] = {
    "demo": "napari_hnc.commands.demo",
    "convert": "napari_hnc.commands.convert",
    "delineate": "napari_hnc.commands.delineate",
    "quantify": "napari_hnc.commands.quantify",
    "phantom": "napari_hnc.commands.phantom",
    "segment": "napari_hnc.commands.segment",
    "train": "napari_hnc.commands.train",
    "finetune": "napari_hnc.commands.finetune",
    "ensemble": "napari_hnc.commands.ensemble",
    "evaluate": "napari_hnc.commands.evaluate",
}


class UsageError(HncError):
    """Bad command-line usage (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-hnc",
        description="Head-and-neck cancer lesions in FDG PET/CT: open, segment, refine, quantify.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module_name)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-hnc`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(args._module)
    args._finished = []  # what the command completed (commands._common.finished), for Ctrl-C
    try:
        return int(module.run(args) or 0)
    except UsageError as exc:
        parser.exit(2, f"napari-hnc {args.command}: error: {exc}\n")
    except HncError as exc:
        print(f"napari-hnc {args.command}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(interrupted_line(args.command, args._finished), file=sys.stderr)
        return INTERRUPTED
    return 0  # pragma: no cover


#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def interrupted_line(command: str, done: Sequence[str]) -> str:
    """The one line printed after Ctrl-C.

    >>> interrupted_line("segment", ["A", "B"])
    'napari-hnc segment: interrupted (Ctrl-C); 2 finished before: A, B'
    """
    listed = ", ".join(done[:20]) + (f" and {len(done) - 20} more" if len(done) > 20 else "")
    return f"napari-hnc {command}: interrupted (Ctrl-C); {len(done)} finished before{': ' + listed if done else ''}"


if __name__ == "__main__":  # pragma: no cover
    # `python -m napari_hnc.cli`: run the imported module's main, so that the UsageError the
    # sub-commands raise (napari_hnc.cli.UsageError) is the one caught here (exit code 2)
    from napari_hnc.cli import main as _main

    sys.exit(_main())
