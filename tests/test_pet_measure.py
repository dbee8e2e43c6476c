import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import erf

from napari_hnc import quantify, study_totals, write_quantification
from napari_hnc.errors import GeometryError, HncError, HncWarning, StudyError
from napari_hnc.geometry import Volume
from napari_hnc.pet.measure import COLUMNS, PEAK_RADIUS_MM, suv_peak
from napari_hnc.pet.report import write_csv
from napari_hnc.study import Study
from pet_helpers import pet_only, two_grids
from synthetic import affine, ball


def test_sphere_volume_within_2_percent_of_analytic_on_a_1mm_grid():
    pet = np.full((40, 40, 40), 5.0, np.float32)
    labels = ball(pet.shape, (19.6, 20.3, 20.1), 12.0).astype(np.uint8)  # off-centre: no lucky symmetry
    table = quantify(pet_only(pet, spacing=(1.0, 1.0, 1.0)), labels)
    assert len(table) == 1 and table.loc[0, "n_voxels"] == labels.sum()
    assert table.loc[0, "volume_ml"] == pytest.approx(4 / 3 * math.pi * 12.0**3 / 1000, rel=0.02)


def test_suvmax_suvmean_tlg_and_centroid_are_exact(rng):
    pet = rng.uniform(0.5, 3.0, (30, 30, 30)).astype(np.float32)
    labels = np.zeros(pet.shape, np.uint8)
    labels[5:12, 6:10, 8:20] = 1
    labels[20:24, 20:25, 3:6] = 2
    study = pet_only(pet, spacing=(2.0, 2.5, 3.0), origin=(-10.0, 4.0, 7.0), axcodes="LPS")
    table = quantify(study, labels)
    assert list(table.columns) == COLUMNS and table["lesion"].tolist() == [1, 2]
    for row, value in zip(table.itertuples(), (1, 2)):
        values = pet[labels == value].astype(np.float64)
        assert table.loc[value - 1, "class"] == value and row.suv_max == values.max()
        assert row.suv_mean == pytest.approx(values.mean(), rel=1e-12)
        assert row.volume_ml == pytest.approx(values.size * 2.0 * 2.5 * 3.0 / 1000, rel=1e-12)
        assert row.tlg == pytest.approx(row.suv_mean * row.volume_ml, rel=1e-12)
        centroid = study.pet.voxel_to_world(np.argwhere(labels == value).mean(axis=0))
        assert np.allclose([row.centroid_x_mm, row.centroid_y_mm, row.centroid_z_mm], centroid)
    assert table["class_name"].tolist() == ["primary tumour", "lymph node"]


def gaussian_ball_mean(amplitude: float, sigma: float, radius: float) -> float:
    """Mean of A exp(-r^2 / 2 sigma^2) over the ball of ``radius`` centred on its peak (analytic)."""
    t = radius / sigma
    integral = amplitude * (2 * math.pi * sigma**2) ** 1.5 * (erf(t / math.sqrt(2)) - math.sqrt(2 / math.pi) * t * math.exp(-t * t / 2))
    return integral / (4 / 3 * math.pi * radius**3)


def test_suvpeak_is_the_best_1ml_sphere_mean_within_1_percent():
    shape, peak = (50, 50, 50), np.array([22.0, 26.0, 25.0])
    grid = np.indices(shape, dtype=np.float64)
    pet = 10.0 * np.exp(-sum((g - c) ** 2 for g, c in zip(grid, peak)) / (2 * 8.0**2))
    expected = gaussian_ball_mean(10.0, 8.0, PEAK_RADIUS_MM)
    study = pet_only(pet, spacing=(1.0, 1.0, 1.0))
    # the peak near the lesion's edge: the sphere centre still goes there, the sphere leaves the lesion
    lesion = ball(shape, peak + [9.0, 0.0, 0.0], 10.0).astype(np.uint8)
    value = quantify(study, lesion).loc[0, "suv_peak"]
    assert value == pytest.approx(expected, rel=0.01)
    assert 4 / 3 * math.pi * PEAK_RADIUS_MM**3 == pytest.approx(1000.0)
    # a lesion that does not hold the peak: its best sphere sits on its hottest side, lower
    far = ball(shape, peak + [16.0, 0.0, 0.0], 5.0).astype(np.uint8)
    assert quantify(study, far).loc[0, "suv_peak"] < 0.5 * expected


def test_suvpeak_ignores_voxels_without_pet():
    pet = np.full((15, 15, 15), 4.0)
    pet[:, :, 10:] = np.nan
    mask = np.zeros(pet.shape, bool)
    mask[7, 7, 8] = True
    assert suv_peak(pet, mask, (1.0, 1.0, 1.0)) == 4.0


def test_labels_on_the_ct_read_the_pet_through_world_coordinates():
    study, centre = two_grids(background=1.0, hot=8.0)
    index = study.grid.world_to_index(centre)
    labels = np.zeros(study.grid.shape, np.uint8)
    labels[tuple(slice(i - 3, i + 4) for i in index)] = 1  # well inside the 10 mm hot ball
    row = quantify(study, labels).iloc[0]
    assert row.suv_max == pytest.approx(8.0) and row.suv_mean == pytest.approx(8.0)
    # the same lesion given on the PET grid measures the same hot ball
    pet_labels = Volume((study.pet.array == 8.0).astype(np.uint8), study.pet.affine)
    on_pet = quantify(study, pet_labels).iloc[0]
    assert on_pet.suv_mean == 8.0 and on_pet.volume_ml == pytest.approx(4 / 3 * math.pi, rel=0.1)


def test_totals_and_empty_labels():
    pet = np.full((20, 20, 20), 3.0, np.float32)
    labels = np.zeros(pet.shape, np.uint8)
    labels[0:5, 0:5, 0:5] = 1
    labels[10:12, 10:12, 10:12] = 2
    labels[15:17, 15:17, 15:17] = 2
    totals = study_totals(quantify(pet_only(pet, spacing=(1.0, 1.0, 1.0)), labels))
    assert totals["n_primary"] == 1 and totals["n_nodes"] == 2
    assert totals["mtv_primary_ml"] == pytest.approx(0.125) and totals["mtv_nodes_ml"] == pytest.approx(0.016)
    assert totals["total_tumour_burden_ml"] == pytest.approx(0.141)
    assert totals["tlg_total"] == pytest.approx(3.0 * 0.141)
    empty = quantify(pet_only(pet), np.zeros(pet.shape, np.uint8))
    assert list(empty.columns) == COLUMNS and len(empty) == 0
    assert study_totals(empty)["total_tumour_burden_ml"] == 0.0 and math.isnan(study_totals(empty)["suv_max"])


def test_bad_input_gives_clear_errors():
    study, _ = two_grids()
    with pytest.raises(StudyError, match="no labels to quantify"):
        quantify(study)
    far = Volume(np.ones((5, 5, 5), np.uint8), affine((1.0, 1.0, 1.0), (900.0, 0.0, 0.0)))
    with pytest.raises(GeometryError, match="do not overlap"):
        quantify(study, far)
    with pytest.raises(GeometryError, match="do not fit the study's label grid"):
        quantify(study, np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(StudyError, match="has no PET"):
        quantify(Study(study.ct, None), np.zeros(study.grid.shape, np.uint8))


def test_a_lesion_partly_outside_the_pet_warns():
    ct = Volume(np.zeros((40, 10, 10), np.int16), affine((1.0, 1.0, 1.0)))
    pet = Volume(np.full((10, 5, 5), 5.0, np.float32), affine((2.0, 2.0, 2.0)))  # x 0..18 mm
    labels = np.zeros(ct.shape, np.uint8)
    labels[10:30, 3:6, 3:6] = 1
    with pytest.warns(HncWarning, match="outside the PET's field of view"):
        row = quantify(Study(ct, pet), labels).iloc[0]
    assert row.suv_mean == 5.0 and row.n_voxels == 180


def test_csv_and_json_round_trip(tmp_path):
    pet = np.full((20, 20, 20), 2.0, np.float32)
    labels = np.zeros(pet.shape, np.uint8)
    labels[2:6, 2:6, 2:6] = 1
    table = quantify(pet_only(pet), labels)
    back = pd.read_csv(write_csv(table, tmp_path / "t.csv"))
    assert list(back.columns) == COLUMNS and back.loc[0, "volume_ml"] == pytest.approx(table.loc[0, "volume_ml"])
    doc = json.loads(write_quantification(table, tmp_path / "t.json", case_id="X").read_text())
    assert doc["case_id"] == "X" and doc["totals"]["mtv_primary_ml"] == pytest.approx(0.512)
    assert doc["lesions"][0]["class_name"] == "primary tumour"
    with pytest.raises(HncError, match=".csv or .json"):
        write_quantification(table, tmp_path / "t.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]  # no temporary files left


def test_label_values_that_are_not_classes_are_refused_not_half_counted(tmp_path):
    # Before: a class-7 lesion counted in the total tumour burden but in neither the primary nor the nodes.
    from napari_hnc.errors import StudyError
    from napari_hnc.study import Study

    pet = np.ones((20, 20, 20), np.float32)
    study = Study(ct=None, pet=Volume(pet, np.diag([2.0, 2.0, 2.0, 1.0])), case_id="C")
    labels = np.zeros(pet.shape, np.uint8)
    labels[2:5, 2:5, 2:5] = 1
    labels[10:13, 10:13, 10:13] = 7
    labels[15:17, 15:17, 15:17] = 3
    with pytest.raises(StudyError, match=r"label values \[3, 7\].*not classes.*labels\[labels == 3\] = 2"):
        quantify(study, labels)
    labels[labels > 2] = 2  # relabelled as the message says
    totals = study_totals(quantify(study, labels))
    assert totals["total_tumour_burden_ml"] == totals["mtv_primary_ml"] + totals["mtv_nodes_ml"]
