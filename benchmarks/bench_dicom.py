"""Time opening DICOM series with napari-hnc against SimpleITK (GDCM) reading the same files.

Run: PYTHONPATH=src python benchmarks/bench_dicom.py [--repeat 5]
Prints the median of each (header cache cleared before every run, so each run
scans and reads all files) and the ratio napari-hnc / SimpleITK. napari-hnc does
more: per-slice rescale, SUV conversion, irregular-spacing check.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sts"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/sts")
CASES = {
    "whole-body GE PET, 267 slices (BQML -> SUV)": (DATA / "raw/STS_001/FDG_PET/image", "pet"),
    "CT, 59 slices 198x202": (DATA / "STS_001/CT/dicom/image", "ct"),
}


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _napari_hnc(folder: Path, role: str):
    from napari_hnc.io.dicom import read_dicom_image, series

    def run():
        series._HEADERS.clear()
        read_dicom_image(folder, role)

    return run


def _sitk(folder: Path):
    import SimpleITK as sitk

    def run():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        reader.Execute()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    for name, (folder, role) in CASES.items():
        _napari_hnc(folder, role)()  # warm imports
        ours = _median(_napari_hnc(folder, role), args.repeat)
        theirs = _median(_sitk(folder), args.repeat)
        print(f"{name}: napari-hnc {ours:.3f} s, SimpleITK {theirs:.3f} s, ratio {ours / theirs:.2f} "
              f"(median of {args.repeat})")


if __name__ == "__main__":
    main()
