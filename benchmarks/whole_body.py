"""Whole-body PET/CT, load -> automatic segmentation -> saved labels: time and peak memory per size.

A synthetic whole-body phantom (``napari-hnc phantom --preset wholebody``: CT 512 x 512 x 600 of
0.98 x 0.98 x 2 mm from the top of the head to mid-thigh, PET 200 x 200 x 600 of 2.5 x 2.5 x 2 mm,
with brain, heart, liver, kidneys and bladder uptake) is written once; studies of its top 150,
300 and 600 CT slices (with the PET over them) are cut from it. Each size then runs in a fresh
Python process (``load_study`` -> ``segment`` with the bundled ``hnc-auto``, region ``auto`` by
default -> ``save_labels``), which reports its stage times and its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``, imports included). The parent prints the medians, the
peak RSS and how time grows with the number of slices and with the size of the region the model
ran on. ``--region whole`` runs the whole field instead (what napari-hnc did before regions).

Usage::

    PYTHONPATH=src python benchmarks/whole_body.py [--sizes 150 300 600] [--repeats 3] [--region auto]

Targets (2-core CPU): 600 slices load -> saved labels <= 15 s, peak RSS <= 2 GB, time growing no
faster than linearly with the region size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S, TARGET_RSS_GB = 15.0, 2.0
SEED = 3
STAGES = ("load", "region", "field", "inputs", "sliding_window", "to_labels", "save")


# --------------------------------------------------------------------------- data


def write_studies(root: Path, sizes: list[int]) -> dict[int, Path]:
    """The whole-body phantom (once) and its top-``n``-slice studies; CT path per size."""
    from napari_hnc.geometry import Volume
    from napari_hnc.io.nifti import write_nifti
    from napari_hnc.phantom import case_id, generate_case

    paths = {n: root / f"WB-{n:03d}" / f"WB-{n:03d}__CT.nii.gz" for n in sizes}
    if all(p.is_file() for p in paths.values()):
        return paths
    started = time.perf_counter()
    study = generate_case(SEED, "wholebody").study
    print(f"generated the whole-body phantom {case_id(SEED)} in {time.perf_counter() - started:.1f} s "
          f"(CT {study.ct.shape}, PET {study.pet.shape})")
    ct, pet = study.ct, study.pet
    for n, ct_path in paths.items():
        top = ct.shape[2]
        part = ct.crop((slice(None), slice(None), slice(top - n, top)))
        z_lo = part.world_bounds()[0][2]
        k = int(max(0, pet.world_to_voxel([[0.0, 0.0, z_lo]])[0, 2] - 2))
        pet_part = pet.crop((slice(None), slice(None), slice(k, pet.shape[2])))
        ct_path.parent.mkdir(parents=True, exist_ok=True)
        write_nifti(Volume(part.array, part.affine), ct_path, dtype="int16")
        write_nifti(Volume(pet_part.array, pet_part.affine), ct_path.with_name(f"WB-{n:03d}__PT.nii.gz"),
                    dtype="float32")
    return paths


# --------------------------------------------------------------------------- one run (child process)


def child(ct_path: Path, out: Path, region: str, threads: int | None) -> None:
    """Load, segment and save one study; print one JSON line of stage times and the peak RSS."""
    import resource

    import numpy as np

    import napari_hnc
    from napari_hnc.headneck import resolve_region
    from napari_hnc.inference import automatic
    from napari_hnc.models.registry import load_model

    times: dict[str, float] = {}
    peaks: dict[str, float] = {}

    def mark(stage: str, started: float) -> None:
        times[stage] = times.get(stage, 0.0) + time.perf_counter() - started
        peaks[stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # GB (ru_maxrss is kB)

    def timed(stage: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                mark(stage, t)
        return wrapper

    for stage, name in (("field", "model_field"), ("inputs", "image_channels"), ("sliding_window", "sliding_window"),
                        ("to_labels", "probabilities_to_labels")):
        setattr(automatic, name, timed(stage, getattr(automatic, name)))
    model = load_model("default", task="automatic")
    begin = time.perf_counter()
    t = time.perf_counter()
    study = napari_hnc.load_study(ct_path)
    mark("load", t)
    t = time.perf_counter()
    used = resolve_region(study, region)
    mark("region", t)
    labels = napari_hnc.segment(study, model, device="cpu", region=used, threads=threads)
    t = time.perf_counter()
    napari_hnc.save_labels(labels, study.ct, out / f"{study.case_id}.nii.gz")
    mark("save", t)
    total = time.perf_counter() - begin
    print(json.dumps({
        "times": times, "peaks_gb": peaks, "total": total, "slices": study.ct.shape[2],
        "region": used.describe(), "region_mm": used.height_mm,
        **_model_grid(study, used, model),
        "lesion_ml": float(np.count_nonzero(labels.array)) * labels.voxel_volume_ml,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }))


def _model_grid(study, region, model) -> dict:
    """The model grid's voxels, and the tiles the sliding window runs the network on."""
    import numpy as np

    from napari_hnc.inference.automatic import model_field
    from napari_hnc.inference.preprocess import grid_over_box
    from napari_hnc.inference.sliding_window import tile_starts

    lo, hi = model_field(study, region)
    shape = grid_over_box(study.grid, model.card.spacing_mm, lo, hi).shape
    divisor = model.divisor
    tile = [min(p, -(-s // divisor) * divisor) for p, s in zip(model.card.patch_size, shape)]
    tiles = int(np.prod([len(tile_starts(max(s, t), t, 0.25)) for s, t in zip(shape, tile)]))
    return {"model_voxels": int(np.prod(shape)), "model_shape": list(shape), "tiles": tiles,
            "tile_voxels": tiles * int(np.prod(tile))}


# --------------------------------------------------------------------------- parent


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def run_size(ct_path: Path, out: Path, args) -> list[dict]:
    runs = []
    command = [sys.executable, __file__, "--child", str(ct_path), "--out", str(out), "--region", args.region]
    if args.threads:
        command += ["--threads", str(args.threads)]
    for _ in range(args.repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), check=False)
        if done.returncode != 0:
            raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_s"] = time.perf_counter() - started
        runs.append(result)
    return runs


def report(results: dict[int, list[dict]], args) -> None:
    med = {n: {k: statistics.median(r[k] for r in runs) for k in ("total", "process_s", "peak_rss_gb")}
           for n, runs in results.items()}
    print(f"whole_body: region {args.region}, {args.repeats} run(s) per size, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (at the end), {os.cpu_count()} CPU(s)")
    print("| CT slices | region | model grid | tiles (voxels) | load -> saved labels (median) | process incl. imports | "
          "peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for n, runs in results.items():
        r = runs[-1]
        grid = "x".join(str(v) for v in r["model_shape"])
        print(f"| 512x512x{n} | {r['region_mm']:.0f} mm | {grid} ({r['model_voxels'] / 1e6:.2f} M) | {r['tiles']} "
              f"({r['tile_voxels'] / 1e6:.2f} M) | {med[n]['total']:.2f} s | {med[n]['process_s']:.2f} s | "
              f"{med[n]['peak_rss_gb']:.2f} GB |")
    print("\nper stage (median s; peak RSS so far, GB):")
    print("| CT slices | " + " | ".join(STAGES) + " |")
    print("|---|" + "---|" * len(STAGES))
    for n, runs in results.items():
        cells = [f"{statistics.median(r['times'].get(s, 0.0) for r in runs):.2f} ({runs[-1]['peaks_gb'].get(s, 0):.2f})"
                 for s in STAGES]
        print(f"| {n} | " + " | ".join(cells) + " |")
    sizes = sorted(results)
    base = sizes[0]
    print("\ngrowth against the smallest study:")
    for n in sizes[1:]:
        r0, r1 = results[base][-1], results[n][-1]
        window = [statistics.median(r["times"]["sliding_window"] for r in results[k]) for k in (base, n)]
        print(f"  {n}/{base} slices = {n / base:.1f}x: time {med[n]['total'] / med[base]['total']:.2f}x, "
              f"model grid {r1['model_voxels'] / r0['model_voxels']:.2f}x, tile voxels "
              f"{r1['tile_voxels'] / r0['tile_voxels']:.2f}x, sliding window {window[1] / window[0]:.2f}x, region "
              f"{r1['region_mm']:.0f}/{r0['region_mm']:.0f} mm")
    for n in sizes:
        print(f"  {n} slices: region {results[n][-1]['region']}")
    top = max(sizes)
    print(f"\n{top} slices: {med[top]['total']:.2f} s = {med[top]['total'] / TARGET_S:.2f} x the {TARGET_S:.0f} s target; "
          f"peak RSS {med[top]['peak_rss_gb']:.2f} GB = {med[top]['peak_rss_gb'] / TARGET_RSS_GB:.2f} x the "
          f"{TARGET_RSS_GB:.0f} GB target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 300, 600])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--region", default="auto", help="auto (default), whole, or a box X0,Y0,Z0,X1,Y1,Z1")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "napari-hnc-bench-wholebody")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make-data", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out, args.region, args.threads)
        return
    if args.make_data:
        write_studies(args.dir / "data", sorted(args.sizes))
        return
    # the data are made in a process of their own: a child process's peak RSS starts at its parent's
    # (Linux carries the high-water mark over fork/exec), so the parent must stay small
    sizes = [str(n) for n in sorted(args.sizes)]
    subprocess.run([sys.executable, __file__, "--make-data", "--dir", str(args.dir), "--sizes", *sizes],
                   env=_env(), check=True)
    paths = {n: args.dir / "data" / f"WB-{n:03d}" / f"WB-{n:03d}__CT.nii.gz" for n in sorted(args.sizes)}
    out = args.dir / "out"
    out.mkdir(parents=True, exist_ok=True)
    results = {n: run_size(paths[n], out, args) for n in sorted(args.sizes)}
    report(results, args)


if __name__ == "__main__":
    main()
