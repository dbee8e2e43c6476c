"""Training logs: one CSV row per optimiser step, one per epoch, a text log and a PNG learning curve."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, Sequence

STEPS_CSV = "steps.csv"
EPOCHS_CSV = "epochs.csv"
TEXT_LOG = "train.log"
CURVE_PNG = "learning_curve.png"


def append_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows to a CSV file (with a header when the file is new).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> append_rows(p, [{"a": 1, "b": 2}]); append_rows(p, [{"a": 3, "b": 4}])
    >>> p.read_text().splitlines()
    ['a,b', '1,2', '3,4']
    """
    if not rows:
        return
    path = Path(path)
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


def truncate_rows(path: str | Path, keep: int) -> None:
    """Keep the header and the first ``keep`` rows (a resumed run rewrites what came after its checkpoint)."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[: keep + 1]), encoding="utf-8")


def text_handler(out: Path) -> logging.Handler:
    """A file handler writing the ``napari_hnc`` log to ``out/train.log``."""
    handler = logging.FileHandler(out / TEXT_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    return handler


def plot_curve(history: Sequence[dict[str, Any]], path: str | Path, score_name: str) -> Path:
    """Training loss and validation score per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, loss_axis = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    loss_axis.plot(epochs, [row["train_loss"] for row in history], "o-", color="tab:blue", label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    score_axis = loss_axis.twinx()
    score_axis.plot(epochs, [row[score_name] for row in history], "s-", color="tab:red", label=score_name)
    score_axis.set_ylabel(f"validation {score_name}", color="tab:red")
    score_axis.set_ylim(0.0, 1.0)
    fig.suptitle("napari-hnc train")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
