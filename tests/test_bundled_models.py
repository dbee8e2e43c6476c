"""The bundled models: small, safetensors, honest cards (a fine-tuned one names its bundled parent), and
they find the lesions of a phantom they never saw (seed 900500 lies outside the training seeds 1000..1199 and the held-out 900000..900019)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import napari_hnc
from napari_hnc.models import find_model, load_model
from napari_hnc.models.registry import bundled_dir
from napari_hnc.phantom import generate_case
from napari_hnc.training.metrics import dice

UNSEEN_SEED = 900500


@pytest.fixture(scope="module")
def phantom():
    return generate_case(UNSEEN_SEED, "small")


@pytest.mark.parametrize("alias, name, task", [("default", "hnc-auto", "automatic"), ("click", "hnc-click", "click")])
def test_bundled_model_is_small_safetensors_with_measured_scores_and_command(alias, name, task):
    entry = find_model(alias)
    assert entry.name == name and entry.source == "bundled"
    card = json.loads((bundled_dir() / f"{name}.json").read_text())
    assert card["task"] == task
    for weights in card["weights"]:
        path = bundled_dir() / weights
        assert path.suffix == ".safetensors" and path.stat().st_size <= 10 * 1024 * 1024
        assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    command = card["training"]["command"]
    if command.startswith("napari-hnc finetune "):  # fine-tuned from another bundled model, trained from scratch
        parent = json.loads((bundled_dir() / f"{card['training']['finetuned_from']['name']}.json").read_text())
        assert parent["task"] == task and parent["training"]["command"].startswith("napari-hnc train ")
        shipped = sorted(hashlib.sha256((bundled_dir() / f).read_bytes()).hexdigest() for f in parent["weights"])
        assert sorted(card["training"]["finetuned_from"]["weights_sha256"].values()) == shipped  # that very parent
        assert card["training"]["cases_used"]
    else:
        assert command.startswith("napari-hnc train ")
    evaluation = card["scores"]["evaluation"]
    assert evaluation["command"].startswith("napari-hnc evaluate ") and evaluation["cases"] == 20
    assert "phantom" in card["training"]["data"] and "phantom" in evaluation["data"]


def test_bundled_automatic_model_finds_the_lesions_of_an_unseen_phantom(phantom):
    labels = napari_hnc.segment(phantom.study, "default", "cpu")
    truth = np.asarray(phantom.study.labels.array)
    pred = np.asarray(labels.array)
    assert labels.array.shape == truth.shape and np.allclose(labels.affine, phantom.study.labels.affine)
    assert dice(pred > 0, truth > 0) > 0.6
    if (truth == 1).any():
        assert dice(pred == 1, truth == 1) > 0.5


def test_bundled_click_model_delineates_a_lesion_from_one_click(phantom):
    from napari_hnc.training.cache import find_lesions

    study = phantom.study
    ids, lesions = find_lesions(np.asarray(study.labels.array))
    lesion = max(lesions, key=lambda item: item["voxels"])
    truth = ids == lesion["id"]
    session = napari_hnc.RefinementSession(load_model("click"), "cpu")
    session.set_study(study.with_labels(None))
    world = study.grid.voxel_to_world(np.asarray(lesion["centre"], float))
    session.add_click(world, positive=True, label_class=lesion["class"])
    got = session.target > 0
    assert dice(got, truth) > 0.6
    assert set(np.unique(session.target[got]).tolist()) == {lesion["class"]}
