import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from napari_hnc.errors import GeometryError
from napari_hnc.geometry import Volume
from napari_hnc.training.metrics import (
    StructureCounts, case_metrics, cohort_dice, dice, hd95, structure_wise, surface_distances,
)
from synthetic import affine


@pytest.fixture
def small_case():
    """Hand-countable: reference primary 8 voxels + node 4; prediction overlaps 6 of the primary, 2 of the node."""
    ref = np.zeros((6, 6, 6), np.uint8)
    ref[0:2, 0:2, 0:2] = 1  # 8 voxels
    ref[4, 4, 2:6] = 2  # 4 voxels
    pred = np.zeros_like(ref)
    pred[0:2, 0:2, 0:2] = 1
    pred[1, 1, 0:2] = 0  # 6 of the primary's 8
    pred[0, 5, 5] = 1  # a stray primary voxel: a false positive lesion
    pred[4, 4, 2:4] = 2  # 2 of the node's 4
    return pred, ref


def test_dice_per_class_and_union_by_hand(small_case):
    pred, ref = small_case
    assert dice(pred, ref, 1) == pytest.approx(2 * 6 / (7 + 8))
    assert dice(pred, ref, 2) == pytest.approx(2 * 2 / (2 + 4))
    assert dice(pred, ref) == pytest.approx(2 * 8 / (9 + 12))
    assert math.isnan(dice(pred, ref, 3)) and dice(pred, ref, 3, empty=1.0) == 1.0


def test_cohort_dice_pools_voxels(small_case):
    pred, ref = small_case
    empty = np.zeros_like(ref)
    assert cohort_dice([pred, empty], [ref, ref], 1) == pytest.approx(2 * 6 / (7 + 8 + 8))
    assert cohort_dice([pred, pred], [ref, ref]) == pytest.approx(dice(pred, ref))
    with pytest.raises(ValueError):
        cohort_dice([pred], [ref, ref])


def test_structure_wise_counts_by_hand(small_case):
    pred, ref = small_case
    primary = structure_wise(pred, ref, 1)
    # reference primary 6/8 covered: found; predicted primary lesions: the block (6/6 in ref) and the stray voxel
    assert (primary.tp_ref, primary.fn, primary.tp_pred, primary.fp) == (1, 0, 1, 1)
    node = structure_wise(pred, ref, 2)  # 2/4 = 50 % covered: "at least 50 %" -> found
    assert (node.tp_ref, node.fn, node.tp_pred, node.fp) == (1, 0, 1, 0)
    union = structure_wise(pred, ref)
    assert (union.tp_ref, union.fn, union.tp_pred, union.fp) == (2, 0, 2, 1)
    assert union.tpr == 1.0 and union.ppv == pytest.approx(2 / 3)
    pooled = sum([primary, node])
    assert pooled == StructureCounts(2, 0, 2, 1)


def test_the_50_percent_rule_is_inclusive_for_reference_and_strict_for_prediction():
    ref = np.zeros((1, 1, 10), np.uint8)
    ref[..., 0:4] = 1
    pred = np.zeros_like(ref)
    pred[..., 2:6] = 1  # each covers exactly half of the other
    counts = structure_wise(pred, ref)
    assert (counts.tp_ref, counts.fn, counts.tp_pred, counts.fp) == (1, 0, 0, 1)


def test_structure_wise_drops_small_regions_when_asked(small_case):
    pred, ref = small_case
    counts = structure_wise(pred, ref, 1, spacing=(2.0, 2.0, 2.0), min_volume_ml=0.01)  # the 8 ul stray voxel goes
    assert counts.fp == 0 and counts.tp_pred == 1
    with pytest.raises(GeometryError, match="spacing"):
        structure_wise(pred, ref, min_volume_ml=0.1)


def test_hd95_of_shifted_spheres_on_an_anisotropic_grid():
    spacing, radius, shift = (1.0, 1.0, 1.5), 15.0, 4.5
    centre = np.array([25.0, 25.0, 18.0])
    a = sphere((50, 50, 36), centre, radius, spacing)
    b = sphere((50, 50, 36), centre + [0, 0, shift / spacing[2]], radius, spacing)
    # analytic: a surface point at cos(angle) = u lies |sqrt(R^2 + d^2 - 2 R d u) - R| from the other sphere
    u = np.linspace(-1.0, 1.0, 2_000_001)
    analytic = np.percentile(np.abs(np.sqrt(radius**2 + shift**2 - 2 * radius * shift * u) - radius), 95)
    assert abs(hd95(a, b, spacing) - analytic) <= 0.5 * max(spacing)
    c = sphere((50, 50, 36), centre + [shift, 0, 0], radius, spacing)
    assert abs(hd95(a, c, spacing) - analytic) <= 0.5 * max(spacing)


def sphere(shape, centre, radius, spacing):
    grid = np.indices(shape, dtype=float)
    return sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing)) <= radius**2


def test_hd95_edge_cases():
    a = np.zeros((5, 5, 5), bool)
    assert math.isnan(hd95(a, a, (1, 1, 1)))
    a[2, 2, 2] = True
    assert hd95(a, np.zeros_like(a), (1, 1, 1)) == math.inf
    assert hd95(a, a, (1, 1, 1)) == 0.0
    to_b, to_a = surface_distances(a, np.roll(a, 1, axis=2), (1.0, 1.0, 4.0))
    assert to_b.tolist() == [4.0] and to_a.tolist() == [4.0]
    with pytest.raises(GeometryError, match="spacing"):
        hd95(a, a)


@pytest.mark.parametrize("seed", range(4))
def test_agreement_with_medpy_on_random_masks(seed):
    from medpy.metric.binary import dc, hd95 as medpy_hd95

    rng = np.random.default_rng(seed)
    spacing = (0.98, 1.37, 3.27)
    a, b = (ndimage.gaussian_filter(rng.random((40, 36, 18)), 1.5) > 0.52 for _ in range(2))
    assert dice(a, b) == pytest.approx(dc(a, b), abs=1e-12)
    assert hd95(a, b, spacing) == pytest.approx(medpy_hd95(a, b, voxelspacing=spacing), abs=1e-9)


def test_volumes_give_their_spacing_and_must_share_a_grid(small_case):
    pred, ref = small_case
    aff = affine((2.0, 2.0, 3.0))
    table = case_metrics(Volume(pred, aff), Volume(ref, aff))
    assert table["target"].tolist() == ["primary", "node", "union"]
    assert table.loc[2, "ref_ml"] == pytest.approx(12 * 0.012)
    assert table.loc[0, "dice"] == pytest.approx(dice(pred, ref, 1))
    assert table.loc[1, "hd95_mm"] == hd95(pred, ref, (2.0, 2.0, 3.0), 2)
    with pytest.raises(GeometryError, match="different grids"):
        dice(Volume(pred, aff), Volume(ref, affine((1.0, 1.0, 1.0))))
    with pytest.raises(GeometryError, match="both as Volumes"):
        dice(Volume(pred, aff), ref)


def test_metrics_and_pet_core_do_not_import_torch():
    code = ("import sys, napari_hnc.training.metrics, napari_hnc.pet.delineation, napari_hnc.pet.measure; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'napari', 'qtpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
