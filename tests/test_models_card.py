"""Model cards: JSON round trips and clear errors for unusable cards."""

from __future__ import annotations

import json

import pytest

from napari_hnc.errors import ModelError
from napari_hnc.models import BUNDLED_PRESETS, ModelCard, preset_card
from napari_hnc.models.card import Preprocessing


def test_card_round_trips_through_json(tmp_path):
    card = preset_card("click", name="mine", folds=5).with_changes(
        training={"data": "HECKTOR 2022", "command": "napari-hnc train ..."}, scores={"dice": 0.71}
    )
    path = card.write(tmp_path / "mine.json")
    data = json.loads(path.read_text())
    assert data["classes"] == {"0": "background", "1": "primary tumour", "2": "lymph node"}
    assert data["preprocessing"]["ct_window"] == [-1024.0, 1024.0]
    again = ModelCard.read(path)
    assert again == card
    assert again.in_channels == 5 and again.is_click_guided and len(again.weights) == 5


def test_bundled_presets_describe_cpu_sized_networks():
    auto, click = BUNDLED_PRESETS["auto"], BUNDLED_PRESETS["click"]
    assert "default" in auto.aliases and auto.task == "automatic" and auto.needs == ("ct", "pet")
    assert "click" in click.aliases and click.task == "click" and click.patch_size == (64, 64, 64)
    assert auto.spacing_mm == (2.5, 2.5, 2.5) and auto.arguments["base_channels"] <= 16


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"weights": ()}, "no weight files"),
        ({"inputs": ("ct", "mri")}, "unknown inputs"),
        ({"spacing_mm": (2.0, 0.0, 2.0)}, "positive"),
        ({"patch_size": (64, 64)}, "3 values"),
        ({"task": "click"}, "no click inputs"),
        ({"classes": {0: "bg", 2: "node"}}, "numbered"),
        ({"name": "a/b"}, "plain name"),
    ],
)
def test_bad_cards_are_refused_with_the_reason(changes, message):
    base = preset_card("auto").to_dict()
    base.update({k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()})
    with pytest.raises(ModelError, match=message):
        ModelCard.from_dict(base, source="card.json")


def test_card_missing_required_fields_or_unreadable(tmp_path):
    with pytest.raises(ModelError, match="misses"):
        ModelCard.from_dict({"name": "x"})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not readable JSON"):
        ModelCard.read(bad)
    with pytest.raises(ModelError, match="does not exist"):
        ModelCard.read(tmp_path / "nope.json")


def test_preprocessing_validates_its_fields():
    with pytest.raises(ModelError, match="increasing"):
        Preprocessing(ct_window=(100, -100))
    with pytest.raises(ModelError, match="zscore"):
        Preprocessing(pet="log")
