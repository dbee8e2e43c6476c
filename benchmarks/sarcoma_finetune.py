"""The click model fine-tuned on real FDG PET/CT: the IBSI sarcomas, split by patient, one fold held out.

The 26 sarcomas of ``shared/data/ibsi-sts`` that have a CT (IBSI validation set, built from TCIA
Soft-tissue Sarcoma, CC BY 3.0, citations below; one patient each) are put, as links, in two
HECKTOR 2022 layout folders: fold ``--fold`` of ``--folds`` (patients taken in name order, every
``--folds``-th from the ``--fold``-th) is held out, the rest trains. The expert CT mask is the label
(the sarcoma counts as a primary tumour, label 1).

* before: ``napari-hnc evaluate`` of the phantom-trained click model (``--parent``, default
  ``hnc-click-phantoms``, which never saw a sarcoma) on the held-out fold, with simulated clicks (the
  RefinementSession the GUI uses: its region follows a large lesion);
* ``napari-hnc finetune`` of that model on the training fold (``--folds 0``: it validates on training
  cases, the held-out fold is never seen);
* after: the same evaluation of the fine-tuned model.

It prints the mean lesion Dice after 1 and 3 clicks before and after, and the minutes. These are
sarcomas of the extremities, not head-and-neck lesions: the figures say what real PET physics (and
real CT) teach the phantom-trained model, not how it does on head-and-neck cancer. Results go to
``WORK/results.json``; a rerun skips what is done.

Data: Vallières M, Freeman CR, Skamene SR, El Naqa I. A radiomics model from joint FDG-PET and MRI texture
features for the prediction of lung metastases in soft-tissue sarcomas of the extremities. The Cancer
Imaging Archive (2015), doi:10.7937/K9/TCIA.2015.7GO2GSKS, and Phys Med Biol 2015;60:5471; Clark K et al.
The Cancer Imaging Archive (TCIA), J Digit Imaging 2013;26(6):1045-57; Zwanenburg A et al. The Image
Biomarker Standardization Initiative, Radiology 2020;295(2):328-38. CC BY 3.0.

Run::

    PYTHONPATH=src python benchmarks/sarcoma_finetune.py --work /tmp/sarcoma [--folds 3 --fold 0]
                                                         [--epochs 4 --steps 200 --lr 0.001] [--threads 2]
                                                         [--phantoms PHANTOMS ... --phantom-cases 20] [--blend 0.5]

``--phantoms`` mixes the first ``--phantom-cases`` cases of each phantom layout folder into the
training fold (replay: the model keeps more of what it learnt on phantoms), and ``--blend`` writes
the blend of the fine-tuned and the bundled weights (``napari-hnc finetune --blend``). The bundled
``hnc-click`` is such a blend (its card says of what); to score it without letting it see the
held-out patients, run the three folds with the card's recipe and give the three models to
``benchmarks/large_lesions.py --fold-models``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smart_labelling import cli, score  # noqa: E402  (napari-hnc evaluate with 3 simulated clicks)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The phantom-trained click model (bundled as ``hnc-click`` before it learnt from these sarcomas).
PARENT = "hnc-click-phantoms"


def split(root: Path, folds: int, fold: int) -> tuple[list[Path], list[Path]]:
    """(training, held-out) case folders: the sarcomas with a CT, every ``folds``-th from ``fold`` held out."""
    cases = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("STS_")
                   and (p / "CT_image.nii.gz").is_file())
    if not cases:
        raise SystemExit(f"no STS_* case with a CT_image.nii.gz under {root}")
    held = [c for i, c in enumerate(cases) if i % folds == fold]
    return [c for c in cases if c not in held], held


def layout(cases: list[Path], folder: Path) -> Path:
    """A HECKTOR 2022 layout folder of links to the cases' CT, PET and CT mask."""
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for case in cases:
        for sub, name, source in (("imagesTr", f"{case.name}__CT.nii.gz", "CT_image.nii.gz"),
                                  ("imagesTr", f"{case.name}__PT.nii.gz", "PET_image.nii.gz"),
                                  ("labelsTr", f"{case.name}.nii.gz", "CT_mask.nii.gz")):
            link = folder / sub / name
            if not link.exists():
                link.symlink_to((case / source).resolve())
    return folder


def link_phantoms(phantoms: Path, count: int, folder: Path) -> list[str]:
    """Links the first ``count`` cases of the phantom layout folder ``phantoms`` into ``folder``; their names."""
    names = sorted(p.name[: -len("__CT.nii.gz")] for p in (phantoms / "imagesTr").glob("*__CT.nii.gz"))[:count]
    if len(names) < count:
        raise SystemExit(f"{phantoms} holds {len(names)} phantom cases, fewer than --phantom-cases {count}")
    for name in names:
        for sub, file in (("imagesTr", f"{name}__CT.nii.gz"), ("imagesTr", f"{name}__PT.nii.gz"),
                          ("labelsTr", f"{name}.nii.gz")):
            link = folder / sub / file
            if not link.exists():
                link.symlink_to((phantoms / sub / file).resolve())
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=SHARED / "ibsi-sts")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps per epoch")
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: finetune's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--phantoms", type=Path, nargs="+", default=[],
                        help="phantom layout folders (napari-hnc phantom) whose first --phantom-cases each also "
                             "train, so that the model keeps what it learnt on phantoms")
    parser.add_argument("--phantom-cases", type=int, default=20, help="cases taken from each --phantoms folder")
    parser.add_argument("--parent", default=PARENT,
                        help="the model scored before and fine-tuned (default: %(default)s, which saw no sarcoma; "
                             "the bundled hnc-click trained on all of them)")
    parser.add_argument("--blend", type=float, default=None,
                        help="finetune --blend: the fine-tuned weights' share, the rest the bundled model's")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = args.work.expanduser()
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    train, held = split(args.root, args.folds, args.fold)
    results["split"] = {"train": [c.name for c in train], "held_out": [c.name for c in held],
                        "folds": args.folds, "fold": args.fold}
    results["settings"] = {k: str(v) for k, v in vars(args).items()}
    train_dir, test_dir = layout(train, work / "train"), layout(held, work / "test")
    linked = {folder: link_phantoms(folder, args.phantom_cases, train_dir) for folder in args.phantoms}
    mixed = [name for names in linked.values() for name in names]
    mixed_note = "; ".join(f"{names[0]}..{names[-1]} of {folder}" for folder, names in linked.items() if names)
    if mixed:
        results["split"]["phantoms"] = mixed

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    if "before" not in results:
        began = time.perf_counter()
        results["before"] = {**score(args.parent, "click", test_dir, work / "eval" / "before", args.threads),
                             "minutes_score": round((time.perf_counter() - began) / 60, 1)}
        save()
    out = work / "models" / "hnc-click-sts"
    if "after" not in results:
        began = time.perf_counter()
        if not out.is_dir():
            cli("finetune", train_dir, "--from", args.parent, "--out", out, "--folds", "0", "--epochs", args.epochs,
                "--steps-per-epoch", args.steps, "--val-max-cases", 2, "--threads", args.threads, "--device", "cpu",
                "--cache", work / "cache", "--seed", 0, *(["--lr", args.lr] if args.lr else []),
                *(["--blend", args.blend] if args.blend else []),
                "--data-note", f"IBSI soft-tissue sarcomas with a CT, fold {args.fold} of {args.folds} held out "
                               "(benchmarks/sarcoma_finetune.py; TCIA Soft-tissue Sarcoma, CC BY 3.0)"
                               + (f", with the phantoms {mixed_note}" if mixed else ""))
        tuned = time.perf_counter()
        card = str(out / f"{out.name}.json")
        results["after"] = {**score(card, "click", test_dir, work / "eval" / "after", args.threads),
                            "minutes_finetune": round((tuned - began) / 60, 1),
                            "minutes_score": round((time.perf_counter() - tuned) / 60, 1)}
        save()
    print(f"held out: {len(held)} patients ({', '.join(c.name for c in held)}); trained on {len(train)}")
    for key in ("before", "after"):
        print(f"{key:6}  Dice after 1 click {results[key]['dice_1click']:.3f}, after 3 clicks "
              f"{results[key]['dice_3clicks']:.3f}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
