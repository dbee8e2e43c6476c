"""Whole-study automatic segmentation, end to end: load the files -> segment -> save the labels.

A synthetic head-and-neck-sized study (``hn_study.py``: CT 512x512x100 of
0.977x0.977x3 mm, PET 4x4x3 mm) is written once; each repeat then loads it with
``load_study``, runs ``segment`` with a model of the bundled size (the bundled
weights when installed, else a randomly initialised network of the same
architecture and card, loaded from its card each time) and writes the labels
with ``save_labels``. Prints the median of each stage and the ratio to the
target (15 s on a 2-core CPU). A random network labels far more voxels than a
trained one, so the post-processing figure is a pessimistic one.

Usage: ``python benchmarks/segment_study.py [--repeats 3] [--device cpu] [--threads N]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hn_study import write_study  # noqa: E402

TARGET_S = 15.0


def model_card(folder: Path) -> str:
    """The bundled default model's name, or a random model of the bundled size saved under ``folder``."""
    from napari_hnc.errors import ModelError
    from napari_hnc.models import Model, find_model, preset_card, save_model

    try:
        return str(find_model("default").card_path)
    except ModelError:
        card = preset_card("auto", name="random-auto")
        return str(save_model(Model.random(card, seed=0).networks, card, folder))


def run_once(ct_path: Path, card: str, out: Path, device: str, threads: int | None) -> dict[str, float]:
    import napari_hnc

    times = {}
    t0 = time.perf_counter()
    study = napari_hnc.load_study(ct_path)
    t1 = time.perf_counter()
    labels = napari_hnc.segment(study, card, device=device, threads=threads)
    t2 = time.perf_counter()
    napari_hnc.save_labels(labels, study.ct, out / "BENCH-001.nii.gz")
    t3 = time.perf_counter()
    times.update(load=t1 - t0, segment=t2 - t1, save=t3 - t2, total=t3 - t0,
                 lesion_ml=float(np.count_nonzero(labels.array)) * labels.voxel_volume_ml)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "napari-hnc-bench-segment")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    import torch

    ct_path = write_study(args.dir / "data")
    card = model_card(args.dir / "model")
    runs = [run_once(ct_path, card, args.dir, args.device, args.threads) for _ in range(args.repeats + 1)][1:]
    print(f"segment_study: {args.repeats} run(s) after one warm-up, device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), model {Path(card).name}")
    for stage in ("load", "segment", "save", "total"):
        print(f"  {stage:8s} median {statistics.median(r[stage] for r in runs):6.2f} s")
    total = statistics.median(r["total"] for r in runs)
    print(f"  labelled volume {runs[-1]['lesion_ml']:.1f} ml")
    print(f"end to end median {total:.2f} s = {total / TARGET_S:.2f} x the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
