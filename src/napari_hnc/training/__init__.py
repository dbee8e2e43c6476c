"""Training and evaluation: metrics now; datasets, losses and the trainer join later.

Importing this package does not import torch: :mod:`napari_hnc.training.metrics`
works on numpy arrays and Volumes only.
"""
