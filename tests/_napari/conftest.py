"""Fixtures for the napari side: plugin discovery and a headless viewer model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _discover_plugins():
    """Make npe2 find napari-hnc's manifest (a ViewerModel does not do it by itself)."""
    from npe2 import PluginManager

    PluginManager.instance().discover()


@pytest.fixture
def viewer_model():
    from napari.components import ViewerModel

    return ViewerModel()
