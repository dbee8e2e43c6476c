"""Training on tiny data: outputs, learning, exact resume, click-guided training, and DDP under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from napari_hnc.errors import HncError
from napari_hnc.models import load_model
from napari_hnc.training.config import TrainConfig
from napari_hnc.training.dataset import index_dataset, train_val_split
from napari_hnc.training.trainer import train
from synthetic_pet_ct import one_torch_thread  # noqa: F401 - fixture
from training_data import tiny_train_card, write_dataset

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = dict(patch_size=16, batch_size=2, steps_per_epoch=3, val_max_cases=1, warmup_steps=2, channels_last=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), n=4)


@pytest.fixture(scope="module")
def split(dataset):
    return train_val_split(index_dataset(dataset, "hecktor2022"), folds=4, fold=0)


def _steps(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "steps.csv")


def test_training_writes_a_loadable_model_with_scores_and_logs(split, tmp_path, one_torch_thread):
    train_cases, val_cases = split
    result = train(train_cases, val_cases, tiny_train_card(), TrainConfig(epochs=2, **TINY), tmp_path / "run",
                   cache_root=tmp_path / "cache", device="cpu", threads=1, training_info={"command": "napari-hnc x"})
    out = tmp_path / "run"
    model = load_model(result.card_path)
    assert model.card.name == "tiny" and model.card.training["command"] == "napari-hnc x"
    assert model.card.training["epochs"] == 2
    assert 0.0 <= model.card.scores["validation_dice_union"] <= 1.0
    assert model.card.scores["validation_epoch"] == result.best_epoch
    assert len(_steps(out)) == 6 and list(pd.read_csv(out / "epochs.csv")["epoch"]) == [1, 2]
    for name in ("last.pt", "train.log", "learning_curve.png", "config.json", "tiny.safetensors"):
        assert (out / name).is_file(), name
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_into_the_same_folder_needs_resume(split, tmp_path, one_torch_thread):
    train_cases, val_cases = split
    config = TrainConfig(epochs=1, **TINY)
    kwargs = dict(cache_root=tmp_path / "cache", device="cpu", threads=1)
    train(train_cases, val_cases, tiny_train_card(), config, tmp_path / "run", **kwargs)
    with pytest.raises(HncError, match="--resume"):
        train(train_cases, val_cases, tiny_train_card(), config, tmp_path / "run", **kwargs)
    with pytest.raises(HncError, match="lr: 0.002 -> 0.01"):
        train(train_cases, val_cases, tiny_train_card(), config.with_changes(lr=0.01), tmp_path / "run",
              resume=True, **kwargs)


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(split, tmp_path, one_torch_thread):
    train_cases, val_cases = split
    config = TrainConfig(epochs=4, steps_per_epoch=2, **{k: v for k, v in TINY.items() if k != "steps_per_epoch"})
    kwargs = dict(cache_root=tmp_path / "cache", device="cpu", threads=1)
    card = tiny_train_card()
    train(train_cases, val_cases, card, config, tmp_path / "straight", **kwargs)
    first = train(train_cases, val_cases, card, config, tmp_path / "resumed", stop_after=2, **kwargs)
    assert first.epochs_done == 2 and len(_steps(tmp_path / "resumed")) == 4
    train(train_cases, val_cases, card, config, tmp_path / "resumed", resume=True, **kwargs)
    straight, resumed = _steps(tmp_path / "straight"), _steps(tmp_path / "resumed")
    assert len(resumed) == 8
    assert resumed["loss"].tolist() == straight["loss"].tolist()  # the steps after the interruption included
    assert resumed["lr"].tolist() == straight["lr"].tolist()
    a = load_model(tmp_path / "straight" / "tiny.json").networks[0].state_dict()
    b = load_model(tmp_path / "resumed" / "tiny.json").networks[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = pd.read_csv(tmp_path / "resumed" / "epochs.csv")
    assert epochs["elapsed_min"].is_monotonic_increasing  # the clock goes on across the resume
    training = json.loads((tmp_path / "resumed" / "tiny.json").read_text())["training"]
    assert training["minutes_training"] == round(epochs["seconds"].sum() / 60, 1)


def test_the_network_learns_the_lesions_of_the_tiny_cases(split, tmp_path, one_torch_thread):
    train_cases, val_cases = split
    config = TrainConfig(epochs=3, steps_per_epoch=15, lr=1e-2, patch_size=16, batch_size=2, warmup_steps=3,
                         val_max_cases=1, channels_last=False, spatial_probability=0.0)
    result = train(train_cases, train_cases[:1], tiny_train_card(), config, tmp_path / "run",
                   cache_root=tmp_path / "cache", device="cpu", threads=1)
    steps = _steps(tmp_path / "run")
    assert steps["loss"].iloc[-10:].mean() < 0.6 * steps["loss"].iloc[:5].mean()
    assert result.best_score > 0.5, result


def test_click_guided_training_runs_model_rounds_and_scores_clicks(split, tmp_path, one_torch_thread):
    train_cases, val_cases = split
    card = tiny_train_card(click=True, architecture="ResUNetMHSA").with_changes(patch_size=(32, 32, 32))
    result = train(train_cases, val_cases, card, TrainConfig(clicks=True, epochs=1, **TINY), tmp_path / "run",
                   cache_root=tmp_path / "cache", device="cpu", threads=1)
    epochs = pd.read_csv(tmp_path / "run" / "epochs.csv")
    assert {"dice_1click", "dice_3clicks", "dice_clicks"} <= set(epochs.columns)
    assert result.score_name == "dice_clicks"
    written = load_model(result.card_path).card
    assert written.is_click_guided
    assert written.patch_size == (TINY["patch_size"],) * 3  # the region it was trained and validated on


def test_click_training_needs_a_click_card(split, tmp_path):
    train_cases, val_cases = split
    with pytest.raises(HncError, match="--clicks"):
        train(train_cases, val_cases, tiny_train_card(), TrainConfig(clicks=True, **TINY), tmp_path / "run",
              cache_root=tmp_path / "cache", device="cpu")


def test_torchrun_trains_on_two_cpu_processes_with_gloo(dataset, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "napari_hnc.cli", "train", str(dataset), "--layout", "hecktor2022", "--out", str(tmp_path / "ddp"),
               "--folds", "4", "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "16", "--base-channels", "4",
               "--depth", "2", "--spacing", "4", "--val-max-cases", "1", "--device", "cpu", "--threads", "1",
               "--cache", str(tmp_path / "cache"), "--name", "ddp-model"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    card = load_model(tmp_path / "ddp" / "ddp-model.json").card
    assert card.training["world_size"] == 2
    steps = _steps(tmp_path / "ddp")
    assert len(steps) == 2 and steps["loss"].notna().all()  # per step, the mean loss of the two ranks


def test_the_train_command_sets_the_ct_window_in_the_card_and_its_reproduce_command():
    import argparse

    from napari_hnc.cli import UsageError
    from napari_hnc.commands import train as train_command

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["data", "--layout", "hecktor2022", "--model", "mhsa", "--clicks", "--out", "run",
                              "--ct-window", "-150", "150"])
    card = train_command.build_card(args)
    assert card.preprocessing.ct_window == (-150.0, 150.0) and card.is_click_guided
    command = train_command.command_line(args)
    assert command.endswith("--ct-window -150 150")
    again = train_command.build_card(parser.parse_args(command.split()[2:]))  # the recorded command rebuilds it
    assert again.preprocessing == card.preprocessing
    default = train_command.build_card(parser.parse_args(["data", "--layout", "hecktor2022", "--out", "run"]))
    assert default.preprocessing.ct_window == (-1024.0, 1024.0)
    with pytest.raises(UsageError, match=r"--ct-window 5 5: .*ct_window must be increasing"):
        train_command.build_card(parser.parse_args(["data", "--layout", "hecktor2022", "--out", "r", "--ct-window", "5", "5"]))
