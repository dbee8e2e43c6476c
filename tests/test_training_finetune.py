"""Fine-tuning a tiny model on tiny data: new weights, a card naming its parent, atomic folders, the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from napari_hnc.cli import main
from napari_hnc.errors import Cancelled, HncError
from napari_hnc.models import Model, load_model, save_model
from napari_hnc.models.registry import ENV_VAR, available_models, find_model
from napari_hnc.progress import CancelToken
from napari_hnc.training.config import TrainConfig
from napari_hnc.training.dataset import index_dataset
from napari_hnc.training.finetune import finetune, staging_folder
from synthetic_pet_ct import one_torch_thread  # noqa: F401 - fixture
from training_data import tiny_train_card, write_dataset

TINY = dict(patch_size=16, batch_size=2, steps_per_epoch=3, val_max_cases=1, warmup_steps=1, channels_last=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), n=3)


def _parent(folder: Path, click: bool = False) -> Path:
    arch = "ResUNetMHSA" if click else "SENormResUNet"
    card = tiny_train_card(click=click, name="parent", architecture=arch)
    card = card.with_changes(training={"command": "napari-hnc train ..."}, scores={"validation_dice_union": 0.1})
    return save_model(Model.random(card, seed=3).networks, card, folder)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).networks[0].state_dict()


@pytest.mark.parametrize("click", [False, True], ids=["automatic", "click"])
def test_a_finetune_changes_the_weights_and_its_card_names_its_parent(dataset, tmp_path, click, one_torch_thread):
    parent = _parent(tmp_path / "parent", click)
    cases = index_dataset(dataset, "hecktor2022")
    config = TrainConfig(clicks=click, epochs=1, lr=1e-2, **TINY)
    out = tmp_path / "models" / "child"
    result = finetune(cases[:2], cases[2:], parent, out, config, cache_root=tmp_path / "cache", device="cpu",
                      threads=1, training_info={"command": "napari-hnc finetune x"})
    assert result.card_path == out / "child.json" and not staging_folder(out).exists()
    before, after = _weights(parent), _weights(result.card_path)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained
    card = load_model(result.card_path).card
    assert (card.architecture, card.inputs, card.spacing_mm) == (load_model(parent).card.architecture,
                                                                  load_model(parent).card.inputs, (4.0,) * 3)
    training = card.training
    assert training["finetuned_from"]["name"] == "parent" and training["finetuned_from"]["card"] == str(parent)
    assert len(training["finetuned_from"]["weights_sha256"]["parent.safetensors"]) == 64
    assert training["version"] == 2 and training["lineage"] == ["parent"]
    assert training["cases_used"] == [c.case_id for c in cases[:2]]
    assert training["validation_cases"] == [cases[2].case_id]
    score = "dice_clicks" if click else "dice_union"
    assert set(training["validation_before"]) >= {score} and set(training["validation_after"]) >= {score}
    assert training["command"] == "napari-hnc finetune x"


def test_the_finetune_starts_from_the_parent_weights(dataset, tmp_path, one_torch_thread):
    """With a learning rate of almost nothing, the child equals its parent: it did not start from random."""
    parent = _parent(tmp_path / "parent")
    cases = index_dataset(dataset, "hecktor2022")
    config = TrainConfig(epochs=1, lr=1e-12, weight_decay=0.0, **TINY)
    result = finetune(cases, cases, parent, tmp_path / "child", config, cache_root=tmp_path / "cache",
                      device="cpu", threads=1)
    before, after = _weights(parent), _weights(result.card_path)
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in before)
    card = load_model(result.card_path).card
    assert card.training["validation_before"]["dice_union"] == pytest.approx(
        card.training["validation_after"]["dice_union"], abs=1e-4)


@pytest.mark.parametrize("click", [False, True], ids=["automatic", "click"])
def test_a_blended_finetune_is_the_midpoint_of_the_parent_and_the_finetuned_weights(dataset, tmp_path, click,
                                                                                     one_torch_thread):
    parent = _parent(tmp_path / "parent", click)
    cases = index_dataset(dataset, "hecktor2022")
    config = TrainConfig(clicks=click, epochs=1, lr=1e-2, **TINY)
    plain = finetune(cases[:2], cases[2:], parent, tmp_path / "plain", config, cache_root=tmp_path / "cache",
                     device="cpu", threads=1)
    blended = finetune(cases[:2], cases[2:], parent, tmp_path / "blended", config, cache_root=tmp_path / "cache",
                       device="cpu", threads=1, blend=0.5)
    start, tuned, mixed = _weights(parent), _weights(plain.card_path), _weights(blended.card_path)
    floats = [k for k in start if start[k].is_floating_point()]
    assert any(not torch.allclose(start[k], tuned[k]) for k in floats)  # the fine-tune moved the weights
    for k in floats:
        assert torch.allclose(mixed[k], 0.5 * (start[k] + tuned[k]), atol=1e-6), k
    card = load_model(blended.card_path).card
    score = "dice_clicks" if click else "dice_union"
    assert card.training["blend"]["finetuned_share"] == 0.5
    assert card.training["validation_finetuned"][score] == pytest.approx(
        load_model(plain.card_path).card.scores[f"validation_{score}"])
    assert card.training["validation_after"][score] == pytest.approx(card.scores[f"validation_{score}"])
    with pytest.raises(HncError, match=r"blend must lie in \(0, 1\]"):
        finetune(cases[:2], cases[2:], parent, tmp_path / "bad", config, cache_root=tmp_path / "cache",
                 device="cpu", threads=1, blend=0.0)
    assert not (tmp_path / "bad").exists()


def test_a_blended_click_finetune_can_keep_its_unblended_weights_for_large_lesions(dataset, tmp_path,
                                                                                  one_torch_thread):
    parent = _parent(tmp_path / "parent", click=True)
    cases = index_dataset(dataset, "hecktor2022")
    config = TrainConfig(clicks=True, epochs=1, lr=1e-2, **TINY)
    plain = finetune(cases[:2], cases[2:], parent, tmp_path / "plain", config, cache_root=tmp_path / "cache",
                     device="cpu", threads=1)
    both = finetune(cases[:2], cases[2:], parent, tmp_path / "both", config, cache_root=tmp_path / "cache",
                    device="cpu", threads=1, blend=0.5, zoomed_unblended=True)
    model = load_model(both.card_path)
    assert model.card.zoomed_weights == ("both-zoomed.safetensors",) and len(model.zoomed_networks) == 1
    tuned, kept, start = _weights(plain.card_path), model.zoomed_networks[0].state_dict(), _weights(parent)
    assert all(torch.allclose(tuned[k], kept[k], atol=1e-6) for k in tuned)  # the fine-tune itself
    assert any(not torch.allclose(kept[k], model.networks[0].state_dict()[k]) for k in kept
               if start[k].is_floating_point())  # beside the blend
    with pytest.raises(HncError, match="blend below 1"):
        finetune(cases[:2], cases[2:], parent, tmp_path / "bad", config, cache_root=tmp_path / "cache",
                 device="cpu", threads=1, zoomed_unblended=True)
    with pytest.raises(HncError, match="click-guided"):
        finetune(cases[:2], cases[2:], _parent(tmp_path / "auto"), tmp_path / "bad", TrainConfig(epochs=1, **TINY),
                 cache_root=tmp_path / "cache", device="cpu", threads=1, blend=0.5, zoomed_unblended=True)


def test_a_cancelled_finetune_leaves_nothing_and_an_existing_version_untouched(dataset, tmp_path, one_torch_thread):
    parent = _parent(tmp_path / "parent")
    cases = index_dataset(dataset, "hecktor2022")
    models = tmp_path / "models"
    (models / "child").mkdir(parents=True)
    (models / "child" / "child.json").write_text("{}")
    token = CancelToken()
    token.cancel()
    with pytest.raises(HncError, match="already exists"):
        finetune(cases, cases, parent, models / "child", TrainConfig(epochs=1, **TINY), cache_root=tmp_path / "c",
                 device="cpu", threads=1)
    with pytest.raises(Cancelled):
        finetune(cases, cases, parent, models / "child", TrainConfig(epochs=1, **TINY), cache_root=tmp_path / "c",
                 device="cpu", threads=1, overwrite=True, cancel=token)
    assert sorted(p.name for p in models.iterdir()) == ["child"]  # no staging folder left
    assert (models / "child" / "child.json").read_text() == "{}"


def test_the_finetune_command_writes_a_version_the_registry_finds_beside_its_parent(dataset, tmp_path, monkeypatch,
                                                                                      one_torch_thread):
    models = tmp_path / "models"
    parent = _parent(models)
    monkeypatch.setenv(ENV_VAR, str(models))
    code = main(["finetune", str(dataset), "--from", "parent", "--out", str(models / "parent-v2"), "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch-size", "1", "--patch-size", "16", "--val-max-cases", "1",
                 "--device", "cpu", "--threads", "1", "--cache", str(tmp_path / "cache")])
    assert code == 0
    names = [e.name for e in available_models() if e.source == "user"]
    assert names == ["parent", "parent-v2"]  # the previous version stays available
    card = find_model("parent-v2").card
    assert card.training["finetuned_from"]["card"] == str(parent)
    assert card.training["validation"].startswith("the training cases")  # 3 patients < 5 folds
    assert card.training["command"].startswith(f"napari-hnc finetune {dataset} --from parent --out ")
    assert json.loads((models / "parent-v2" / "config.json").read_text())["patch_size"] == 16


def test_the_finetune_command_refuses_an_existing_output(dataset, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(dataset), "--from", "default", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err


def test_torchrun_finetunes_on_two_cpu_processes(dataset, tmp_path):
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[1] / "src"
    parent = _parent(tmp_path / "parent")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "napari_hnc.cli", "finetune", str(dataset), "--from", str(parent), "--out", str(tmp_path / "ddp"),
               "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "16", "--batch-size", "1",
               "--val-max-cases", "2", "--device", "cpu", "--threads", "1", "--cache", str(tmp_path / "cache")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    card = load_model(tmp_path / "ddp" / "ddp.json").card
    assert card.training["world_size"] == 2 and card.training["finetuned_from"]["name"] == "parent"
    assert not staging_folder(tmp_path / "ddp").exists()


def test_saving_through_the_plugin_keeps_a_training_set_with_a_record_of_corrections(tmp_path):
    from napari_hnc.training.dataset import detect_layout
    from napari_hnc.training.saved_cases import read_index, record_case, saved_counts
    from synthetic_pet_ct import neck_study

    study = neck_study(case_id="SYN-042")
    labels = study.labels.with_array(study.labels.array,
                                     provenance={"lesions": [{"id": 1, "origin": "automatic", "edited": True}]})
    record_case(study, labels, tmp_path)
    record_case(neck_study(case_id="SYN-043"), neck_study(case_id="SYN-043").labels, tmp_path)
    assert detect_layout(tmp_path) == "hecktor2022"
    assert [c.case_id for c in index_dataset(tmp_path, "hecktor2022")] == ["SYN-042", "SYN-043"]
    index = read_index(tmp_path)
    assert index["SYN-042"]["from_proposal"] is True and index["SYN-043"]["from_proposal"] is False
    assert saved_counts(tmp_path) == {"cases": 2, "corrected_from_proposal": 1, "drawn": 1}


def test_the_user_model_and_saved_case_folders_follow_xdg_data_home(tmp_path, monkeypatch):
    from napari_hnc.models.registry import user_model_dirs
    from napari_hnc.training.saved_cases import ENV_VAR as SAVED_VAR, saved_cases_dir

    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(SAVED_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_model_dirs() == [tmp_path / "napari-hnc" / "models"]
    assert saved_cases_dir() == tmp_path / "napari-hnc" / "saved-cases"


@pytest.mark.parametrize("share", ["0", "1.5"])
def test_the_finetune_command_refuses_a_blend_outside_zero_to_one(dataset, tmp_path, capsys, share):
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(dataset), "--from", "default", "--out", str(tmp_path / "out"), "--blend", share])
    assert exit_info.value.code == 2
    assert "--blend must lie in (0, 1]" in capsys.readouterr().err and not (tmp_path / "out").exists()
