"""Training and evaluation of the segmentation networks.

Importing this package does not import torch: :mod:`napari_hnc.training.metrics`
and :mod:`napari_hnc.training.dataset` (the dataset index and folds) work on numpy
arrays and files only. The torch parts are imported from their modules:

* :mod:`.cache` -- volumes preprocessed as the model card says, cached as ``.npy``;
* :mod:`.sampler`, :mod:`.augment` -- patches that oversample lesions, and their augmentation;
* :mod:`.clicksim` -- simulated clicks and previous masks for click-guided models;
* :mod:`.losses` -- Dice + cross-entropy, or focal;
* :mod:`.trainer` -- :func:`~.trainer.train` (AdamW + cosine, validation, best checkpoint,
  exact resume, logs, DDP under ``torchrun``);
* :mod:`.evaluation`, :mod:`.interactive` -- ``napari-hnc evaluate``.
"""
