"""The napari-hnc command line: help, exit codes, the headless demo."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0 and "usage: napari-hnc" in capsys.readouterr().out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_headless_demo_without_a_model_writes_the_reference_labels(tmp_path, capsys, monkeypatch):
    from napari_hnc.errors import ModelError
    from napari_hnc.models import registry

    def no_model(*args, **kwargs):
        raise ModelError("no model installed")

    monkeypatch.setattr(registry, "find_model", no_model)
    assert main(["demo", "--headless", "--out", str(tmp_path / "out")]) == 0
    labels = tmp_path / "out" / "STS_001_labels.nii.gz"
    png = tmp_path / "out" / "STS_001_fused_axial.png"
    ct = nib.load(napari_hnc.sample_study_path())
    saved = nib.load(labels)
    assert saved.shape == ct.shape and np.allclose(saved.affine, ct.affine)
    assert np.asanyarray(saved.dataobj).sum() == 117145  # the reference mask
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "STS_001_lesions.csv").is_file()
    out = capsys.readouterr().out
    assert str(labels) in out and "reference labels" in out


def test_headless_demo_runs_the_installed_automatic_model(tmp_path, capsys, monkeypatch):
    from napari_hnc.models import Model, preset_card, save_model

    card = preset_card("auto", name="tiny-auto").with_changes(
        arguments={"base_channels": 2, "depth": 1}, patch_size=(32, 32, 32), spacing_mm=(4.0, 4.0, 4.0),
        aliases=("default",))
    save_model(Model.random(card, seed=3).networks, card, tmp_path / "models")
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(tmp_path / "models"))
    assert main(["demo", "--headless", "--sample", "sts001", "--device", "cpu", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "automatic model 'tiny-auto'" in out and "Dice against the study's reference labels" in out
    assert "region: whole field: the field of view is 190 mm tall, no taller than a head and neck" in out
    saved = nib.load(tmp_path / "o" / "STS_001_labels.nii.gz")
    assert saved.shape == nib.load(napari_hnc.sample_study_path()).shape


def test_failed_case_exits_1_with_the_reason(tmp_path, capsys):
    assert main(["demo", "--headless", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "napari_hnc.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and napari_hnc.__version__ in out.stdout
