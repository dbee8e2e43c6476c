"""The head-and-neck region finder: phantoms with known anatomy, a whole-body phantom, real PETs, bad boxes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_hnc.headneck import (HN_FIELD_MAX_MM, RegionError, box_region, field_box, find_head_neck, parse_region,
                                 resolve_region)
from napari_hnc.io.dicom import SUVParameters, read_dicom_image
from napari_hnc.phantom import generate_case
from napari_hnc.study import Study, load_study

ORGANS = ("heart (myocardium)", "liver", "spleen", "kidney left", "kidney right", "bladder")


@pytest.fixture(scope="module")
def wholebody():
    return generate_case(3, "wholebody-small")


def _inside(region, point) -> bool:
    return all(lo - 1e-6 <= v <= hi + 1e-6 for lo, v, hi in zip(region.lo, point, region.hi))


@pytest.mark.parametrize("seed", [0, 7, 15])
def test_head_and_neck_phantoms_keep_their_whole_field_and_the_landmarks_are_found(seed):
    case = generate_case(seed, "small")
    region = find_head_neck(case.study)
    lo, hi = field_box(case.study)
    assert region.whole and region.confidence == "field"
    assert np.allclose(region.lo, lo) and np.allclose(region.hi, hi)
    found, truth = region.landmarks, case.landmarks
    # the shoulders widen the body just above the sternal notch (humeral heads, clavicles)
    assert truth["sternal_notch_z"] - 10 <= found["shoulders_z"] <= truth["sternal_notch_z"] + 40
    assert abs(found["brain_bottom_z"] - truth["skull_base_z"]) <= 30  # the brain sits on the skull base
    for lesion in case.lesions:  # every lesion lies between the top of the body and 6 cm below the shoulders
        assert found["shoulders_z"] - 60 <= lesion.center[2] <= found["body_top_z"]


def test_whole_body_phantom_is_cut_to_the_head_and_neck(wholebody):
    region = find_head_neck(wholebody.study)
    lo, hi = field_box(wholebody.study)
    assert not region.whole and region.confidence == "high"
    notch = wholebody.landmarks["sternal_notch_z"]
    assert notch - 120 <= region.lo[2] <= notch - 20  # below the clavicles, above the heart
    skull_base = wholebody.landmarks["skull_base_z"]
    assert skull_base + 30 <= region.hi[2] <= skull_base + 90  # the head-and-neck fields end there
    assert region.height_mm < 0.4 * (hi[2] - lo[2])
    midline = wholebody.landmarks["midline_x"]
    assert abs(region.landmarks["midline_x"] - midline) <= 8  # found from the neck's outline
    assert region.hi[0] - region.lo[0] == pytest.approx(300, abs=16) and region.lo[0] < midline < region.hi[0]
    assert all(_inside(region, lesion.center) for lesion in wholebody.lesions)
    organs = {h["name"]: h["center"] for h in wholebody.physiology if h["name"] in ORGANS}
    assert set(organs) == set(ORGANS)
    assert all(not _inside(region, centre) for centre in organs.values())
    neck = [h["center"] for h in wholebody.physiology if h["name"].startswith(("palatine tonsil", "adenoid", "parotid"))]
    assert len(neck) == 5 and all(_inside(region, centre) for centre in neck)


def _crop_z(study: Study, start: int, stop: int) -> Study:
    """The study cut to CT slices start..stop (z of the LPS CT is its third axis), with the PET over them."""
    ct = study.ct.crop((slice(None), slice(None), slice(start, stop)))
    z = ct.world_bounds()
    k = np.sort(study.pet.world_to_voxel(np.array([z[0], z[1]]))[:, 2])
    pet = study.pet.crop((slice(None), slice(None), slice(max(int(k[0]), 0), int(np.ceil(k[1])) + 1)))
    return Study(ct, pet, None, "CROP")


def test_without_a_head_in_the_field_the_finder_is_unsure_and_keeps_the_whole_field(wholebody):
    legs_and_pelvis = _crop_z(wholebody.study, 0, 150)  # 600 mm from mid-thigh up to the kidneys
    assert field_box(legs_and_pelvis)[1][2] - field_box(legs_and_pelvis)[0][2] > HN_FIELD_MAX_MM
    region = find_head_neck(legs_and_pelvis)
    assert region.whole and region.confidence == "unsure"
    assert "not found" in region.reason and "whole field" in region.reason
    thigh_crop = _crop_z(wholebody.study, 0, 60)  # short: whole field, whatever is found
    assert find_head_neck(thigh_crop).whole


def test_head_and_neck_part_of_a_whole_body_study_keeps_its_whole_field(wholebody):
    top = wholebody.study.ct.shape[2]
    neck_only = _crop_z(wholebody.study, top - 100, top)  # 400 mm from the top of the head
    region = find_head_neck(neck_only)
    assert region.whole and region.confidence == "field"


def test_a_hot_tumour_bigger_than_the_part_of_the_brain_in_the_field_is_not_taken_for_the_brain(wholebody):
    study = wholebody.study
    top = study.ct.shape[2]
    brain_bottom = find_head_neck(study).landmarks["brain_bottom_z"]
    k = int(np.ceil(study.ct.world_to_voxel([[0.0, 0.0, brain_bottom + 24.0]])[0, 2]))
    cut = _crop_z(study, 0, min(k, top))  # the field ends 24 mm above the bottom of the brain
    pet = cut.pet.array.copy()
    centre = next(lesion.center for lesion in wholebody.lesions if lesion.kind == "primary")
    ijk = np.indices(pet.shape).reshape(3, -1).T
    near = np.linalg.norm(cut.pet.voxel_to_world(ijk) - centre, axis=1) <= 35.0  # a 180 ml hot tumour
    pet.reshape(-1)[near] = 25.0
    hot = Study(cut.ct, cut.pet.with_array(pet), None, "HOT-NECK")
    region = find_head_neck(hot)
    assert not region.whole and region.hi[2] == pytest.approx(field_box(hot)[1][2])  # the top is kept
    assert region.landmarks["brain_bottom_z"] == pytest.approx(brain_bottom, abs=8)
    assert region.lo[2] < centre[2] - 35.0  # the whole tumour is inside


def test_real_whole_body_pet_is_cut_below_the_shoulders_far_above_the_heart(sts_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study(sts_root / "raw" / "STS_001" / "FDG_PET")  # PET only, field cut at the face
    region = find_head_neck(study)
    lo, hi = field_box(study)
    assert not region.whole and region.confidence == "high", region.describe()
    assert region.hi[2] == pytest.approx(hi[2])  # the field starts in the head
    pet = np.asarray(study.pet.reoriented("RAS").array)
    heart_z = study.pet.reoriented("RAS").voxel_to_world([0, 0, int(np.argmax(pet[:, :, 140:220].max(axis=(0, 1)))) + 140])[2]
    assert region.lo[2] > heart_z + 50  # the hot heart (and everything below it) is left out
    assert 80 <= region.height_mm <= 260
    sarcoma = np.argwhere(study.labels.array == 1).mean(axis=0)
    assert study.labels.voxel_to_world(sarcoma)[2] < region.lo[2] - 400  # the thigh tumour is far below


@pytest.mark.parametrize("name, suv", [
    ("HN-HGJ-016_PET", None),  # its acquisition and GE scan times give the SUV (docs/dicom.md)
    ("HN-HMR-029_PET", SUVParameters(weight_kg=75, injection_time="11:10", scan_time="12:10")),
])
def test_real_head_and_neck_pets_keep_their_whole_field_and_show_the_brain(name, suv, dicom_hn_root):
    with warnings.catch_warnings():  # HMR-029's times are given by hand; the finder uses ratios only
        warnings.simplefilter("ignore")
        pet = read_dicom_image(dicom_hn_root / name, "pet", suv=suv)
    study = Study(None, pet, None, name)
    region = find_head_neck(study)
    lo, hi = field_box(study)
    assert region.whole and region.confidence == "field"
    found = region.landmarks
    assert 800 <= found["brain_ml"] <= 1800  # an adult brain
    assert lo[2] < found["shoulders_z"] < found["brain_bottom_z"] - 60
    assert found["brain_top_z"] <= found["body_top_z"] <= hi[2]


@pytest.mark.parametrize("text", ["", "neck", "1,2,3", "1,2,3,4,5,x", "1,2,3,4,5,6,7", "nan,0,0,1,1,1"])
def test_bad_region_text_says_what_to_give(text):
    with pytest.raises(RegionError, match="six numbers, world RAS mm"):
        parse_region(text)


def test_boxes_are_clipped_to_the_field_and_a_box_outside_it_is_refused():
    study = generate_case(7, "small").study
    lo, hi = field_box(study)
    inside = box_region(study, (*(lo - 50), *(lo + 40)))
    assert np.allclose(inside.lo, lo) and np.allclose(inside.hi, lo + 40) and inside.confidence == "given"
    assert resolve_region(study, f"{lo[0]},{lo[1]},{lo[2]},{hi[0]},{hi[1]},{lo[2] + 30}").height_mm == pytest.approx(30)
    with pytest.raises(RegionError, match="does not overlap study PHANTOM-0007.*--region whole"):
        box_region(study, (*(hi + 10), *(hi + 100)))
    with pytest.raises(RegionError, match="flat"):
        box_region(study, (0, 0, 0, 10, 10, 0))
    assert resolve_region(study, "whole").whole and resolve_region(study, None).confidence == "field"


def test_without_a_pet_the_ct_outline_finds_the_head_and_neck_without_the_couch(wholebody):
    ct_only = Study(wholebody.study.ct, None, None, "CT-ONLY")
    region = find_head_neck(ct_only)
    notch = wholebody.landmarks["sternal_notch_z"]
    assert not region.whole and region.confidence == "medium"  # no brain uptake to see on a CT
    assert notch - 120 <= region.lo[2] <= notch - 20
    assert region.hi[2] >= wholebody.landmarks["vertex_z"] - 20  # from the top of the head
