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


@pytest.fixture(autouse=True)
def _saved_cases(tmp_path, monkeypatch):
    """Labels saved by the docks keep their case in a temporary folder, never in the user's data folder."""
    monkeypatch.setenv("NAPARI_HNC_SAVED_CASES", str(tmp_path / "saved-cases"))
    return tmp_path / "saved-cases"


@pytest.fixture(autouse=True)
def _own_user_data(tmp_path_factory, monkeypatch):
    """Each test has its own user data folder: autosaves of one test are never offered to another."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture(autouse=True)
def _reader_preferences():
    """napari-hnc sets napari's reader preference for study files; each test starts and ends with the user's own."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    saved = dict(plugins.extension2reader)
    yield plugins
    plugins.extension2reader = saved
