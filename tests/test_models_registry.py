"""Finding and loading models: user folders, aliases, card paths, and the errors for bad ones."""

from __future__ import annotations

import json

import pytest
import torch

from napari_hnc.errors import ModelError
from napari_hnc.models import ENV_VAR, Model, available_models, find_model, load_model, save_model
from napari_hnc.models.registry import bundled_dir
from synthetic_pet_ct import save_tiny_model, tiny_card


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(ENV_VAR, str(folder))
    return folder


@pytest.fixture
def no_bundled(tmp_path, monkeypatch):
    """Hide the bundled weights, as in an installation without them."""
    monkeypatch.setattr("napari_hnc.models.registry.bundled_dir", lambda: tmp_path / "no-bundled-models")


def test_default_model_without_weights_fails_with_how_to_get_them(user_models, no_bundled):
    with pytest.raises(ModelError) as info:
        load_model("default")
    message = str(info.value)
    assert "no model named 'default' is installed" in message
    assert "napari-hnc train" in message and ENV_VAR in message and str(user_models) in message


def test_segment_default_fails_clearly_without_weights(user_models, no_bundled):
    import napari_hnc
    from synthetic_pet_ct import neck_study

    with pytest.raises(ModelError, match="Reinstall napari-hnc to get its bundled models"):
        napari_hnc.segment(neck_study(), model="default")


def test_user_models_are_found_by_name_alias_and_path(user_models):
    card = tiny_card("mine").with_changes(aliases=("default",))
    save_model(Model.random(card).networks, card, user_models)
    names = [(e.name, e.source) for e in available_models()]
    assert ("mine", "user") in names
    assert find_model("mine").card_path == user_models / "mine.json"
    assert find_model("default").name == "mine"
    loaded = load_model(user_models / "mine.json")
    assert loaded.card == card and len(loaded.networks) == 1


def test_bundled_folder_is_scanned(user_models):
    assert bundled_dir().name == "weights" and bundled_dir().is_dir()
    assert all(e.source in ("user", "bundled") for e in available_models())


def test_ensemble_card_loads_every_fold_with_its_own_weights(tmp_path):
    card_path = save_tiny_model(tmp_path, "ens", folds=3)
    model = load_model(card_path)
    assert len(model.networks) == 3
    first = [dict(net.named_parameters())["head.weight"] for net in model.networks]
    assert not torch.equal(first[0], first[1])  # three different initialisations were saved


def test_card_that_does_not_match_its_weights_is_refused(tmp_path):
    card_path = save_tiny_model(tmp_path, "tiny")
    data = json.loads(card_path.read_text())
    data["arguments"]["base_channels"] = 8
    card_path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="does not match its weight file") as info:
        load_model(card_path)
    assert "base_channels" in str(info.value)


def test_weights_of_another_shape_are_refused_even_without_metadata(tmp_path):
    from safetensors.torch import save_file

    card_path = save_tiny_model(tmp_path, "tiny")
    other = Model.random(tiny_card("tiny").with_changes(arguments={"base_channels": 6, "depth": 2}))
    save_file({k: v.contiguous() for k, v in other.networks[0].state_dict().items()}, str(tmp_path / "tiny.safetensors"))
    with pytest.raises(ModelError, match="do not fit model card 'tiny'.*another shape"):
        load_model(card_path)


def test_missing_or_corrupt_weight_files(tmp_path):
    card_path = save_tiny_model(tmp_path, "tiny")
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_model(card_path)
    weights.unlink()
    with pytest.raises(ModelError, match="is missing"):
        load_model(card_path)


def test_unknown_architecture_and_wrong_task(tmp_path):
    card = tiny_card("odd").with_changes(architecture="VNet")
    card.write(tmp_path / "odd.json")
    with pytest.raises(ModelError, match="does not know"):
        load_model(tmp_path / "odd.json")
    click = save_tiny_model(tmp_path / "c", "clicky", click=True)
    with pytest.raises(ModelError, match="made for the 'click' task"):
        load_model(click, task="automatic")
