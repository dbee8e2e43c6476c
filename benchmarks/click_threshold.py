"""Speed of one click -> thresholded / grown lesion on a 512x512x150 label grid.

A synthetic study like a head-and-neck PET/CT: CT grid 512x512x150 of
0.98x0.98x3.27 mm, PET 128x128x150 of 4.69x4.69x3.27 mm (different origin), 12
blurred lesions of 5-20 mm radius and SUVmax 4-15 on a noisy background. Prints
medians (ms) of:

* the first click of a study (a new Study: the PET is converted for SimpleITK once);
* clicks on regions not yet read (each new lesion, same study);
* repeated clicks on regions already read (cached PET);
* a click added onto existing labels (which copies the 512x512x150 labels);

for each rule, through ``napari_hnc.delineate`` (which also allocates the
512x512x150 labels) and through the per-lesion core ``lesion_from_click``; and,
for scale, the whole-volume ``study.pet_on_grid()`` resample. The target is
<= 30 ms median per click on a 2-core CPU.

Run::

    PYTHONPATH=src python benchmarks/click_threshold.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

TARGET_MS = 30.0
SHAPE_CT = (512, 512, 150)
SPACING_CT = (0.977, 0.977, 3.27)
SHAPE_PET = (128, 128, 150)
SPACING_PET = (4.69, 4.69, 3.27)
METHODS = ("edge", "percent", "fixed", "adaptive", "grow")


def make_study(seed: int = 0):
    """The synthetic study and the world centres of its lesions."""
    from scipy import ndimage

    from napari_hnc import Study, Volume

    rng = np.random.default_rng(seed)
    ct_affine = np.diag([-SPACING_CT[0], -SPACING_CT[1], SPACING_CT[2], 1.0])
    ct_affine[:3, 3] = (250.0, 250.0, -240.0)
    pet_affine = np.diag([-SPACING_PET[0], -SPACING_PET[1], SPACING_PET[2], 1.0])
    pet_affine[:3, 3] = (300.0, 300.0, -240.0)
    ct = Volume(np.zeros(SHAPE_CT, np.int16), ct_affine, {"role": "ct"})
    pet = np.zeros(SHAPE_PET, np.float32)
    grid = np.indices(SHAPE_PET, dtype=np.float32)
    centres = []
    for _ in range(12):
        world = ct.voxel_to_world(rng.uniform([120, 120, 30], [390, 390, 120]))
        centre = np.linalg.solve(pet_affine[:3, :3], world - pet_affine[:3, 3])
        radius = rng.uniform(5.0, 20.0)
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, SPACING_PET))
        pet[d2 <= radius**2] = np.maximum(pet[d2 <= radius**2], rng.uniform(4.0, 15.0))
        centres.append(world)
    sigma = [6.0 / 2.355 / s for s in SPACING_PET]  # 6 mm FWHM
    pet = ndimage.gaussian_filter(pet, sigma) + rng.normal(1.0, 0.15, SHAPE_PET).astype(np.float32)
    return Study(ct, Volume(pet.astype(np.float32), pet_affine, {"role": "pet"}), case_id="bench"), centres


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1000.0 * (time.perf_counter() - start)


def fresh(study):
    from napari_hnc import Study

    return Study(study.ct, study.pet, case_id=study.case_id)


def bench_method(study, centres, method: str, repeats: int) -> dict[str, float]:
    from napari_hnc import Click, delineate
    from napari_hnc.pet.delineation import click_index, lesion_from_click
    from napari_hnc.pet.params import SeedParams
    from napari_hnc.pet.sampling import pet_sampler

    clicks = [Click(tuple(c)) for c in centres]
    first = [timed(lambda c=c: delineate(fresh(study), [c], method)) for c in clicks[:repeats]]
    s = fresh(study)
    cold = [timed(lambda c=c: delineate(s, [c], method)) for c in clicks]
    warm = [timed(lambda c=c: delineate(s, [c], method)) for c in clicks for _ in range(repeats)]
    existing = delineate(s, clicks[:2], method)
    onto = [timed(lambda c=c: delineate(s, [c], method, labels=existing)) for c in clicks for _ in range(repeats)]
    params, sampler = SeedParams.create(method), pet_sampler(s)
    core = [timed(lambda c=c: lesion_from_click(sampler, click_index(s, c), params)) for c in clicks for _ in range(repeats)]
    return {"first click of a study": statistics.median(first), "new region": statistics.median(cold),
            "repeated click": statistics.median(warm), "onto existing labels": statistics.median(onto),
            "core, cached": statistics.median(core)}


def lesion_sizes(study, centres, method: str) -> tuple[float, int]:
    """Median lesion volume (ml) and how many clicks were cut at the bound (a sanity check)."""
    from napari_hnc import Click, delineate
    from napari_hnc.errors import HncWarning

    volumes, cut = [], 0
    for c in centres:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels = delineate(study, [Click(tuple(c))], method)
        cut += any(issubclass(w.category, HncWarning) for w in caught)
        volumes.append(float(labels.array.sum()) * labels.voxel_volume_ml)
    return statistics.median(volumes), cut


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="click -> lesion speed on a 512x512x150 grid")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    study, centres = make_study()
    from napari_hnc import Click, delineate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        process_first = timed(lambda: delineate(fresh(study), [Click(tuple(centres[0]))]))
        print(f"label grid {SHAPE_CT}, PET {SHAPE_PET}; {len(centres)} lesions; medians in ms (target <= {TARGET_MS:g})")
        print(f"first click in this process (imports + PET conversion + click): {process_first:8.1f}")
        whole = timed(lambda: fresh(study).pet_on_grid())
        print(f"for scale, whole-volume study.pet_on_grid():                    {whole:8.1f}")
        for method in METHODS:
            result = bench_method(study, centres, method, args.repeats)
            cells = "  ".join(f"{k} {v:6.1f}" for k, v in result.items())
            volume, cut = lesion_sizes(fresh(study), centres, method)
            print(f"{method:9} {cells}   new region / target = {result['new region'] / TARGET_MS:.2f}"
                  f"   (median lesion {volume:.1f} ml, {cut} cut at the bound)")


if __name__ == "__main__":
    main()
