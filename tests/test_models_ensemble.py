"""`napari-hnc ensemble`: one card over trained folds, used as one model; and `train --model rrse`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_hnc.cli import main
from napari_hnc.inference.automatic import predict_probabilities
from napari_hnc.models import Model, load_model, save_model
from synthetic_pet_ct import neck_study, one_torch_thread  # noqa: F401 - fixture
from training_data import tiny_train_card, write_dataset


def _member(folder: Path, name: str, seed: int, **changes) -> Path:
    card = tiny_train_card(name=name).with_changes(scores={"validation_dice_union": 0.5 + seed / 10}, **changes)
    return save_model(Model.random(card, seed=seed).networks, card, folder / name)


def test_the_ensemble_command_gives_the_mean_of_its_members(tmp_path, one_torch_thread):
    members = [_member(tmp_path, f"fold{k}", seed=k) for k in range(3)]
    assert main(["ensemble", *map(str, members), "--out", str(tmp_path / "ens")]) == 0
    ensemble = load_model(tmp_path / "ens" / "ens.json")
    assert len(ensemble.networks) == 3 and ensemble.card.architecture == "SENormResUNet"
    study = neck_study()
    probs = [predict_probabilities(study, m, device="cpu", region="whole").probabilities for m in [ensemble, *members]]
    assert np.allclose(probs[0], np.mean(probs[1:], axis=0), atol=1e-5)
    assert not np.allclose(probs[1], probs[2], atol=1e-3)  # the members really differ
    card = json.loads((tmp_path / "ens" / "ens.json").read_text())
    assert [m["name"] for m in card["training"]["ensemble_of"]] == ["fold0", "fold1", "fold2"]
    assert card["scores"]["members_mean_validation_dice_union"] == pytest.approx(0.6)
    assert card["training"]["command"].startswith("napari-hnc ensemble ")


def test_the_ensemble_refuses_members_that_differ_in_more_than_weights(tmp_path, capsys):
    a = _member(tmp_path, "a", 0)
    b = _member(tmp_path, "b", 1, spacing_mm=(3.0, 3.0, 3.0))
    with pytest.raises(SystemExit) as exit_info:
        main(["ensemble", str(a), str(b), "--out", str(tmp_path / "ens")])
    assert exit_info.value.code == 2 and "spacing_mm" in capsys.readouterr().err
    assert not (tmp_path / "ens").exists()


def test_train_model_rrse_trains_the_residual_recurrent_se_unet(tmp_path, one_torch_thread):
    data = write_dataset(tmp_path / "data", n=2)
    code = main(["train", str(data), "--layout", "hecktor2022", "--model", "rrse", "--out", str(tmp_path / "run"),
                 "--folds", "2", "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "16", "--batch-size", "1",
                 "--base-channels", "4", "--depth", "2", "--spacing", "4", "--val-max-cases", "1", "--device", "cpu",
                 "--threads", "1", "--cache", str(tmp_path / "cache"), "--name", "rrse"])
    assert code == 0
    model = load_model(tmp_path / "run" / "rrse.json")
    assert model.card.architecture == "RRSEUNet" and type(model.networks[0]).__name__ == "RRSEUNet"
    assert "--model rrse" in model.card.training["command"]
