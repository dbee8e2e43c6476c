"""Segmenting in the head-and-neck region: today's output kept for H&N studies, whole-body studies cut."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from napari_hnc.cli import main
from napari_hnc.headneck import find_head_neck
from napari_hnc.inference.automatic import segment
from napari_hnc.inference.ensemble import EnsemblePredictor
from napari_hnc.inference.postprocess import probabilities_to_labels
from napari_hnc.inference.preprocess import PetStats, body_box, grid_over_box, image_channels, stack_inputs
from napari_hnc.inference.sliding_window import WindowConfig, sliding_window
from napari_hnc.phantom import generate_case
from synthetic_pet_ct import neck_study, one_torch_thread, save_tiny_model, threshold_model, write_hecktor2022  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pipeline_without_region(study, model):
    """The automatic pipeline as it was before regions existed: the body box of the whole field."""
    card = model.card
    lo, hi = body_box(study)
    grid = grid_over_box(study.grid, card.spacing_mm, lo, hi)
    image = torch.from_numpy(stack_inputs(card, image_channels(study, card, grid, PetStats.of(study.pet))))
    predictor = EnsemblePredictor(model.networks, torch.device("cpu"))
    with torch.no_grad():
        probs = sliding_window(image, predictor, WindowConfig(card.patch_size, 0.25, 1, divisor=model.divisor),
                               out_channels=card.out_channels)
    return probabilities_to_labels(probs.numpy(), grid, study.grid, min_region_ml=card.min_region_ml)


def test_a_head_and_neck_study_keeps_todays_labels_with_auto_and_whole():
    study = neck_study()
    model = threshold_model()
    auto = segment(study, model, "cpu", threads=1)
    whole = segment(study, model, "cpu", threads=1, region="whole")
    today = _pipeline_without_region(study, model)
    assert np.array_equal(whole.array, today) and np.array_equal(auto.array, today)
    assert np.count_nonzero(today) > 500
    assert auto.metadata["region"] == whole.metadata["region"] == "whole"
    assert auto.metadata["region_confidence"] == "field" and whole.metadata["region_confidence"] == "given"


@pytest.fixture(scope="module")
def wholebody():
    return generate_case(3, "wholebody-small")


def test_a_whole_body_study_is_segmented_in_its_head_and_neck_only(wholebody):
    study = wholebody.study.with_labels(None)
    model = threshold_model(patch_size=(64, 64, 64))  # SUV > 4: lesions, brain, and in the body kidneys, bladder
    region = find_head_neck(study)
    auto = segment(study, model, "cpu", threads=1)
    whole = segment(study, model, "cpu", threads=1, region="whole")
    ras = np.argwhere(auto.array > 0)
    z = auto.voxel_to_world(ras)[:, 2]
    assert z.min() >= region.lo[2] - 5 and auto.metadata["region"] == region.as_text() != "whole"
    bladder = next(h["center"] for h in wholebody.physiology if h["name"] == "bladder")
    near = np.rint(study.ct.world_to_voxel(bladder)).astype(int)
    assert whole.array[tuple(near)] == 1 and auto.array[tuple(near)] == 0  # a false positive left out
    truth = wholebody.study.labels.array > 0
    found = auto.array > 0
    assert np.sum(found & truth) / np.sum(truth) > 0.6  # the lesions are still found in the region
    box = f"{region.lo[0]},{region.lo[1]},{region.lo[2]},{region.hi[0]},{region.hi[1]},{region.hi[2]}"
    assert np.array_equal(segment(study, model, "cpu", threads=1, region=box).array, auto.array)


@pytest.fixture(scope="module")
def neck_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("region-cli")
    write_hecktor2022(neck_study(case_id="SYN-010"), root / "data")
    return root, save_tiny_model(root / "model")


def _run(root, card, out, *extra):
    return main(["segment", str(root / "data"), "--out", str(out), "--model", str(card), "--device", "cpu",
                 "--threads", "1", *extra])


def test_cli_region_whole_writes_the_same_bytes_as_the_default_on_a_head_and_neck_study(neck_files, tmp_path, capsys):
    root, card = neck_files
    assert _run(root, card, tmp_path / "auto") == 0
    printed = capsys.readouterr().out
    assert "SYN-010: region whole (the field of view is" in printed and "no taller than a head and neck (45 cm)" in printed
    assert _run(root, card, tmp_path / "whole", "--region", "whole") == 0
    first, second = (gzip.decompress((tmp_path / d / "SYN-010_pred.nii.gz").read_bytes()) for d in ("auto", "whole"))
    assert first == second
    summary = (tmp_path / "whole" / "segment_summary.csv").read_text()
    assert "region,region_reason" in summary.splitlines()[0] and ",whole,the whole field was asked for" in summary


def test_cli_bad_regions_exit_with_code_2_and_say_what_to_give(neck_files, tmp_path, capsys):
    root, card = neck_files
    with pytest.raises(SystemExit) as exit_info:
        _run(root, card, tmp_path / "bad", "--region", "neck")
    assert exit_info.value.code == 2 and "six numbers, world RAS mm" in capsys.readouterr().err
    assert _run(root, card, tmp_path / "outside", "--region", "-900,-900,500,-800,-800,600") == 2
    out = capsys.readouterr().out
    assert "bad --region: the region box" in out and "does not overlap study SYN-010" in out
