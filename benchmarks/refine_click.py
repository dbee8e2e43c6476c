"""One click -> refined lesion with ``RefinementSession`` on a head-and-neck-sized study.

The study of ``hn_study.py`` (CT 512x512x100 of 0.977x0.977x3 mm, PET 4 mm) is
held in memory. The model is the bundled click-guided one when installed, else
a randomly initialised network of the bundled size and card (ResUNetMHSA, 8
base channels, 5 inputs, a 64^3 ROI of 2.5 mm). Three kinds of click are timed:

* ``first``: a click that starts a lesion (the ROI's CT and PET are resampled);
* ``more``: further clicks on the same lesion (positive and negative);
* ``threshold``: the PET threshold fallback (``model=None``), when the PET tools exist.

Prints the median of each and the ratio of the model clicks' median to the
target (250 ms on a 2-core CPU).

Usage: ``python benchmarks/refine_click.py [--clicks 20] [--device cpu] [--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hn_study import LESIONS_MM, make_arrays  # noqa: E402

TARGET_MS = 250.0


def build_study():
    from napari_hnc.geometry import Volume
    from napari_hnc.study import Study

    ct, ct_aff, pet, pet_aff = make_arrays()
    return Study(Volume(ct, ct_aff, {"role": "ct"}), Volume(pet, pet_aff, {"role": "pet"}), None, "BENCH-001")


def click_model():
    from napari_hnc.errors import ModelError
    from napari_hnc.models import Model, find_model, preset_card

    try:
        return find_model("click").load()
    except ModelError:
        return Model.random(preset_card("click", name="random-click"), seed=0)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def time_session(session, study, clicks: int, rng) -> dict[str, list[float]]:
    session.set_study(study)
    times: dict[str, list[float]] = {"first": [], "more": []}
    centres = [np.array(lesion[:3]) for lesion in LESIONS_MM]
    session.add_click(centres[0])  # warm-up: imports, oneDNN kernels
    for n in range(clicks):
        centre = centres[n % len(centres)]
        session.next_lesion()
        times["first"].append(timed(lambda: session.add_click(centre, True, 1 + n % 2)))
        jitter = centre + rng.normal(0, 3, 3)
        times["more"].append(timed(lambda: session.add_click(jitter, bool(n % 3), 1 + n % 2)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import torch

    from napari_hnc.errors import ModelError
    from napari_hnc.inference.session import RefinementSession

    study, rng = build_study(), np.random.default_rng(0)
    model = click_model()
    session = RefinementSession(model, device=args.device, threads=args.threads)
    times = time_session(session, study, args.clicks, rng)
    print(f"refine_click: {args.clicks} lesion(s), 2 clicks each, device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU thread(s), model {model.card.name} ({model.card.architecture}, "
          f"ROI {model.card.patch_size} at {model.card.spacing_mm[0]} mm)")
    for kind, values in times.items():
        print(f"  {kind:9s} median {statistics.median(values):7.1f} ms  (min {min(values):.1f}, max {max(values):.1f})")
    overall = statistics.median(times["first"] + times["more"])
    print(f"model click median {overall:.1f} ms = {overall / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms target")
    try:
        fallback = RefinementSession(None)
    except ModelError as exc:
        print(f"  threshold fallback not measured: {exc}")
        return
    times = time_session(fallback, study, args.clicks, rng)
    print(f"  threshold median {statistics.median(times['first'] + times['more']):7.1f} ms (PET threshold fallback)")


if __name__ == "__main__":
    main()
