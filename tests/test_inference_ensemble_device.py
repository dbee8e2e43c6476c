"""Ensembles (mean of members, flip TTA) and devices (selection, threads, out-of-memory fallback)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_hnc.errors import ModelError
from napari_hnc.inference import device as device_module
from napari_hnc.inference.automatic import predict_probabilities, segment
from napari_hnc.inference.device import DeviceConfig, run_with_fallback, select_device
from napari_hnc.inference.ensemble import EnsemblePredictor
from napari_hnc.models import Model
from synthetic_pet_ct import neck_study, one_torch_thread, threshold_model, tiny_card  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def study():
    return neck_study()


def test_ensemble_probabilities_are_the_mean_of_its_members(study):
    model = Model.random(tiny_card("ens", folds=3), seed=7)
    members = [Model(model.card.with_changes(weights=(w,)), [net]) for w, net in zip(model.card.weights, model.networks)]
    both = predict_probabilities(study, model, "cpu", threads=1).probabilities
    each = [predict_probabilities(study, m, "cpu", threads=1).probabilities for m in members]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the members really differ
    assert np.allclose(both, np.mean(each, axis=0), atol=1e-5)
    assert np.allclose(both.sum(axis=0), 1.0, atol=1e-5)


def test_flip_tta_averages_the_eight_mirrorings():
    torch.manual_seed(0)
    net = Model.random(tiny_card()).networks[0]
    x = torch.randn(1, 2, 8, 8, 8)
    with torch.inference_mode():
        tta = EnsemblePredictor([net], CPU, tta=True)(x)
        manual = []
        for axes in [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]:
            flipped = torch.flip(x, axes) if axes else x
            out = torch.softmax(net(flipped), 1)
            manual.append(torch.flip(out, axes) if axes else out)
        plain = EnsemblePredictor([net], CPU)(x)
    assert torch.allclose(tta, torch.stack(manual).mean(0), atol=1e-6)
    assert not torch.allclose(tta, plain, atol=1e-4)


def test_select_device_names_and_errors(monkeypatch):
    assert select_device("cpu") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    assert select_device("auto") == CPU
    with pytest.raises(ModelError, match="no CUDA GPU"):
        select_device("cuda")
    with pytest.raises(ModelError, match="MPS is not available"):
        select_device("mps")
    with pytest.raises(ModelError, match="unknown device"):
        select_device("gpu-please")


def test_cpu_thread_count_is_set():
    DeviceConfig(CPU, threads=1).activate()
    assert torch.get_num_threads() == 1


def test_out_of_memory_halves_the_batch_then_moves_to_the_cpu():
    calls = []

    def run(device, batch):
        calls.append((device.type, batch))
        if device.type == "cuda" or batch > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "result"

    assert run_with_fallback(run, torch.device("cuda"), 8) == "result"
    assert calls == [("cuda", 8), ("cuda", 4), ("cuda", 2), ("cuda", 1), ("cpu", 1)]


def test_other_errors_are_not_retried_and_cpu_exhaustion_is_explained():
    def broken(device, batch):
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        run_with_fallback(broken, torch.device("cuda"), 4)

    def no_memory(device, batch):
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    with pytest.raises(ModelError, match="out of memory on the CPU"):
        run_with_fallback(no_memory, CPU, 2)


def test_segment_recovers_from_out_of_memory_with_smaller_tile_batches(study, monkeypatch):
    model = threshold_model()
    expected = segment(study, model, "cpu", batch_size=1, threads=1).array
    original, seen = EnsemblePredictor.__call__, []

    def fussy(self, batch):
        seen.append(batch.shape[0])
        if batch.shape[0] > 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return original(self, batch)

    monkeypatch.setattr(EnsemblePredictor, "__call__", fussy)
    labels = segment(study, model, "cpu", batch_size=4, threads=1, overlap=0.5)
    assert seen[:2] == [4, 2] and 1 in seen
    assert np.array_equal(labels.array, expected) and expected.any()
