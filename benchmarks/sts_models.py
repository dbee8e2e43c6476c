"""The bundled models on the real STS cases: Dice against the expert CT masks.

For each case of ``shared/data/sts`` (TCIA Soft-tissue Sarcoma, CC BY 3.0):

* automatic: ``napari_hnc.segment(study)`` with the bundled ``"default"`` model; Dice of all labelled
  voxels (union) against the expert CT mask, plus the predicted and reference volumes;
* click: a ``RefinementSession`` with the bundled ``"click"`` model and one positive click at the
  expert CT mask's centre of mass (its voxel nearest to it); Dice of the lesion against the mask.

These are sarcomas of the extremities, not head-and-neck lesions; ``hnc-auto`` was trained on
synthetic head-and-neck phantoms only, and the click model ``hnc-click`` was fine-tuned on the IBSI
sarcomas, these three among them (``--click-model hnc-click-phantoms`` for the phantom-only one): the
figures are information, not a bar.

Run::

    PYTHONPATH=src python benchmarks/sts_models.py [--root ../shared/data/sts] [--device cpu] [--threads 2]
                                                   [--click-model hnc-click-phantoms]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT_CANDIDATES = [Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sts", Path("/work/shared/data/sts")]
CASES = ("STS_001", "STS_002", "STS_003")


def load_case(root: Path, case: str):
    from napari_hnc import load_study

    folder = root / case
    return load_study(ct=folder / "CT/nifti/image/image.nii.gz", pet=folder / "PET/nifti/image/image.nii.gz",
                      labels=folder / "CT/nifti/mask/mask.nii.gz", case_id=case)


def centre_click(study) -> np.ndarray:
    from napari_hnc.training.cache import centre_voxel

    return study.grid.voxel_to_world(np.asarray(centre_voxel(np.asarray(study.labels.array) > 0), float))


def run_case(study, auto_model, session, device: str, threads: int) -> dict:
    import napari_hnc
    from napari_hnc.training.metrics import dice

    ref = np.asarray(study.labels.array) > 0
    ml = study.grid.voxel_volume_ml
    start = time.perf_counter()
    labels = napari_hnc.segment(study, auto_model, device, threads=threads)
    auto_s = time.perf_counter() - start
    auto = np.asarray(labels.array) > 0
    session.set_study(study.with_labels(None))
    start = time.perf_counter()
    session.add_click(centre_click(study), positive=True, label_class="primary")
    click_s = time.perf_counter() - start
    clicked = session.target > 0
    return {"case": study.case_id, "ref_ml": ref.sum() * ml, "auto_dice": dice(auto, ref, empty=0.0),
            "auto_ml": auto.sum() * ml, "auto_s": auto_s, "click_dice": dice(clicked, ref, empty=0.0),
            "click_ml": clicked.sum() * ml, "click_s": click_s}


def main() -> None:
    from napari_hnc import RefinementSession
    from napari_hnc.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=next((p for p in ROOT_CANDIDATES if p.is_dir()), ROOT_CANDIDATES[0]))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--click-model", default="click", help="the click model (default: the bundled hnc-click)")
    args = parser.parse_args()
    auto_model = load_model("default", task="automatic")
    session = RefinementSession(args.click_model, args.device, threads=args.threads)
    print(f"models: {auto_model.card.name} (automatic), {session.method} (click); data: {args.root}")
    print(f"{'case':8} {'ref ml':>8} {'auto Dice':>9} {'auto ml':>8} {'auto s':>6} {'click Dice':>10} {'click ml':>8} {'click s':>7}")
    for case in CASES:
        row = run_case(load_case(args.root, case), auto_model, session, args.device, args.threads)
        print(f"{row['case']:8} {row['ref_ml']:8.1f} {row['auto_dice']:9.3f} {row['auto_ml']:8.1f} {row['auto_s']:6.1f} "
              f"{row['click_dice']:10.3f} {row['click_ml']:8.1f} {row['click_s']:7.2f}")


if __name__ == "__main__":
    main()
