"""The smart-labelling loop (seed 003), stage by stage, on a target domain the bundled models never saw.

Target domain: phantoms of another "clinic" (``napari-hnc phantom --scanner target``: PSF FWHM
8-9 mm instead of 5-7, PET noise CV 0.16-0.28 instead of 0.08-0.14, CT noise 20-30 HU instead of
10-18, and the generator-version-2 lesion mix with 30 % hard cases, where the bundled models were
trained on version 1 without them). 20 held-out target cases are the test set throughout.

* stage I: the bundled model, scored on the held-out 20;
* stage II: fine-tuned (``napari-hnc finetune``) on 10 target cases whose labels stand for the
  expert's corrected proposals (the ground truth), scored again;
* stage III: stage II's model fine-tuned on 20 target cases (the 10 and 10 more), scored again.

``--delineation pet41`` makes the target site also delineate differently: its labels are the lesions'
metabolic volumes (the fixed-threshold MTV convention, voxels at >= 41 % of the lesion's SUVmax),
where the bundled models learnt the whole extent; the images are the same. ``--bounds N`` measures
what the shift costs and what fine-tuning can win back at most: the bundled models on the test seeds
imaged by their own scanner (same lesions), and the bundled models fine-tuned on N more target cases.

Scores are those of ``napari-hnc evaluate``: mean Dice of the union per case for the automatic
model, mean lesion Dice after 1 and 3 simulated clicks for the click model (the RefinementSession
the GUI uses). Minutes per stage = fine-tuning + scoring, wall clock. Results go to
``WORK/results.json`` after every stage (a rerun skips the stages already done).

Run::

    PYTHONPATH=src python benchmarks/smart_labelling.py --work /tmp/smart [--models auto click] [--threads 2]
        [--delineation pet41] [--stages I II III] [--bounds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

TRAIN_SEED, TEST_SEED = 700000, 710000
BUNDLED = {"auto": "hnc-auto", "click": "hnc-click"}


def cli(*argv: str) -> None:
    from napari_hnc.cli import main

    code = main([str(a) for a in argv])
    if code:
        raise SystemExit(f"napari-hnc {' '.join(map(str, argv))} failed with {code}")


def cohorts(work: Path, n_train: int, n_test: int, delineation: str = "extent") -> dict[str, Path]:
    """The target-domain cases: the held-out test set, and training sets of the first 10 and all 20."""
    for name, seed, n in (("test", TEST_SEED, n_test), ("pool", TRAIN_SEED, n_train)):
        if not (work / name / "labelsTr").is_dir():
            cli("phantom", "--n", n, "--seed", seed, "--scanner", "target", "--delineation", delineation,
                "--out", work / name)
    sets = {"test": work / "test"}
    for size in sorted({n_train // 2, n_train}):
        folder = work / f"train{size}"
        for sub in ("imagesTr", "labelsTr"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for k in range(size):
            cid = f"PHANTOM-{TRAIN_SEED + k}"
            for sub, name in (("imagesTr", f"{cid}__CT.nii.gz"), ("imagesTr", f"{cid}__PT.nii.gz"),
                              ("labelsTr", f"{cid}.nii.gz")):
                link = folder / sub / name
                if not link.exists():
                    link.symlink_to(work / "pool" / sub / name)
        sets[f"train{size}"] = folder
    return sets


def score(model: str, kind: str, test: Path, out: Path, threads: int) -> dict[str, float]:
    if not (out / ("click_summary.csv" if kind == "click" else "summary.csv")).is_file():  # a rerun skips it
        cli("evaluate", test, "--layout", "hecktor2022", "--model", model, "--out", out, "--threads", threads,
            *(["--clicks", "3"] if kind == "click" else []))
    if kind == "click":
        table = pd.read_csv(out / "click_summary.csv").set_index("clicks")
        return {"dice_1click": round(float(table.loc[1, "dice_mean"]), 4),
                "dice_3clicks": round(float(table.loc[3, "dice_mean"]), 4)}
    table = pd.read_csv(out / "summary.csv").set_index("target")
    return {f"dice_{t}": round(float(table.loc[t, "dice_mean"]), 4) for t in ("union", "primary", "node")}


def finetune(data: Path, parent: str, out: Path, epochs: int, val_cases: int, work: Path, args) -> None:
    """``napari-hnc finetune`` of ``parent`` on the layout folder ``data`` into ``out``, on the CPU."""
    cli("finetune", data, "--layout", "hecktor2022", "--from", parent, "--out", out, "--folds", "0", "--epochs", epochs,
        "--steps-per-epoch", args.steps, "--val-max-cases", val_cases, "--threads", args.threads,
        "--device", "cpu", "--cache", work / "cache", "--seed", 0, *(["--lr", args.lr] if args.lr else []),
        "--data-note", f"target-domain phantoms ({data.name}), benchmarks/smart_labelling.py")


def save(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def run_stage(stage: str, kind: str, parent: str, data: Path | None, work: Path, args) -> dict:
    began = time.perf_counter()
    model = parent
    if data is not None:
        out = work / "models" / f"{kind}-{stage}"
        if not out.is_dir():
            finetune(data, parent, out, args.epochs, args.val_cases, work, args)
        model = str(out / f"{out.name}.json")
    tuned = time.perf_counter()
    scores = score(model, kind, work / "test", work / "eval" / f"{kind}-{stage}", args.threads)
    done = time.perf_counter()
    return {"model": model, "cases": 0 if data is None else len(list((data / "labelsTr").glob("*.nii.gz"))),
            **scores, "minutes_finetune": round((tuned - began) / 60, 1),
            "minutes_score": round((done - tuned) / 60, 1), "minutes": round((done - began) / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", nargs="+", choices=("auto", "click"), default=["auto", "click"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per epoch")
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: finetune's)")
    parser.add_argument("--val-cases", type=int, default=2, help="training cases validated per epoch")
    parser.add_argument("--n-train", type=int, default=20)
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--stages", nargs="*", choices=("I", "II", "III"), default=["I", "II", "III"],
                        help="the stages to run (default all; none with --bounds: the bounds only)")
    parser.add_argument("--bounds", type=int, default=0, metavar="N",
                        help="also score the bundled models on the test seeds imaged by their own scanner, and "
                             "fine-tune them on N more target cases (0: neither)")
    parser.add_argument("--bounds-epochs", type=int, default=4, help="epochs of the N-case fine-tune")
    parser.add_argument("--delineation", choices=("extent", "pet41"), default="extent",
                        help="how the target site's labels delineate a lesion (napari-hnc phantom --delineation)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = args.work.expanduser()
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    started = time.perf_counter()
    sets = cohorts(work, args.n_train, args.n_test, args.delineation)
    results["minutes_phantoms"] = results.get("minutes_phantoms", round((time.perf_counter() - started) / 60, 1))
    results["settings"] = {k: str(v) for k, v in vars(args).items()}
    half, full = sets[f"train{args.n_train // 2}"], sets[f"train{args.n_train}"]
    for kind in args.models:
        plan = (("I", BUNDLED[kind], None), ("II", BUNDLED[kind], half),
                ("III", str(work / "models" / f"{kind}-II" / f"{kind}-II.json"), full))
        for stage, parent, data in plan:
            if stage not in args.stages:
                continue
            key = f"{kind}-{stage}"
            if key not in results:
                results[key] = run_stage(stage, kind, parent, data, work, args)
                save(results, results_path)
            print(key, json.dumps(results[key]), flush=True)
    if args.bounds:
        bounds(work, args, results, results_path)
    print(json.dumps(results, indent=2))


def bounds(work: Path, args, results: dict, results_path: Path) -> None:
    """What the shift costs, and what fine-tuning can win back at most.

    * ``<kind>-default-scanner``: the bundled model on the test seeds imaged by the bundled models' own
      scanner (same anatomy, lesions and delineation; only PSF, noise and CT noise differ);
    * ``<kind>-many``: the bundled model fine-tuned on ``--bounds`` target cases (seeds after the pool's),
      ``--bounds-epochs`` epochs of ``--steps``, validated on 3 of them, scored on the same test set.
    """
    default = work / "test-default-scanner"
    if not (default / "labelsTr").is_dir():
        cli("phantom", "--n", args.n_test, "--seed", TEST_SEED, "--delineation", args.delineation, "--out", default)
    for kind in args.models:
        key = f"{kind}-default-scanner"
        if key not in results:
            results[key] = {"model": BUNDLED[kind], **score(BUNDLED[kind], kind, default, work / "eval" / key, args.threads)}
            save(results, results_path)
        print(key, json.dumps(results[key]), flush=True)
    many = work / "many"
    if not (many / "labelsTr").is_dir():
        cli("phantom", "--n", args.bounds, "--seed", TRAIN_SEED + args.n_train, "--scanner", "target",
            "--delineation", args.delineation, "--out", many)
    for kind in args.models:
        key = f"{kind}-many"
        if key not in results:
            began = time.perf_counter()
            out = work / "models" / key
            if not out.is_dir():
                finetune(many, BUNDLED[kind], out, args.bounds_epochs, 3, work, args)
            model = str(out / f"{out.name}.json")
            results[key] = {"model": model, "cases": args.bounds,
                            **score(model, kind, work / "test", work / "eval" / key, args.threads),
                            "minutes": round((time.perf_counter() - began) / 60, 1)}
            save(results, results_path)
        print(key, json.dumps(results[key]), flush=True)


if __name__ == "__main__":
    main()
