"""Measure the rule that tells SUV PETs from Bq/ml and kBq/ml ones (``napari_hnc.io.suv_range``).

Every real SUV PET available is checked as it is, then scaled to Bq/ml and kBq/ml: SUV = Bq/ml *
weight / decayed dose, so a PET in Bq/ml is the SUV times the decayed activity per gram of body mass
(about 1000-8000 Bq/g for FDG), and one in kBq/ml the SUV times 1-8. The real per-case factor is used
where the DICOM header gives it. Prints the body background (median inside the body) and SUVmax of
every PET, the range over the SUV PETs, and the share of Bq/ml and kBq/ml versions the rule flags.

Data: ``shared/data/ibsi-sts`` (41 sarcoma PETs in SUV, IBSI), ``shared/data/sts`` (3 PET NIfTI and the
whole-body GE DICOM ``raw/STS_001``) and ``shared/data/dicom-hn`` (2 H&N GE DICOM series; HN-HMR-029 has
no weight: 80 kg and the injection 11:10:00 of its header are assumed), all TCIA, CC BY 3.0.

Run::

    PYTHONPATH=src python benchmarks/suv_background.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

DATA_CANDIDATES = [Path(__file__).resolve().parents[1].parent / "shared" / "data", Path("/work/shared/data")]
#: kBq/ml per SUV (decayed activity per gram of body mass) tried where the header does not say it.
KBQ_PER_SUV = (1.0, 2.0, 3.6, 5.0, 8.0)


def real_pets(data: Path):
    """``(name, SUV array, kBq/ml per SUV or None)`` for every real SUV PET."""
    from napari_hnc.io.dicom import SUVParameters
    from napari_hnc.io.nifti import read_nifti
    from napari_hnc.study import load_volume

    for path in sorted((data / "ibsi-sts").glob("*/PET_image.nii.gz")):
        yield f"ibsi-sts/{path.parent.name}", read_nifti(path).array, None
    for path in sorted((data / "sts").glob("STS_00*/PET/nifti/image/image.nii.gz")):
        yield f"sts/{path.parents[3].name}", read_nifti(path).array, None
    dicom = [("sts/raw/STS_001 (whole body)", data / "sts" / "raw" / "STS_001" / "FDG_PET" / "image", None),
             ("dicom-hn/HN-HGJ-016", data / "dicom-hn" / "HN-HGJ-016_PET", None),
             ("dicom-hn/HN-HMR-029 (80 kg assumed)", data / "dicom-hn" / "HN-HMR-029_PET",
              SUVParameters(weight_kg=80, injection_time="11:10:00"))]
    for name, folder, params in dicom:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pet = load_volume(folder, "pet", suv=params)
        factor = pet.metadata["suv"]["factor"]  # SUV per Bq/ml
        yield name, pet.array, 1.0 / factor / 1000.0


def main() -> None:
    from napari_hnc.io.suv_range import BACKGROUND_RANGE, check_suv

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=next((p for p in DATA_CANDIDATES if p.is_dir()), None))
    args = parser.parse_args()
    rows = []
    for name, array, kbq in real_pets(args.data):
        check = check_suv(array)
        rows.append((name, check.background, check.suv_max, kbq, bool(check.problems)))
        own = f"  header: {kbq:.2f} kBq/ml per SUV" if kbq else ""
        print(f"{name:38s} background {check.background:6.3f}  SUVmax {check.suv_max:6.2f}{own}")
    background = np.array([r[1] for r in rows])
    suv_max = np.array([r[2] for r in rows])
    print(f"\n{len(rows)} SUV PETs: background {background.min():.3f}-{background.max():.3f} "
          f"(median {np.median(background):.3f}), SUVmax {suv_max.min():.2f}-{suv_max.max():.2f}; "
          f"flagged: {sum(r[4] for r in rows)} (rule: background outside {BACKGROUND_RANGE} or SUVmax > 100)")
    for k in (1000.0, 8000.0):
        flagged = [bool(check_suv(_scaled(args.data, r[0], k)).problems) for r in rows]
        print(f"Bq/ml at {k:.0f} Bq/ml per SUV: {100 * np.mean(flagged):.0f}% flagged")
    for k in KBQ_PER_SUV:
        flagged = [(b * k > BACKGROUND_RANGE[1]) or (m * k > 100) for _, b, m, _, _ in rows]
        print(f"kBq/ml at {k:g} kBq/ml per SUV: {100 * np.mean(flagged):.0f}% flagged")
    own = [(n, b * kbq, m * kbq) for n, b, m, kbq, _ in rows if kbq]
    for name, b, m in own:
        print(f"kBq/ml with its header's factor, {name}: background {b:.2f}, max {m:.1f} -> "
              f"{'flagged' if b > BACKGROUND_RANGE[1] or m > 100 else 'NOT flagged'}")


_CACHE: dict[str, np.ndarray] = {}


def _scaled(data: Path, name: str, k: float) -> np.ndarray:
    """The PET ``name`` times ``k`` (its values loaded once)."""
    if name not in _CACHE:
        _CACHE.update({n: a for n, a, _ in real_pets(data) if n not in _CACHE})
    return _CACHE[name] * np.float32(k)


if __name__ == "__main__":
    main()
