"""Evaluation on tiny data: known Dice from hand-made predictions, tables and figures, and the click protocol
run through RefinementSession."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_hnc.geometry import Volume
from napari_hnc.inference.session import RefinementSession
from napari_hnc.training.evaluate_run import score_automatic, score_clicks
from napari_hnc.training.evaluation import case_table, cohort_summary
from napari_hnc.training.interactive import evaluate_clicks, run_lesion
from synthetic_pet_ct import Lesion, neck_study

PNG = b"\x89PNG\r\n\x1a\n"


def _labels(shape=(20, 20, 10)) -> np.ndarray:
    ref = np.zeros(shape, np.uint8)
    ref[2:8, 2:8, 2:6] = 1   # primary: 144 voxels
    ref[12:16, 12:16, 2:6] = 2  # node: 64 voxels
    return ref


def test_known_dice_and_volumes_from_hand_made_predictions(tmp_path):
    spacing = (2.0, 2.0, 2.5)
    affine = np.diag([*spacing, 1.0])
    ref = _labels()
    half = ref.copy()
    half[2:8, 2:8, 4:6] = 0        # half the primary missed: primary Dice 2*72/(72+144) = 2/3
    half[12:16, 12:16, 2:6] = 1    # node found but called primary
    empty = np.zeros_like(ref)     # a failed case
    pairs = [("A", Volume(ref, affine), Volume(ref, affine)), ("B", Volume(half, affine), Volume(ref, affine)),
             ("C", Volume(empty, affine), Volume(ref, affine))]
    report = score_automatic(pairs, tmp_path)
    cases = pd.read_csv(tmp_path / "cases.csv").set_index(["case_id", "target"])
    assert cases.loc[("A", "union"), "dice"] == 1.0
    assert cases.loc[("B", "primary"), "dice"] == pytest.approx(2 * 72 / (72 + 64 + 144))
    assert cases.loc[("B", "node"), "dice"] == 0.0
    assert cases.loc[("B", "union"), "dice"] == pytest.approx(2 * 136 / (136 + 208))
    assert cases.loc[("B", "union"), "ref_ml"] == pytest.approx(208 * 10 / 1000)
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("target")
    assert summary.loc["union", "failures"] == 1 and summary.loc["union", "cases"] == 3
    assert summary.loc["union", "dice_mean"] == pytest.approx((1 + 2 * 136 / 344 + 0) / 3)
    assert summary.loc["union", "class_accuracy_pooled"] == pytest.approx((208 + 72) / (208 + 136))
    assert report.scores["dice_union_mean"] == pytest.approx(summary.loc["union", "dice_mean"], abs=1e-4)
    for name in ("dice_distribution.png", "mtv_agreement.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_volume_agreement_is_perfect_for_perfect_predictions():
    tables = []
    for k in range(4):
        ref = _labels()
        ref[2:8, 2:8, 2:2 + k + 1] = 0
        tables.append(case_table(f"c{k}", ref, ref, (1.0, 1.0, 1.0)))
    summary = cohort_summary(pd.concat(tables)).set_index("target")
    assert summary.loc["primary", "mtv_r2"] == pytest.approx(1.0)
    assert summary.loc["union", "mtv_mean_abs_difference_ml"] == 0.0
    assert summary.loc["union", "tpr"] == 1.0 and summary.loc["union", "ppv"] == 1.0


@pytest.fixture(scope="module")
def study():
    return neck_study((Lesion((10.0, -5.0, 12.0), 9.0, 1, 8.0), Lesion((-30.0, 15.0, -6.0), 6.0, 2, 6.0)))


def test_the_click_protocol_runs_through_a_refinement_session(study, tmp_path):
    session = RefinementSession(None)  # the PET threshold tools, whose answer on hot balls is known
    lesions = evaluate_clicks(session, [study], clicks=3)
    assert set(lesions["lesion"]) == {1, 2} and list(lesions["clicks"].unique()) == [0, 1, 2, 3]
    first = lesions[lesions["clicks"] == 1]
    assert (lesions[lesions["clicks"] == 0]["dice"] == 0).all()
    assert (first["dice"] > 0.6).all()  # 41 % of SUVmax on a blurred-free hot ball
    assert first["positive"].all()
    report = score_clicks(lesions, tmp_path)
    assert report.scores["lesions"] == 2 and report.scores["dice_1_clicks_mean"] == pytest.approx(first["dice"].mean(), abs=1e-4)
    assert (tmp_path / "dice_by_clicks.png").read_bytes()[:8] == PNG
    assert set(pd.read_csv(tmp_path / "click_summary.csv")["clicks"]) == {0, 1, 2, 3}


def test_a_lesion_already_labelled_starts_with_its_dice(study):
    truth = study.labels.array == 1
    initial = study.grid.with_array(np.where(truth, 1, 0).astype(np.uint8))
    centre = tuple(int(v) for v in np.argwhere(truth).mean(axis=0).round())
    rows = run_lesion(RefinementSession(None), study, truth, 1, centre, initial=initial, clicks=1)
    assert rows[0]["dice"] == 1.0 and rows[0]["clicks"] == 0
