"""Automatic segmentation of a whole study: :func:`segment`.

Steps: load the model (card + ensemble) -> find the head-and-neck region
(:mod:`napari_hnc.headneck`; the whole field when the study is already a
head-and-neck one) -> crop the field of view to the body in that region,
within the PET -> resample CT and PET to the card's spacing and scale them ->
Gaussian-weighted sliding window with the ensemble mean (and optional flip
TTA) -> probabilities interpolated onto the CT grid -> argmax -> regions below
the card's ``min_region_ml`` removed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..geometry import Volume
from ..headneck import AUTO, HeadNeckRegion, resolve_region
from ..models.registry import load_model
from ..models.weights_io import Model
from ..progress import CancelToken, ProgressFn, check
from ..study import Study
from .device import DeviceConfig, run_with_fallback
from .ensemble import EnsemblePredictor
from .postprocess import probabilities_to_labels
from .preprocess import CANONICAL, Grid, PetStats, body_box, grid_over_box, image_channels, stack_inputs
from .sliding_window import WindowConfig, sliding_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """Class probabilities (K, *grid.shape) on the model grid, and the region of the study it covers."""

    probabilities: np.ndarray
    grid: Grid
    model: str
    region: HeadNeckRegion | None = None


def model_field(study: Study, region: HeadNeckRegion) -> tuple[np.ndarray, np.ndarray]:
    """The body's box (RAS-ordered voxel indices of the label grid) within ``region``."""
    if region.whole:
        return body_box(study)
    return body_box(study, region.voxel_box(study.grid.reoriented(CANONICAL)))


def pet_stats(study: Study, region: HeadNeckRegion) -> PetStats:
    """The PET's intensity statistics, over the region (the whole PET for the whole field)."""
    pet = study.pet
    if region.whole:
        return PetStats.of(pet)
    lo, hi = region.voxel_box(pet)
    return PetStats.of(pet.crop(tuple(slice(int(a), int(b) + 1) for a, b in zip(np.floor(lo), np.ceil(hi)))))


def predict_probabilities(
    study: Study,
    model: str | os.PathLike | Model = "default",
    device: str | torch.device = "auto",
    *,
    region: str | HeadNeckRegion | Sequence[float] | None = AUTO,
    tta: bool = False,
    overlap: float = 0.25,
    batch_size: int | None = None,
    threads: int | None = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
) -> Prediction:
    """The ensemble's class probabilities over the study's body in ``region``, on the model grid.

    Parameters are those of :func:`segment`.
    """
    loaded = load_model(model, task="automatic")
    card = loaded.card
    config = DeviceConfig.create(device, threads)
    config.activate()
    check(cancel)
    used = resolve_region(study, region)
    lo, hi = model_field(study, used)
    grid = grid_over_box(study.grid, card.spacing_mm, lo, hi)
    stats = pet_stats(study, used) if study.pet is not None and "pet" in card.inputs else None
    image = torch.from_numpy(stack_inputs(card, image_channels(study, card, grid, stats)))
    log.info("%s: %s on a %s grid of %s mm", study.case_id, card.name, grid.shape, list(card.spacing_mm))

    def run(dev: torch.device, batch: int) -> torch.Tensor:
        loaded.to(dev)
        window = WindowConfig(card.patch_size, overlap, batch, divisor=loaded.divisor)
        predictor = EnsemblePredictor(loaded.networks, dev, tta=tta)
        with DeviceConfig(dev, threads).context():
            return sliding_window(image, predictor, window, out_channels=card.out_channels,
                                  progress=progress, cancel=cancel)

    default_batch = 4 if config.device.type == "cuda" else 1
    probs = run_with_fallback(run, config.device, batch_size or default_batch)
    return Prediction(probs.numpy(), grid, card.name, used)


def segment(
    study: Study,
    model: str | os.PathLike | Model = "default",
    device: str | torch.device = "auto",
    *,
    region: str | HeadNeckRegion | Sequence[float] | None = AUTO,
    tta: bool = False,
    overlap: float = 0.25,
    batch_size: int | None = None,
    threads: int | None = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
) -> Volume:
    """Segment primary tumour (1) and lymph nodes (2) in a PET/CT study.

    Parameters
    ----------
    study : Study
        With the images the model's card needs (CT and PET for the bundled one).
    model : str, path or Model
        ``"default"``, a model name or alias, the path of a model card (``.json``),
        or a loaded :class:`~napari_hnc.models.Model`.
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    region : "auto", "whole", a box or a HeadNeckRegion
        Where the model runs. ``"auto"`` finds the head and neck
        (:func:`napari_hnc.headneck.find_head_neck`: a whole-body study is cut to
        the top of the head .. below the clavicles; a head-and-neck study keeps its
        whole field); ``"whole"`` uses the whole field; a box is 6 numbers
        ``(x0, y0, z0, x1, y1, z1)`` in world RAS mm (or the same as text). Voxels
        outside the region are background.
    tta : bool
        Average over the 8 mirrorings of each tile too (8x slower).
    overlap : float
        Fraction of overlap between sliding-window tiles.
    batch_size : int, optional
        Tiles per forward pass (default 4 on CUDA, 1 elsewhere); halved on out-of-memory.
    threads : int, optional
        CPU threads for torch (default: all this process may use).
    progress : callable, optional
        ``progress(done, total, description)``.
    cancel : CancelToken, optional
        Set it to stop early (raises :class:`~napari_hnc.errors.Cancelled`).

    Returns
    -------
    Volume
        uint8 labels on the study's label grid (the CT's exact grid); its
        ``metadata`` holds ``region`` (``"whole"`` or the box), ``region_reason``
        and ``region_confidence``.

    Raises
    ------
    ModelError
        No such model, or its card does not match its weights.
    RegionError
        A region that is not "auto", "whole" or a box overlapping the study.
    StudyError
        The study lacks an image the model needs (e.g. no PET).

    Examples
    --------
    With an installed model: ``labels = napari_hnc.segment(study)``. Here a randomly
    initialised network of the bundled size stands in for one:

    >>> import tempfile, napari_hnc
    >>> from napari_hnc.models import Model, preset_card
    >>> study = napari_hnc.load_study(napari_hnc.sample_study_path())
    >>> labels = napari_hnc.segment(study, Model.random(preset_card("auto"), seed=0), device="cpu")
    >>> labels.same_grid(study.ct), labels.array.dtype.name
    (True, 'uint8')
    >>> path = napari_hnc.save_labels(labels, study.ct, tempfile.mkdtemp() + "/STS_001.nii.gz")
    """
    started = time.perf_counter()
    loaded = load_model(model, task="automatic")
    prediction = predict_probabilities(
        study, loaded, device, region=region, tta=tta, overlap=overlap, batch_size=batch_size, threads=threads,
        progress=progress, cancel=cancel,
    )
    check(cancel)
    labels = probabilities_to_labels(
        prediction.probabilities, prediction.grid, study.grid, min_region_ml=loaded.card.min_region_ml
    )
    log.info("%s: segmented in %.2f s (%d lesion voxels), region %s", study.case_id, time.perf_counter() - started,
             int(np.count_nonzero(labels)), prediction.region.describe())
    return study.grid.with_array(labels, role="labels", path=None, model=loaded.card.name,
                                 **prediction.region.as_metadata())
