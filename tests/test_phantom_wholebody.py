"""Whole-body phantoms: the same head and neck as the other presets, organs with uptake below it."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hnc.phantom import generate_case


@pytest.fixture(scope="module")
def pair():
    return generate_case(11, "small"), generate_case(11, "wholebody-small")


def test_the_head_and_neck_and_the_lesions_are_those_of_the_other_presets(pair):
    neck, body = pair
    assert [(l.label, l.site, l.side) for l in neck.lesions] == [(l.label, l.site, l.side) for l in body.lesions]
    for a, b in zip(neck.lesions, body.lesions):
        assert np.linalg.norm(np.subtract(a.center, b.center)) < 4.0  # the same shape on 2 or 4 mm voxels
    for key in ("skull_base_z", "sternal_notch_z", "midline_x"):
        assert body.landmarks[key] == pytest.approx(neck.landmarks[key])


def test_the_body_runs_from_above_the_head_to_the_thighs_with_organs_in_order(pair):
    _, body = pair
    ct = body.study.ct
    lo, hi = ct.world_bounds()
    marks = body.landmarks
    assert 0 < hi[2] - marks["vertex_z"] <= 16  # the top slice just above the head
    assert hi[2] - lo[2] == pytest.approx(1196.0)  # 300 slices of 4 mm
    assert marks["sternal_notch_z"] > marks["heart_z"] > marks["kidneys_z"] > marks["bladder_z"] > lo[2]
    suv = {h["name"]: h["suv"] for h in body.physiology}
    assert 2.0 <= suv["liver"] <= 2.6 and 10.0 <= suv["bladder"] <= 40.0 and 1.5 <= suv["heart (myocardium)"] <= 8
    pet = body.study.pet
    at = lambda name: float(pet.array[tuple(np.rint(pet.world_to_voxel(  # noqa: E731
        next(h["center"] for h in body.physiology if h["name"] == name))).astype(int))])
    assert at("bladder") > 0.5 * suv["bladder"] and at("liver") == pytest.approx(suv["liver"], rel=0.35)
    heart = np.asarray(next(h["center"] for h in body.physiology if h["name"] == "heart (myocardium)"))
    right_lung = np.rint(ct.world_to_voxel(heart + (106.0, -42.0, 40.0))).astype(int)  # template offsets
    assert ct.array[tuple(right_lung)] < -600  # air-filled lung beside the heart


def test_the_same_seed_gives_the_same_whole_body_images():
    a, b = generate_case(5, "wholebody-small"), generate_case(5, "wholebody-small")
    assert np.array_equal(a.study.ct.array, b.study.ct.array) and np.array_equal(a.study.pet.array, b.study.pet.array)
