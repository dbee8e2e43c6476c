"""Architecture rules: a Qt-free core and a manifest shipped inside the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import resources
from pathlib import Path

import napari_hnc

PACKAGE = Path(napari_hnc.__file__).parent
FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_napari_folder_imports_napari_qt_or_magicgui():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if "_napari" in path.relative_to(PACKAGE).parts:
            continue
        bad = _imports(path) & set(FORBIDDEN)
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_importing_the_core_loads_no_gui_library():
    core = [
        "napari_hnc", "napari_hnc.geometry", "napari_hnc.study", "napari_hnc.io.nifti", "napari_hnc.cli",
        "napari_hnc.display", "napari_hnc.demo",
    ] + [f"napari_hnc.{p.stem}" for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")]
    code = (
        f"import importlib, sys\nfor m in {sorted(set(core))!r}: importlib.import_module(m)\n"
        "import napari_hnc; [getattr(napari_hnc, n) for n in napari_hnc._API if n != 'open_study']\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_manifest_is_at_the_root_and_inside_the_package():
    root = Path(__file__).resolve().parents[1] / "napari.yaml"
    packaged = resources.files("napari_hnc") / "napari.yaml"
    assert packaged.is_file()
    assert packaged.read_text() == root.read_text()


def test_manifest_validates_with_imports():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-hnc")
    manifest.validate_imports()
    commands = {c.id for c in manifest.contributions.commands}
    assert {"napari-hnc.get_reader", "napari-hnc.write_labels", "napari-hnc.write_image"} <= commands
