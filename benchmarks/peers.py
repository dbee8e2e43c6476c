"""napari-hnc side by side with the libraries a user would call instead: one run, ratios.

1. **Sliding window** vs MONAI ``sliding_window_inference``: the bundled ``hnc-auto`` network and
   weights, the same input (a head-and-neck phantom's model input, padded by replication to at
   least one patch per axis), 128^3 ROI, overlap 0.25, Gaussian blending (MONAI ``mode="gaussian"``
   with ``sigma_scale`` = our FWHM of one patch side). Time ratio and max |difference| of the
   class probabilities.
2. **Opening a NIfTI PET/CT study** (CT 512 x 512 x 300 int16 + PET 200 x 200 x 300 float32, gzip):
   ``load_study`` vs nibabel (``nib.load`` + ``np.asanyarray(dataobj)``) and vs SimpleITK
   (``ReadImage`` + array view).
3. **DICOM PET -> SUV** (the real whole-body GE PET ``sts/raw/STS_001/FDG_PET``, 267 slices):
   ``read_dicom_image`` vs SimpleITK's series reader plus the SUVbw factor computed by hand from
   the pydicom header (weight, dose, injection and series time, half-life); max relative difference.
4. **Quantification of a 30-lesion label map**: ``quantify`` vs pyradiomics first-order features
   (one extraction per lesion) and vs scikit-image ``regionprops``: volume, SUVmax, SUVmean, TLG
   must agree (asserted); napari-hnc also computes SUVpeak and world centroids.

Needs the ``[bench]`` extra (``pip install -e ".[bench]"``: MONAI, pyradiomics); a peer that is not
installed is reported as such and skipped. Usage::

    PYTHONPATH=src python benchmarks/peers.py [--repeats 3]

Goal: napari-hnc at least as fast as each peer on the same work (ratio ours / peer <= 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STS = REPO.parent / "shared" / "data" / "sts"
if not STS.is_dir():
    STS = Path("/work/shared/data/sts")
ROWS: list[tuple[str, str, str, str]] = []


def timed(fn, repeats: int):
    """(median seconds, last result) over ``repeats`` calls after one warm-up call."""
    return compare(fn, repeats=repeats)[0]


def compare(*fns, repeats: int):
    """[(median seconds, last result)] per function: one warm-up each, then the functions in turn,
    ``repeats`` rounds, so that a change of load on a shared machine hits all of them alike."""
    results = [fn() for fn in fns]
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t)
    return [(statistics.median(t), r) for t, r in zip(times, results)]


def row(what: str, ours: float, peer_name: str, peer: float, agreement: str) -> None:
    ROWS.append((what, f"{ours:.3f} s", f"{peer_name} {peer:.3f} s", f"**{ours / peer:.2f}x**", agreement))
    print(f"  {what}: napari-hnc {ours:.3f} s, {peer_name} {peer:.3f} s, ratio {ours / peer:.2f}; {agreement}")


# --------------------------------------------------------------------------- 1. sliding window


def sliding_window_vs_monai(repeats: int) -> None:
    import torch
    import torch.nn.functional as F

    from napari_hnc.inference.device import DeviceConfig
    from napari_hnc.inference.ensemble import EnsemblePredictor
    from napari_hnc.inference.preprocess import PetStats, body_box, grid_over_box, image_channels, stack_inputs
    from napari_hnc.inference.sliding_window import FWHM_TO_SIGMA, WindowConfig, sliding_window
    from napari_hnc.models.registry import load_model
    from napari_hnc.phantom import generate_case

    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        print("  MONAI not installed (pip install -e '.[bench]'): sliding-window comparison skipped")
        return
    model = load_model("default", task="automatic")
    card = model.card
    study = generate_case(15, "default").study
    lo, hi = body_box(study)
    grid = grid_over_box(study.grid, card.spacing_mm, lo, hi)
    image = torch.from_numpy(stack_inputs(card, image_channels(study, card, grid, PetStats.of(study.pet))))
    patch = card.patch_size
    pad = [v for s, p in zip(reversed(image.shape[1:]), reversed(patch)) for v in (0, max(0, p - s))]
    image = F.pad(image[None], pad, mode="replicate")[0]  # every axis at least one patch: no padding inside
    ensemble = EnsemblePredictor(model.networks, torch.device("cpu"))
    config = DeviceConfig.create("cpu", None)
    config.activate()
    window = WindowConfig(patch, 0.25, 1, divisor=model.divisor)
    network = {"ours": [], "MONAI": []}  # seconds spent in the network, per run

    def predictor(who: str):
        def run(batch):
            t = time.perf_counter()
            out = ensemble(batch)
            network[who][-1] += time.perf_counter() - t
            return out
        return run

    def ours():
        network["ours"].append(0.0)
        with config.context():
            return sliding_window(image, predictor("ours"), window, out_channels=card.out_channels)

    def monai():
        network["MONAI"].append(0.0)
        with config.context():
            return sliding_window_inference(image[None], patch, 1, predictor("MONAI"), overlap=0.25, mode="gaussian",
                                            sigma_scale=FWHM_TO_SIGMA, padding_mode="replicate")[0]

    (t_ours, p_ours), (t_monai, p_monai) = compare(ours, monai, repeats=repeats)
    net = {who: statistics.median(times[1:]) for who, times in network.items()}  # warm-up left out
    diff = float((p_ours - p_monai).abs().max())
    lesion = (p_ours[1:].sum(0) > 0.5) | (p_monai[1:].sum(0) > 0.5)
    inner = float((p_ours - p_monai).abs()[:, lesion].max()) if lesion.any() else 0.0
    agree = float(((p_ours.argmax(0) == p_monai.argmax(0)).float().mean()))
    print(f"  input {tuple(image.shape)} on the {list(card.spacing_mm)} mm model grid, ROI {patch}, "
          f"torch threads {torch.get_num_threads()}")
    row("sliding window (hnc-auto, Gaussian, overlap 0.25)", t_ours, "MONAI", t_monai,
        f"max |p - p_MONAI| {diff:.2e} (in lesion voxels {inner:.2e}), argmax agrees on {agree * 100:.3f}% of voxels")
    row("sliding window without the network's own time (tiling, blending)", t_ours - net["ours"], "MONAI",
        t_monai - net["MONAI"], f"network time per run: ours {net['ours']:.2f} s, MONAI {net['MONAI']:.2f} s "
        "(the same network on the same tiles: their difference is the machine's load)")


# --------------------------------------------------------------------------- 2. NIfTI study


def load_vs_nibabel_and_sitk(repeats: int, folder: Path) -> None:
    import nibabel as nib
    import SimpleITK as sitk

    import napari_hnc

    sys.path.insert(0, str(HERE))
    from open_study import make_study

    folder.mkdir(parents=True, exist_ok=True)
    ct = make_study(folder)
    pet = ct.with_name("BENCH-001__PT.nii.gz")

    def ours():
        study = napari_hnc.load_study(ct=ct, pet=pet)
        return study.ct.array, study.pet.array

    def nibabel():
        return tuple(np.asanyarray(nib.load(str(p)).dataobj) for p in (ct, pet))

    def simpleitk():
        images = [sitk.ReadImage(str(p)) for p in (ct, pet)]
        return tuple(sitk.GetArrayViewFromImage(i) for i in images), images

    (t_ours, (a_ct, a_pet)), (t_nib, (b_ct, b_pet)), (t_sitk, _) = compare(ours, nibabel, simpleitk, repeats=repeats)
    same = np.array_equal(a_ct, b_ct) and np.array_equal(a_pet, b_pet)
    row("open a NIfTI study (CT 512x512x300 + PET 200x200x300)", t_ours, "nibabel", t_nib,
        f"voxels identical to nibabel: {same}")
    row("open a NIfTI study (same files)", t_ours, "SimpleITK", t_sitk, "SimpleITK reads the same voxels (LPS view)")


# --------------------------------------------------------------------------- 3. DICOM PET -> SUV


def suv_by_hand(folder: Path):
    """SimpleITK series reader (Bq/ml) times the SUVbw factor computed from the first header."""
    import pydicom
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(files)
    image = reader.Execute()
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    info = ds.RadiopharmaceuticalInformationSequence[0]

    def seconds(text: str) -> float:
        text = str(text).split(".")[0]
        return int(text[:2]) * 3600 + int(text[2:4]) * 60 + int(text[4:6])

    decay = seconds(ds.SeriesTime) - seconds(info.RadiopharmaceuticalStartTime)
    dose = float(info.RadionuclideTotalDose) * 2.0 ** (-decay / float(info.RadionuclideHalfLife))
    factor = float(ds.PatientWeight) * 1000.0 / dose
    return image, sitk.GetArrayFromImage(image) * np.float32(factor), decay


def dicom_suv_vs_sitk(repeats: int) -> None:
    from napari_hnc.geometry import Volume
    from napari_hnc.io.dicom import read_dicom_image, series

    folder = STS / "raw" / "STS_001" / "FDG_PET" / "image"
    if not folder.is_dir():
        print(f"  {folder} not found: DICOM comparison skipped")
        return
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalWarningDisplay(False)

    def ours():
        series._HEADERS.clear()  # scan and read every file each time
        return read_dicom_image(folder, "pet")

    (t_ours, volume), (t_peer, (image, suv, decay)) = compare(ours, lambda: suv_by_hand(folder), repeats=repeats)
    peer = Volume(suv.T, Volume.from_sitk(image).affine)
    a, b = volume.reoriented("RAS"), peer.reoriented("RAS")
    assert a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-3)
    hot = b.array > 0.5
    relative = float(np.max(np.abs(a.array[hot] - b.array[hot]) / b.array[hot]))
    row("DICOM PET -> SUV (GE, 267 slices, whole body)", t_ours, "SimpleITK + SUV by hand", t_peer,
        f"max relative difference {relative:.1e} over {int(hot.sum())} voxels above SUV 0.5 (decay {decay:.0f} s)")


# --------------------------------------------------------------------------- 4. quantification


def lesion_map(n: int = 30, seed: int = 0):
    """A PET (SUV) and labels on one 4 mm grid with ``n`` separate ball-shaped lesions of known uptake."""
    from napari_hnc.geometry import Volume

    rng = np.random.default_rng(seed)
    shape = (128, 128, 100)
    affine = np.diag([4.0, 4.0, 3.0, 1.0])
    pet = rng.gamma(4.0, 0.25, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    grid = np.indices(shape, dtype=np.float32)
    placed = 0
    while placed < n:
        centre = rng.uniform([12, 12, 12], np.array(shape) - 12)
        radius = rng.uniform(1.8, 5.0)
        ball = ((grid[0] - centre[0]) ** 2 + (grid[1] - centre[1]) ** 2 + ((grid[2] - centre[2]) * 0.75) ** 2) <= radius**2
        halo = ((grid[0] - centre[0]) ** 2 + (grid[1] - centre[1]) ** 2 + ((grid[2] - centre[2]) * 0.75) ** 2) <= (radius + 2) ** 2
        if labels[halo].any():
            continue
        labels[ball] = 1 if placed % 3 == 0 else 2
        pet[ball] += rng.uniform(2.0, 15.0) * rng.uniform(0.8, 1.0, int(ball.sum())).astype(np.float32)
        placed += 1
    return Volume(pet, affine, {"role": "pet", "units": "SUVbw"}), Volume(labels, affine, {"role": "labels"})


def quantify_vs_peers(repeats: int) -> None:
    from scipy import ndimage
    from skimage.measure import regionprops

    import napari_hnc
    from napari_hnc.study import Study

    pet, labels = lesion_map()
    study = Study(None, pet, labels, "LESIONS-30")
    voxel_ml = labels.voxel_volume_ml
    def skimage():
        instances, _ = ndimage.label(labels.array > 0, np.ones((3, 3, 3), bool))
        return [(p.area * voxel_ml, p.intensity_max, p.intensity_mean, p.intensity_mean * p.area * voxel_ml)
                for p in regionprops(instances, intensity_image=pet.array)]

    (t_ours, table), (t_sk, props) = compare(lambda: napari_hnc.quantify(study), skimage, repeats=repeats * 5)
    assert len(table) == 30
    key = lambda values: tuple(np.round(values, 6))  # noqa: E731  (lesions matched by volume, max, mean)
    ours = sorted(key(r) for r in table[["volume_ml", "suv_max", "suv_mean", "tlg"]].to_numpy())
    theirs = sorted(key(v) for v in props)
    assert np.allclose(ours, theirs, rtol=1e-5), "quantify and regionprops disagree"
    row("quantify 30 lesions (volume, SUVmax, SUVmean, TLG; ours + SUVpeak, centroids)", t_ours,
        "skimage regionprops", t_sk, "volume, SUVmax, SUVmean, TLG equal (rtol 1e-5)")
    try:
        from radiomics import featureextractor
    except ImportError:
        print("  pyradiomics not installed (pip install -e '.[bench]'): pyradiomics comparison skipped")
        return
    import logging

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(firstorder=["Maximum", "Mean"], shape=["VoxelVolume"])
    instances, count = ndimage.label(labels.array > 0, np.ones((3, 3, 3), bool))
    image, mask = pet.to_sitk(), labels.with_array(instances.astype(np.uint8)).to_sitk()

    def pyradiomics():
        out = []
        for i in range(1, count + 1):
            f = extractor.execute(image, mask, label=i)
            volume = float(f["original_shape_VoxelVolume"]) / 1000.0
            out.append((volume, float(f["original_firstorder_Maximum"]), float(f["original_firstorder_Mean"]),
                        float(f["original_firstorder_Mean"]) * volume))
        return out

    t_rad, features = timed(pyradiomics, max(1, repeats // 2))
    theirs = sorted(key(v) for v in features)
    assert np.allclose(ours, theirs, rtol=1e-5), "quantify and pyradiomics disagree"
    row("quantify 30 lesions (same)", t_ours, "pyradiomics first-order + VoxelVolume", t_rad,
        "volume, SUVmax, SUVmean, TLG equal (rtol 1e-5)")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "napari-hnc-bench-open")
    parser.add_argument("--only", nargs="*", choices=["window", "open", "dicom", "quantify"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    print(f"peers: torch {torch.__version__}, {os.cpu_count()} CPU(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, median of {args.repeats} after a warm-up")
    steps = {"window": lambda: sliding_window_vs_monai(args.repeats),
             "open": lambda: load_vs_nibabel_and_sitk(args.repeats, args.dir),
             "dicom": lambda: dicom_suv_vs_sitk(args.repeats), "quantify": lambda: quantify_vs_peers(args.repeats)}
    for name in args.only or list(steps):
        steps[name]()
    print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| what | napari-hnc | peer | ours / peer | agreement |\n|---|---|---|---|---|")
    for cells in ROWS:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
