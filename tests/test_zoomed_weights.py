"""A click card's ``zoomed_weights``: the networks that draw a large lesion seen at a coarser spacing.

The stand-in networks threshold the PET (``ThresholdNet``), so which one drew a lesion shows in the mask:
the card's network draws SUV > 4, the zoomed one SUV > ``ZOOMED_THRESHOLD``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_hnc.errors import ModelError
from napari_hnc.inference.session import RefinementSession
from napari_hnc.models import find_model, load_model_file, save_model
from napari_hnc.models.weights_io import Model
from napari_hnc.training.finetune import child_card
from synthetic_pet_ct import Lesion, ThresholdNet, neck_study, one_torch_thread, threshold_card, tiny_card  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CENTRE = (2.0, -3.0, 1.0)
ZOOMED_THRESHOLD = 9.0  # above the lesions' SUV 8: the zoomed network finds nothing


def _model(zoomed: bool, patch=(8, 8, 8)) -> Model:
    card = threshold_card(click=True, patch_size=patch,
                          zoomed_weights=("toy-zoomed.safetensors",) if zoomed else ())
    nets = [ThresholdNet(card.in_channels, threshold=ZOOMED_THRESHOLD)] if zoomed else []
    return Model(card, [ThresholdNet(card.in_channels)], zoomed_networks=nets)


def _click(study, zoomed: bool, patch=(8, 8, 8)):
    session = RefinementSession(_model(zoomed, patch), device="cpu", threads=1)
    session.set_study(study.with_labels(None))
    used: list[tuple[bool, bool]] = []  # (region seen coarser, the zoomed networks drew it) per pass
    engine, pick = session.engine, session.engine.networks_for

    def spy(lesion):
        nets = pick(lesion)
        used.append((engine.zoomed(lesion.roi), nets is engine.model.zoomed_networks))
        return nets

    engine.networks_for = spy
    update = session.add_click(CENTRE, positive=True, label_class="primary")
    return session, update, used


def test_a_large_lesion_is_drawn_by_the_zoomed_networks_and_a_small_one_by_the_cards():
    """The zoomed networks take over once the card's own first pass finds the lesion large."""
    large = neck_study((Lesion(CENTRE, 20.0),))  # a 4 cm lesion, a 2 cm region: seen at twice the spacing
    session, update, used = _click(large, zoomed=True)
    # the card's network first, from the click alone: its lesion is large, so the zoomed one draws it again
    assert used[0] == (True, False) and len(used) >= 2 and all(coarse and zoomed for coarse, zoomed in used[1:])
    assert any("found no lesion" in m for m in update.messages)  # the zoomed network (SUV > 9) drew nothing
    plain, plain_update, used_plain = _click(large, zoomed=False)  # the same card without zoomed weights
    assert used_plain and not any(zoomed for _, zoomed in used_plain)
    assert plain.target.any() and not any("found no lesion" in m for m in plain_update.messages)

    small = neck_study((Lesion(CENTRE, 4.0),))  # 8 mm: the region holds it at the card's spacing
    with_zoomed, _, used = _click(small, zoomed=True)
    assert used == [(False, False)]  # one pass, the card's network
    without, _, _ = _click(small, zoomed=False)
    assert with_zoomed.target.any() and np.array_equal(with_zoomed.target, without.target)


def test_zoomed_weights_round_trip_and_a_missing_file_is_named(tmp_path):
    card = tiny_card("tz", click=True).with_changes(zoomed_weights=("tz-zoomed.safetensors",))
    model = Model.random(card, seed=0)
    path = save_model(model.networks, card, tmp_path, zoomed=model.zoomed_networks)
    assert json.loads(path.read_text())["zoomed_weights"] == ["tz-zoomed.safetensors"]
    loaded = load_model_file(path)
    assert len(loaded.networks) == 1 and len(loaded.zoomed_networks) == 1
    for name, tensor in model.zoomed_networks[0].state_dict().items():
        assert np.array_equal(tensor.numpy(), loaded.zoomed_networks[0].state_dict()[name].numpy())
    assert not np.array_equal(next(iter(loaded.networks[0].state_dict().values())).numpy(),
                              next(iter(loaded.zoomed_networks[0].state_dict().values())).numpy())
    (tmp_path / "tz-zoomed.safetensors").unlink()
    with pytest.raises(ModelError, match="zoomed_weights"):
        load_model_file(path)
    with pytest.raises(ModelError, match="zoomed"):
        save_model(model.networks, card, tmp_path / "again")  # the zoomed network not given


def test_a_card_without_zoomed_weights_writes_none_and_an_automatic_card_refuses_them():
    card = tiny_card("plain")
    assert "zoomed_weights" not in card.to_dict()
    with pytest.raises(ModelError, match="click-guided"):
        card.with_changes(zoomed_weights=("z.safetensors",))


def test_the_bundled_click_model_has_its_zoomed_weights_and_a_fine_tune_drops_them():
    entry = find_model("click")
    model = load_model_file(entry.card_path)
    assert model.card.zoomed_weights == ("hnc-click-zoomed.safetensors",) and len(model.zoomed_networks) == 1
    blended, zoomed = model.networks[0].state_dict(), model.zoomed_networks[0].state_dict()
    assert any(not np.array_equal(blended[k].numpy(), zoomed[k].numpy()) for k in blended)
    assert child_card(model.card, "clinic-click").zoomed_weights == ()


def test_an_ensemble_of_cards_with_zoomed_weights_leaves_them_out(tmp_path, caplog):
    from napari_hnc.models.ensembles import assemble

    paths = []
    for k in range(2):
        card = tiny_card(f"m{k}", click=True).with_changes(zoomed_weights=(f"m{k}-zoomed.safetensors",))
        model = Model.random(card, seed=k)
        paths.append(save_model(model.networks, card, tmp_path / f"m{k}", zoomed=model.zoomed_networks))
    with caplog.at_level("WARNING"):
        out = assemble(paths, tmp_path / "ens")
    loaded = load_model_file(out)
    assert len(loaded.networks) == 2 and loaded.zoomed_networks == [] and "zoomed_weights" in caplog.text


def test_a_small_lesion_seen_coarser_because_the_pet_rule_ran_on_keeps_the_cards_networks():
    # a hot 1.2 cm node (SUV 8) on warm tissue (SUV 3.5, 4 cm): the 41 % rule (3.3) runs into the tissue,
    # so the 4 cm region is seen coarser, but the card's network draws the node alone: not a large lesion
    study = neck_study((Lesion(CENTRE, 20.0, suv=3.5), Lesion(CENTRE, 6.0, suv=8.0)))
    session, _, used = _click(study, zoomed=True, patch=(16, 16, 16))
    assert used == [(True, False)]
    node = np.asarray(neck_study((Lesion(CENTRE, 6.0),)).labels.array) > 0
    found = session.target > 0
    assert found.any() and 2.0 * (found & node).sum() / (found.sum() + node.sum()) > 0.6
