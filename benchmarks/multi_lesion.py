"""One click per lesion, many lesions per study: the click tools on touching-lesion phantoms and real sarcomas.

Two sets:

* **phantoms**: ``--phantoms`` synthetic head-and-neck PET/CT (default preset, 512x512x80
  CT) drawn as hard cases with touching lesions (node chains, a node touching the
  primary: ``generate_case(seed, hard_cases="touching")``), seeds ``--seed``...;
* **real**: the 41 FDG PET/CT sarcomas of ``shared/data/ibsi-sts`` (IBSI validation set,
  CC BY 3.0; one lesion each, on the CT grid against the expert CT mask when the case
  has a CT, else on the PET grid against the PET mask). They are not head-and-neck
  lesions: they measure the tools on real PET physics and large, necrotic lesions.

Each reference lesion (an instance) gets one positive click at its centre (its voxel
nearest its centre of mass) with its class. For each click tool it prints:

* union Dice (all lesions together, classes ignored), mean over studies;
* per-lesion Dice (median and mean): each reference lesion against the lesion
  instance its click made;
* lesion detection F1: a reference lesion is found when its instance has Dice >= 0.5;
  instances that match no reference lesion are false positives;
* class accuracy of the found lesions;
* the spread (max - min) of union Dice over ``--shuffles`` shuffled click orders;
* median milliseconds per click.

The tools: the PET rules through ``napari_hnc.delineate`` (edge, percent, adaptive,
fixed, grow), the click-guided model through ``RefinementSession`` (one click per
lesion, ``next_lesion`` between), and, as the reference the issue measured against,
"41 % as before": the percent rule as napari-hnc did it before lesion instances (snap
7 mm, 41 % of the climbed SUVmax, a 50 mm bound, no cold centres, no cavities filled,
each click overwriting what was there), written out here in a few lines.

Run::

    PYTHONPATH=src python benchmarks/multi_lesion.py [--phantoms 20] [--shuffles 5] [--tools edge,percent,model]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

SHARED = next((p for p in (Path(__file__).resolve().parents[1].parent / "shared" / "data", Path("/work/shared/data"))
               if p.is_dir()), Path(__file__).resolve().parents[1].parent / "shared" / "data")
PHANTOM_SEED = 700000
TOOLS = ("edge", "percent", "adaptive", "fixed", "grow", "model", "percent-before")


# --------------------------------------------------------------------------- data


def phantom_studies(n: int, seed: int, preset: str = "default"):
    """``(study, reference instances)`` of ``n`` touching-lesion phantoms."""
    from napari_hnc.phantom import generate_case

    for k in range(n):
        case = generate_case(seed + k, preset, hard_cases="touching")
        yield case.study, np.asarray(case.study.labels.metadata["instances"])


def real_studies(root: Path):
    """``(study, reference instances)`` of the IBSI sarcomas: CT grid and CT mask when there is a CT."""
    from napari_hnc import load_study

    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("STS_")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if (folder / "CT_image.nii.gz").is_file():
                study = load_study(ct=folder / "CT_image.nii.gz", pet=folder / "PET_image.nii.gz",
                                   labels=folder / "CT_mask.nii.gz", case_id=folder.name)
            else:
                study = load_study(pet=folder / "PET_image.nii.gz", labels=folder / "PET_mask.nii.gz",
                                   case_id=folder.name)
        reference = (np.asarray(study.labels.array) > 0).astype(np.uint16)
        study = study.with_labels(reference.astype(np.uint8))  # the sarcoma counts as a primary tumour
        yield study, reference


def reference_clicks(study, reference: np.ndarray) -> list:
    """One positive click per reference instance, at its voxel nearest its centre of mass, with its class."""
    from napari_hnc import Click
    from napari_hnc.training.cache import centre_voxel

    labels = np.asarray(study.labels.array)
    clicks = []
    for lesion in range(1, int(reference.max()) + 1):
        mask = reference == lesion
        if not mask.any():
            continue
        voxel = centre_voxel(mask)
        clicks.append((lesion, Click(tuple(study.grid.voxel_to_world(np.asarray(voxel, float))),
                                     label=int(labels[tuple(voxel)]))))
    return clicks


# --------------------------------------------------------------------------- tools


def run_tool(tool: str, study, clicks, session=None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """``(labels, instances, ms per click)`` of one tool on one study with the clicks in the order given."""
    from napari_hnc import delineate
    from napari_hnc.errors import ClickError

    if tool == "model":
        return _run_session(session, study, clicks)
    if tool == "percent-before":
        return _percent_before(study, clicks)
    start = time.perf_counter()  # all clicks in one call, as `napari-hnc delineate --click ... --click ...`
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = delineate(study, [click for _, click in clicks], tool)
    except ClickError:
        return _one_by_one(tool, study, clicks)
    times = [1000.0 * (time.perf_counter() - start) / max(len(clicks), 1)] * len(clicks)
    return np.asarray(labels.array), np.asarray(labels.metadata["instances"]), times


def _one_by_one(tool, study, clicks):
    """When a click fails, the others still count: through a session, click after click."""
    from napari_hnc import RefinementSession

    return _run_session(RefinementSession(None, threshold=tool), study, clicks)


def _run_session(session, study, clicks):
    from napari_hnc.errors import ClickError

    session.set_study(study.with_labels(None))
    times = []
    for _, click in clicks:
        session.next_lesion()
        start = time.perf_counter()
        try:
            session.add_click(click.world, True, click.label)
        except ClickError:
            pass
        times.append(1000.0 * (time.perf_counter() - start))
    return session.target.copy(), session.instances.copy(), times


def _percent_before(study, clicks):
    """41 % of SUVmax as it was: 7 mm snap, climbing SUVmax, 50 mm bound, last click wins, no instances."""
    from napari_hnc.pet import pet_sampler
    from napari_hnc.pet.grow import flood_component
    from napari_hnc.pet.thresholds import ball, ball_window, snap_to_peak

    sampler = pet_sampler(study)
    spacing = tuple(float(s) for s in study.grid.spacing)
    labels = np.zeros(study.grid.shape, np.uint8)
    instances = np.zeros(study.grid.shape, np.uint16)
    times = []
    for number, (_, click) in enumerate(clicks, start=1):
        start = time.perf_counter()
        index = study.grid.world_to_index(click.world)
        box = ball_window(study.grid.shape, index, spacing, 50.0)
        pet = sampler.box(box)
        local = tuple(i - b.start for i, b in zip(index, box))
        within = ball(pet.shape, local, spacing, 50.0)
        peak = snap_to_peak(pet, local, spacing, 7.0)
        if np.isfinite(pet[peak]) and pet[peak] >= 2.0:
            suv = float(pet[peak])
            region = flood_component((pet >= 0.41 * suv) & within, peak)
            for _ in range(10):
                top = float(np.nanmax(np.where(region, pet, -np.inf)))
                if top <= suv:
                    break
                suv = top
                peak = np.unravel_index(int(np.argmax(np.where(region, pet, -np.inf))), pet.shape)
                region = flood_component((pet >= 0.41 * suv) & within, tuple(int(v) for v in peak))
            labels[box][region] = click.label
            instances[box][region] = number
        times.append(1000.0 * (time.perf_counter() - start))
    return labels, instances, times


# --------------------------------------------------------------------------- scores


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * float((a & b).sum()) / total if total else 1.0


def score(reference: np.ndarray, ref_labels: np.ndarray, labels: np.ndarray, instances: np.ndarray,
          clicks) -> dict:
    """Union Dice, per-lesion Dice, detection counts and class hits of one study."""
    from scipy import ndimage

    rows = []
    matched: set[int] = set()
    boxes = ndimage.find_objects(instances) if instances.any() else []
    for lesion, click in clicks:
        truth = reference == lesion
        hits = instances[truth]
        candidates = [int(v) for v in np.unique(hits) if v]
        best, best_dice = 0, 0.0
        for candidate in candidates:
            box = boxes[candidate - 1]
            union = tuple(slice(0, n) for n in truth.shape) if box is None else None
            value = dice(instances == candidate, truth) if union is not None else _box_dice(instances, truth, candidate, box)
            if value > best_dice:
                best, best_dice = candidate, value
        found = best_dice >= 0.5
        if found:
            matched.add(best)
        predicted_class = int(labels[instances == best].max()) if best else 0
        rows.append({"dice": best_dice, "found": found, "class_ok": found and predicted_class == click.label})
    predicted = {int(v) for v in np.unique(instances) if v}
    return {"union": dice(labels > 0, ref_labels > 0), "lesions": rows, "false_positives": len(predicted - matched)}


def _box_dice(instances, truth, candidate, box) -> float:
    grown = tuple(slice(0, n) for n in truth.shape)
    return dice(instances[grown] == candidate, truth)


def summarise(results: list[dict], spreads: list[float], times: list[float]) -> dict:
    lesions = [row for result in results for row in result["lesions"]]
    tp = sum(row["found"] for row in lesions)
    fn = len(lesions) - tp
    fp = sum(result["false_positives"] for result in results)
    values = [row["dice"] for row in lesions]
    return {
        "studies": float(len(results)),
        "union Dice": float(np.mean([r["union"] for r in results])),
        "lesion Dice median": float(np.median(values)) if values else float("nan"),
        "lesion Dice mean": float(np.mean(values)) if values else float("nan"),
        "detection F1": 2.0 * tp / (2.0 * tp + fp + fn) if lesions else float("nan"),
        "class accuracy": sum(row["class_ok"] for row in lesions) / tp if tp else float("nan"),
        "shuffle spread": max(spreads) if spreads else 0.0,
        "ms per click": statistics.median(times) if times else float("nan"),
    }


def evaluate(studies, tools, shuffles: int, session=None, seed: int = 0) -> dict[str, dict]:
    """The summary of each tool over ``studies`` (``(study, reference instances)`` pairs)."""
    rng = np.random.default_rng(seed)
    collected = {tool: ([], [], []) for tool in tools}
    for study, reference in studies:
        clicks = reference_clicks(study, reference)
        ref_labels = np.asarray(study.labels.array)
        plain = study.with_labels(None)
        orders = [list(rng.permutation(len(clicks))) for _ in range(shuffles if len(clicks) > 1 else 0)]
        for tool in tools:
            if tool == "model" and study.ct is None:
                continue  # the click model reads CT and PET: it is scored on the studies with a CT
            results, spreads, times = collected[tool]
            labels, instances, ms = run_tool(tool, plain, clicks, session)
            results.append(score(reference, ref_labels, labels, instances, clicks))
            times += ms
            unions = [results[-1]["union"]]
            for order in orders:
                shuffled, _, _ = run_tool(tool, plain, [clicks[i] for i in order], session)
                unions.append(dice(shuffled > 0, ref_labels > 0))
            spreads.append(max(unions) - min(unions))
    return {tool: summarise(*collected[tool]) for tool in tools}


def format_table(title: str, summary: dict[str, dict]) -> str:
    keys = list(next(iter(summary.values())))
    head = f"{'tool':16}" + "".join(f"{k:>20}" for k in keys)
    lines = [title, head, "-" * len(head)]
    for tool, row in summary.items():
        cells = [f"{row[k]:20.0f}" if k == "studies" else f"{row[k]:20.1f}" if "ms" in k else f"{row[k]:20.3f}"
                 for k in keys]
        lines.append(f"{tool:16}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="one click per lesion on touching-lesion phantoms and real sarcomas")
    parser.add_argument("--phantoms", type=int, default=20)
    parser.add_argument("--seed", type=int, default=PHANTOM_SEED)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--real", default=str(SHARED / "ibsi-sts"), help="the IBSI sarcoma folder ('' to skip)")
    parser.add_argument("--real-shuffles", type=int, default=0, help="shuffles on the real set (one lesion each: 0)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    session = None
    if "model" in tools:
        from napari_hnc import RefinementSession

        session = RefinementSession("click", args.device)
    if args.phantoms:
        summary = evaluate(phantom_studies(args.phantoms, args.seed, args.preset), tools, args.shuffles, session)
        print(format_table(f"{args.phantoms} touching-lesion phantoms (seeds {args.seed}..., {args.preset} preset), "
                           "one click per lesion", summary), flush=True)
    if args.real and Path(args.real).is_dir():
        summary = evaluate(real_studies(Path(args.real)), tools, args.real_shuffles, session)
        print(format_table(f"\nreal sarcomas ({args.real}), one click at each mask's centre", summary), flush=True)


if __name__ == "__main__":
    main()
