"""Synthetic head-and-neck phantoms: files, determinism, geometry, lesion truth, realism, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

import napari_hnc
from napari_hnc import cli
from napari_hnc.conventions import NODE, PRIMARY
from napari_hnc.errors import Cancelled, HncError
from napari_hnc.phantom import generate_case, read_lesion_files, write_cohort
from napari_hnc.phantom.cohort import case_paths, sample_path
from napari_hnc.progress import CancelToken


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Three small cases written to disk (seeds 100-102)."""
    out = tmp_path_factory.mktemp("phantoms")
    write_cohort(out, 3, seed=100, preset="small")
    return out


@pytest.fixture(scope="module")
def cohort20():
    """Twenty small cases in memory (seeds 0-19)."""
    return [generate_case(seed, "small") for seed in range(20)]


def lesion_masks(labels: np.ndarray, lesions: list[dict]) -> list[np.ndarray]:
    """Each JSON lesion's label voxels: connected components of its class, matched to the nearest centre."""
    masks = [np.zeros(labels.shape, bool) for _ in lesions]
    for value in (PRIMARY, NODE):
        comp, count = ndimage.label(labels == value, structure=np.ones((3, 3, 3)))
        mine = [i for i, lesion in enumerate(lesions) if lesion["label"] == value]
        for c in range(1, count + 1):
            idx = np.argwhere(comp == c).mean(axis=0)
            nearest = min(mine, key=lambda i: np.linalg.norm(idx - lesions[i]["_center_vox"]))
            masks[nearest] |= comp == c
    return masks


def _with_voxel_centres(record: dict, grid) -> list[dict]:
    return [{**lesion, "_center_vox": grid.world_to_voxel(lesion["center_ras_mm"])} for lesion in record["lesions"]]


# --------------------------------------------------------------------------- files and determinism


def test_same_seed_gives_the_same_bytes_and_case_k_stands_alone(tmp_path):
    write_cohort(tmp_path / "a", 2, seed=5, preset="small")
    write_cohort(tmp_path / "b", 1, seed=6, preset="small")
    write_cohort(tmp_path / "c", 1, seed=7, preset="small")
    alone, in_cohort, other = (case_paths(tmp_path / d, cid) for d, cid in
                               (("b", "PHANTOM-0006"), ("a", "PHANTOM-0006"), ("c", "PHANTOM-0007")))
    for key in ("ct", "pet", "labels", "lesions"):
        assert alone[key].read_bytes() == in_cohort[key].read_bytes(), key
        assert alone[key].read_bytes() != other[key].read_bytes(), key
    record = json.loads(alone["lesions"].read_text())
    assert list(record) == sorted(record) and record["seed"] == 6


def test_layout_is_found_by_the_study_reader(written):
    found = napari_hnc.discover_studies(written)
    assert [s.case_id for s in found] == ["PHANTOM-0100", "PHANTOM-0101", "PHANTOM-0102"]
    assert all(s.layout == "hecktor2022" and s.ct and s.pet and s.labels for s in found)
    assert len(read_lesion_files(written)) == 3


def test_reader_overlays_pet_and_ct(written):
    for record in read_lesion_files(written):
        study = napari_hnc.load_study(written / record["files"]["ct"])
        ct, pet = study.ct, study.pet
        assert ct.orientation == pet.orientation == ("L", "P", "S")
        assert np.allclose(ct.spacing, (2.0, 2.0, 3.0)) and np.allclose(pet.spacing, (4.0, 4.0, 3.0))
        assert not np.allclose(ct.affine[:3, 3], pet.affine[:3, 3])  # different origins
        assert pet.metadata["units"] == "SUVbw" and study.labels.same_grid(ct)
        on_grid = study.pet_on_grid().array
        body_ct, body_pet = ct.array > -300, on_grid > 0.15
        dice = 2 * (body_ct & body_pet).sum() / (body_ct.sum() + body_pet.sum())
        assert dice > 0.85  # the body in the PET lies on the body in the CT
        for lesion in record["lesions"]:
            point = lesion["suvmax_ras_mm"]
            assert study.labels.array[ct.world_to_index(point)] == lesion["label"]
            i, j, k = np.floor(pet.world_to_voxel(point)).astype(int)
            neighbours = pet.array[i:i + 2, j:j + 2, k:k + 2]  # linear interpolation stays within these
            assert neighbours.max() >= lesion["suvmax"] - 1e-3


def test_json_lesions_agree_with_the_written_labels_and_pet(written):
    for record in read_lesion_files(written):
        study = napari_hnc.load_study(written / record["files"]["ct"])
        lesions = _with_voxel_centres(record, study.ct)
        masks = lesion_masks(study.labels.array, lesions)
        pet = study.pet_on_grid().array
        assert sum(lesion["label"] == PRIMARY for lesion in lesions) == 1
        for lesion, mask in zip(lesions, masks):
            volume = mask.sum() * study.ct.voxel_volume_ml
            assert volume == pytest.approx(lesion["volume_ml"], rel=0.05)
            assert float(pet[mask].max()) == pytest.approx(lesion["suvmax"], abs=1e-3)
            assert lesion["suvmax"] >= 2.5
        total = {v: (study.labels.array == v).sum() * study.ct.voxel_volume_ml for v in (PRIMARY, NODE)}
        for v in (PRIMARY, NODE):
            assert total[v] == pytest.approx(sum(l["volume_ml"] for l in lesions if l["label"] == v), abs=1e-3)


# --------------------------------------------------------------------------- the cohort's truth


def test_every_lesion_has_suvmax_of_at_least_2_5_measured_in_the_pet(cohort20):
    for case in cohort20:
        record = case.to_json()
        lesions = _with_voxel_centres(record, case.study.ct)
        pet = case.study.pet_on_grid().array
        for lesion, mask in zip(lesions, lesion_masks(case.study.labels.array, lesions)):
            assert float(pet[mask].max()) == pytest.approx(lesion["suvmax"], abs=1e-3)
            assert lesion["suvmax"] >= 2.5
        kinds = [lesion.kind for lesion in case.lesions]
        assert kinds.count("primary") == 1 and kinds.count("node") <= 5
        primary = case.lesions[0]
        assert 2.0 <= primary.shape_volume_ml <= 60.0 and 4.9 <= primary.suvmax <= 25.5


def test_a_naive_suv_threshold_finds_brain_and_tonsils_besides_the_lesions(cohort20):
    brain = tonsils = 0
    for case in cohort20:
        study = case.study
        hot = study.pet_on_grid().array > 2.5
        false_pos = hot & ~ndimage.binary_dilation(study.labels.array > 0, iterations=2)
        comp, count = ndimage.label(false_pos)
        sizes = ndimage.sum(false_pos, comp, range(1, count + 1)) * study.ct.voxel_volume_ml
        false_pos = np.isin(comp, 1 + np.flatnonzero(sizes >= 0.1))  # as seed 004: ROIs < 0.1 ml ignored
        skull_base = study.ct.world_to_voxel([0, 0, case.landmarks["skull_base_z"]])[2]
        brain += bool(false_pos[..., int(np.ceil(skull_base)):].any())
        for hot_spot in case.physiology:
            if hot_spot["name"].startswith("palatine tonsil"):
                i, j, k = np.rint(study.ct.world_to_voxel(hot_spot["center"])).astype(int)
                if false_pos[max(i - 5, 0):i + 6, max(j - 5, 0):j + 6, max(k - 3, 0):k + 4].any():
                    tonsils += 1
                    break
    assert brain >= 18 and tonsils >= 18, (brain, tonsils)


def test_tissue_values_are_realistic(cohort20):
    case = cohort20[3]
    ct, pet = case.study.ct.array, case.study.pet_on_grid().array
    neck = np.arange(ct.shape[2]) < case.study.ct.world_to_voxel([0, 0, case.landmarks["hard_palate_z"]])[2]
    fat = (ct > -150) & (ct < -60) & neck[None, None, :]
    soft = (ct > 20) & (ct < 80) & neck[None, None, :]
    assert fat.sum() > 20000 and soft.sum() > 50000 and (ct > 700).sum() > 5000  # fat, soft tissue, bone
    assert np.median(ct[:5, :5, :]) == pytest.approx(-1000, abs=15)  # air outside the body
    assert 0.25 <= np.median(pet[fat]) <= 0.65 and 0.55 <= np.median(pet[soft]) <= 1.1
    assert pet[..., ~neck].max() > 5.0  # brain cortex


def test_misregistration_can_be_switched_off():
    moved = [generate_case(s, "small").acquisition.offset_mm for s in range(4)]
    assert all(np.linalg.norm(o) <= 3.0 for o in moved) and any(np.linalg.norm(o) > 0 for o in moved)
    still = generate_case(next(s for s in range(4) if np.linalg.norm(moved[s]) > 0), "small", misregistration=False)
    assert still.acquisition.offset_mm == (0.0, 0.0, 0.0)


def test_bad_arguments_cancelling_and_progress(tmp_path):
    with pytest.raises(HncError, match="seeds are integers >= 0"):
        generate_case(-1)
    with pytest.raises(HncError, match="choose one of"):
        generate_case(1, "huge")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        write_cohort(tmp_path, 2, preset="small", cancel=token)
    assert not any(tmp_path.iterdir())
    calls = []
    write_cohort(tmp_path, 1, seed=50, preset="small", progress=lambda *a: calls.append(a))
    assert calls == [(0, 1, "PHANTOM-0050"), (1, 1, "done")]


# --------------------------------------------------------------------------- CLI and samples


def test_cli_writes_a_cohort_and_reports_it(tmp_path, capsys):
    assert cli.main(["phantom", "--n", "2", "--seed", "30", "--out", str(tmp_path), "--preset", "small", "--report"]) == 0
    out = capsys.readouterr().out
    assert "PHANTOM-0030..PHANTOM-0031" in out and "median 8.16" in out and "nodes per patient" in out
    for name in ("lesions.csv", "summary.csv", "report.txt", "distributions.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert len(napari_hnc.discover_studies(tmp_path)) == 2


@pytest.mark.parametrize("argv", [["--n", "-1"], ["--seed", "-3"], ["--n", "0"], ["--preset", "huge"]])
def test_cli_bad_usage_exits_2(tmp_path, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["phantom", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2


def test_cli_report_without_cases_fails_with_a_message(tmp_path, capsys):
    assert cli.main(["phantom", "--n", "0", "--report", "--out", str(tmp_path)]) == 1
    assert "generate a cohort first" in capsys.readouterr().err


def test_default_preset_sample_is_cached_and_spans_skull_base_to_clavicles(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = napari_hnc.sample_study_path("phantom")
    assert path.is_relative_to(tmp_path) and path.name.endswith("__CT.nii.gz")
    mtime = path.stat().st_mtime_ns
    assert napari_hnc.sample_study_path("phantom") == path and path.stat().st_mtime_ns == mtime
    study = napari_hnc.load_study(path)
    assert study.ct.shape == (512, 512, 80) and np.allclose(study.ct.spacing, (0.9765625, 0.9765625, 3.0))
    assert np.allclose(study.pet.spacing, (4.0, 4.0, 3.0)) and study.labels.array.max() >= PRIMARY
    record = json.loads(case_paths(path.parents[1], study.case_id)["lesions"].read_text())
    lo, hi = study.ct.world_bounds()
    marks = record["landmarks_mm"]
    assert lo[2] < marks["sternal_notch_z"] and hi[2] > marks["skull_base_z"] + 30  # clavicles .. brain


def test_sample_path_of_a_small_case(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = sample_path(9, "small")
    assert napari_hnc.load_study(path).case_id == "PHANTOM-0009"


def _digest(case) -> str:
    import hashlib

    h = hashlib.sha256()
    for array in (case.study.ct.array, case.study.pet.array, case.study.labels.array):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def test_without_hard_cases_a_seed_gives_the_images_of_generator_version_1():
    # digests of generator version 1 (commit 59700a4), on which the bundled models were trained
    assert _digest(generate_case(3, "small")) == "5bd804f56c4ded34"
    assert _digest(generate_case(11, "small", hard_cases=0.0)) == "e400f32be0940870"


def _touching_pairs(instances):
    from scipy import ndimage

    pairs = set()
    for i in range(1, int(instances.max()) + 1):
        grown = ndimage.binary_dilation(instances == i, np.ones((3, 3, 3), bool))
        pairs |= {(i, int(j)) for j in np.unique(instances[grown]) if j > i}
    return pairs


def test_hard_cases_have_touching_lesions_kept_apart_by_their_instances():
    kinds = set()
    for seed in range(8):
        case = generate_case(seed, "small", hard_cases="touching")
        instances = case.study.labels.metadata["instances"]
        assert instances.dtype == np.uint16 and int(instances.max()) == len(case.lesions)
        assert np.array_equal(instances > 0, case.study.labels.array > 0)
        for number, lesion in enumerate(case.lesions, start=1):  # instance k is lesion k of the record
            assert case.study.labels.array[instances == number].max() == lesion.label
        assert _touching_pairs(instances), f"seed {seed}: no lesions touch"
        kinds.add(case.hard_case)
    assert kinds == {"node chain", "node on the primary"}


def test_a_necrotic_nodal_mass_is_large_with_a_cold_core():
    case = generate_case(2, "small", hard_cases="necrotic nodal mass")
    mass = max((l for l in case.lesions if l.label == 2), key=lambda l: l.volume_ml)
    assert case.hard_case == "necrotic nodal mass" and 30.0 <= mass.volume_ml <= 120.0 and mass.necrotic
    pet = case.study.pet_on_grid().array
    index = case.study.ct.world_to_index(mass.center)
    assert pet[index] < 0.5 * mass.suvmax  # its centre is cold


def test_a_default_cohort_has_hard_cases_and_version_1_cohorts_none(tmp_path):
    import json

    drawn = [generate_case(seed, "small", hard_cases=0.3).hard_case for seed in range(20)]
    assert 2 <= sum(kind != "none" for kind in drawn) <= 12
    write_cohort(tmp_path, 1, seed=2, preset="small", hard_cases="node chain")
    record = json.loads((tmp_path / "lesions" / "PHANTOM-0002.json").read_text())
    assert record["hard_case"] == "node chain" and record["generator_version"] == 2
    assert (tmp_path / "labelsTr" / "PHANTOM-0002_instances.nii.gz").is_file()
    assert [l["instance"] for l in record["lesions"]] == list(range(1, len(record["lesions"]) + 1))


def test_the_target_scanner_blurs_and_noises_more_and_the_default_is_unchanged():
    from napari_hnc.phantom.case import SCANNERS, generate_case

    default, again = generate_case(7, "small"), generate_case(7, "small", scanner="default")
    target = generate_case(7, "small", scanner="target")
    assert default.acquisition == again.acquisition and 5.0 <= default.acquisition.psf_fwhm_mm <= 7.0
    assert 8.0 <= target.acquisition.psf_fwhm_mm <= 9.0
    assert SCANNERS["target"].pet_noise_cv[0] <= target.acquisition.pet_noise_cv <= SCANNERS["target"].pet_noise_cv[1]
    assert target.acquisition.ct_noise_hu >= 20.0 > default.acquisition.ct_noise_hu
    assert (target.study.labels.array == default.study.labels.array).all()  # same anatomy and lesions


def test_the_pet41_delineation_labels_the_metabolic_volume_of_the_same_images():
    from napari_hnc.geometry import resample_to
    from napari_hnc.phantom.case import generate_case

    extent = generate_case(3, "small", scanner="target", hard_cases="necrotic nodal mass")
    pet41 = generate_case(3, "small", scanner="target", hard_cases="necrotic nodal mass", delineation="pet41")
    assert (pet41.study.ct.array == extent.study.ct.array).all() and (pet41.study.pet.array == extent.study.pet.array).all()
    full, kept = extent.study.labels.array > 0, pet41.study.labels.array > 0
    assert (kept <= full).all() and kept.sum() < 0.95 * full.sum()  # a subset, and smaller
    instances = pet41.study.labels.metadata["instances"]
    assert ((instances > 0) == kept).all()
    suv = np.asarray(resample_to(pet41.study.pet, pet41.study.ct, "linear", fill=0.0).array)
    for number, (lesion, whole) in enumerate(zip(pet41.lesions, extent.lesions), start=1):
        voxels = instances == number
        assert lesion.suvmax == whole.suvmax and 0 < lesion.volume_ml <= whole.volume_ml
        assert suv[voxels].min() >= 0.41 * lesion.suvmax - 1e-3  # every kept voxel is at >= 41 % of its SUVmax
        assert ndimage.label(voxels, np.ones((3, 3, 3)))[1] == 1  # one piece, around its SUVmax voxel
    mass = next(number for number, l in enumerate(extent.lesions, start=1) if l.necrotic)
    core = (extent.study.labels.metadata["instances"] == mass) & (instances != mass)
    assert core.sum() > 0 and suv[core].mean() < 0.41 * extent.lesions[mass - 1].suvmax  # the cold core is left out
    assert pet41.to_json()["delineation"] == "pet41" and extent.to_json()["delineation"] == "extent"
    with pytest.raises(HncError, match="delineation"):
        generate_case(3, "small", delineation="41%")


def test_the_phantom_command_writes_the_delineation_it_was_asked_for(tmp_path):
    assert cli.main(["phantom", "--n", "1", "--seed", "5", "--preset", "small", "--delineation", "pet41",
                     "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "lesions" / "PHANTOM-0005.json").read_text())["delineation"] == "pet41"
