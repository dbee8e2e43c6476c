"""Time the phantom generator: seconds per case, generation plus writing the four files.

    python benchmarks/phantom_speed.py [--cases-small 10] [--cases-default 5]

Prints the median (and min, max) per preset and the ratio to the targets of the
issue (small <= 0.5 s, default <= 5 s a case on a 2-core CPU). The first case of
each preset is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from napari_hnc.phantom import generate_case, write_case

TARGETS = {"small": 0.5, "default": 5.0}


def time_preset(preset: str, cases: int, first_seed: int = 1000) -> dict[str, np.ndarray]:
    generate, write = [], []
    with tempfile.TemporaryDirectory() as out:
        for k in range(cases + 1):
            t0 = time.perf_counter()
            case = generate_case(first_seed + k, preset)
            t1 = time.perf_counter()
            write_case(case, out)
            t2 = time.perf_counter()
            if k:  # the first case warms up imports and caches
                generate.append(t1 - t0)
                write.append(t2 - t1)
    generate_s, write_s = np.array(generate), np.array(write)
    return {"generate": generate_s, "write": write_s, "total": generate_s + write_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases-small", type=int, default=10)
    parser.add_argument("--cases-default", type=int, default=5)
    args = parser.parse_args()
    print(f"{'preset':8s} {'cases':>5s} {'generate':>9s} {'write':>7s} {'total':>7s} {'min':>6s} {'max':>6s} "
          f"{'target':>7s} {'ratio':>6s}   (seconds per case, medians)")
    for preset, cases in (("small", args.cases_small), ("default", args.cases_default)):
        t = time_preset(preset, cases)
        total = float(np.median(t["total"]))
        print(f"{preset:8s} {cases:5d} {np.median(t['generate']):9.3f} {np.median(t['write']):7.3f} {total:7.3f} "
              f"{t['total'].min():6.3f} {t['total'].max():6.3f} {TARGETS[preset]:7.1f} {total / TARGETS[preset]:6.2f}")


if __name__ == "__main__":
    main()
