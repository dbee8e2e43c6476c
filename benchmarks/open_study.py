"""Time to open a PET/CT study, against reading the same two files with SimpleITK.

A synthetic 512x512x300 CT (int16, LPS, 0.98x0.98x3 mm) and a 200x200x300 PET (float32,
4x4x3 mm) are written once (HECKTOR 2022 names) and then opened repeatedly:

* ``SimpleITK``: ``sitk.ReadImage`` of both files plus array views (the reference);
* ``load_study``: napari-hnc's core (header + geometry + checks);
* ``npe2 reader``: what napari calls (``load_study`` + layer tuples with PET contrast).

Usage: ``python benchmarks/open_study.py [--repeats 7] [--dir /tmp/hnc-bench]``
Target: load_study <= 1.3x SimpleITK.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def make_study(folder: Path) -> Path:
    ct_path = folder / "BENCH-001__CT.nii.gz"
    if ct_path.exists():
        return ct_path
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[-1:1:300j, -1:1:512j, -1:1:512j]
    body = (x**2 / 0.6 + y**2 / 0.45) < 1
    ct = np.where(body, 40, -1000) + rng.normal(0, 15, (300, 512, 512))
    ct = np.ascontiguousarray(ct.astype(np.int16).transpose(2, 1, 0))
    ct_aff = np.diag([-0.98, -0.98, 3.0, 1.0])
    ct_aff[:3, 3] = (250.0, 250.0, -450.0)
    nib.save(nib.Nifti1Image(ct, ct_aff), ct_path)
    pet = rng.gamma(2.0, 0.5, (200, 200, 300)).astype(np.float32)
    pet_aff = np.diag([-4.0, -4.0, 3.0, 1.0])
    pet_aff[:3, 3] = (398.0, 398.0, -450.0)
    nib.save(nib.Nifti1Image(pet, pet_aff), folder / "BENCH-001__PT.nii.gz")
    return ct_path


def median_time(fn, repeats: int) -> float:
    fn()  # warm the page cache and imports
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "napari-hnc-bench-open")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    ct_path = make_study(args.dir)
    pet_path = args.dir / "BENCH-001__PT.nii.gz"

    import SimpleITK as sitk

    from napari_hnc import load_study

    def with_sitk():
        return [sitk.GetArrayViewFromImage(sitk.ReadImage(str(p))) for p in (ct_path, pet_path)]

    def with_core():
        return load_study(ct_path)

    results = {"SimpleITK ReadImage x2": median_time(with_sitk, args.repeats),
               "napari_hnc.load_study": median_time(with_core, args.repeats)}
    try:
        from napari_hnc._napari.reader import read

        results["npe2 reader (layer tuples)"] = median_time(lambda: read(str(ct_path)), args.repeats)
    except ImportError:  # napari not installed
        pass
    base = results["SimpleITK ReadImage x2"]
    print(f"open a 512x512x300 CT + 200x200x300 PET study, median of {args.repeats}")
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds:7.3f} s   {seconds / base:5.2f}x SimpleITK")
    print("target: load_study <= 1.30x SimpleITK")


if __name__ == "__main__":
    main()
