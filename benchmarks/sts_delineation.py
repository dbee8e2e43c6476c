"""Click delineation on the real STS cases: Dice against the expert mask on the CT grid.

For each case of ``shared/data/sts`` (TCIA Soft-tissue Sarcoma, CC BY 3.0) one
click is placed at the centroid of the expert PET mask and delineated with the PET
edge rule (the default), 41 % of SUVmax, the background-adapted rule (and, for
information, a fixed SUV 2.5), with the rules' own 200 mm safety bound; the labels (on the CT grid) are
compared with the expert CT mask. These are sarcomas of the extremities, not
head-and-neck lesions: the figures are information, not a bar.

Run::

    PYTHONPATH=src python benchmarks/sts_delineation.py [--root ../shared/data/sts] [--cases STS_001 ...]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np

ROOT_CANDIDATES = [Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sts", Path("/work/shared/data/sts")]
CASES = ("STS_001", "STS_002", "STS_003")
#: The rules' own safety bound (what a user gets); sarcomas reach 57 mm from their centroid (STS_001).
MAX_RADIUS_MM = 200.0
METHODS = {
    "edge": ("edge", {}),
    "percent 41%": ("percent", {"percent": 41.0}),
    "adaptive f=0.5": ("adaptive", {"fraction": 0.5}),
    "fixed SUV 2.5": ("fixed", {"threshold": 2.5}),  # for information
}


def load_case(root: Path, case: str):
    """The study (CT, PET, expert CT mask) and the world centroid of the expert PET mask."""
    from napari_hnc import load_study
    from napari_hnc.io.nifti import read_nifti

    folder = root / case
    study = load_study(ct=folder / "CT/nifti/image/image.nii.gz", pet=folder / "PET/nifti/image/image.nii.gz",
                       labels=folder / "CT/nifti/mask/mask.nii.gz", case_id=case)
    pet_mask = read_nifti(folder / "PET/nifti/mask/mask.nii.gz")
    centroid = pet_mask.voxel_to_world(np.argwhere(np.asarray(pet_mask.array) > 0).mean(axis=0))
    return study, centroid


def evaluate(root: Path, cases=CASES, max_radius_mm: float = MAX_RADIUS_MM) -> list[dict]:
    """One row per case and method: Dice, HD95, volumes, time of the click."""
    from napari_hnc import Click, delineate
    from napari_hnc.errors import HncError
    from napari_hnc.training.metrics import dice, hd95

    rows = []
    for case in cases:
        study, centroid = load_case(root, case)
        for name, (method, params) in METHODS.items():
            row = {"case": case, "method": name, "click": tuple(round(float(v), 1) for v in centroid),
                   "ref_ml": float((study.labels.array > 0).sum() * study.grid.voxel_volume_ml), "note": ""}
            start = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    labels = delineate(study, [Click(tuple(centroid))], method, max_radius_mm=max_radius_mm, **params)
            except HncError as exc:  # e.g. no uptake above a fixed threshold at a necrotic centre
                rows.append({**row, "dice": 0.0, "hd95_mm": float("nan"), "pred_ml": 0.0, "seconds": 0.0,
                             "cut_at_bound": False, "note": str(exc).split(". ")[0]})
                continue
            rows.append({
                **row, "dice": dice(labels, study.labels), "hd95_mm": hd95(labels, study.labels),
                "pred_ml": float((labels.array > 0).sum() * labels.voxel_volume_ml),
                "seconds": time.perf_counter() - start,
                "cut_at_bound": any("bound" in str(w.message) for w in caught),
            })
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'case':8} {'method':15} {'Dice':>6} {'HD95 mm':>8} {'pred ml':>8} {'ref ml':>8} {'s':>6}  click (RAS mm)"
    lines = [head, "-" * len(head)]
    for r in rows:
        cut = "  (cut at bound)" if r["cut_at_bound"] else (f"  ({r['note']})" if r["note"] else "")
        lines.append(f"{r['case']:8} {r['method']:15} {r['dice']:6.3f} {r['hd95_mm']:8.1f} {r['pred_ml']:8.1f} "
                     f"{r['ref_ml']:8.1f} {r['seconds']:6.2f}  {r['click']}{cut}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=next((p for p in ROOT_CANDIDATES if p.is_dir()), ROOT_CANDIDATES[0]))
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--max-radius-mm", type=float, default=MAX_RADIUS_MM)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = evaluate(args.root, args.cases, args.max_radius_mm)
    print(format_table(rows))
    print(f"\nclick at the centroid of the expert PET mask; bound {args.max_radius_mm:g} mm; Dice against the "
          "expert CT mask on the CT grid (first row of a case includes loading and one-off costs)")
    return rows


if __name__ == "__main__":
    main()
