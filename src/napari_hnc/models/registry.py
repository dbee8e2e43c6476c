"""Where models are found: bundled weights and user folders.

A model is a card ``<name>.json`` plus the safetensors file(s) it lists, in one
folder. napari-hnc looks in

1. the folders in the ``NAPARI_HNC_MODELS`` environment variable (separated by
   ``os.pathsep``), or, when it is not set, the user data folder
   (``platformdirs.user_data_dir("napari-hnc")/models``, e.g.
   ``~/.local/share/napari-hnc/models`` on Linux);
2. the ``models/weights/`` folder inside the package (bundled models).

A model may also sit in a folder of its own named after it, ``<folder>/<name>/<name>.json``
(what ``napari-hnc finetune`` and the GUI's "Improve the model" write, with their training logs
beside the card); hidden folders (``.<name>.partial``, a version still being written) are skipped.
User models come first, so a user model may take over a bundled name or alias.
A model is asked for by card path, by name, or by an alias a card declares:
``"default"`` is the automatic-segmentation model, ``"click"`` the
click-guided one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ModelError
from .card import ModelCard
from .weights_io import Model, load_model_file

log = logging.getLogger(__name__)

ENV_VAR = "NAPARI_HNC_MODELS"
DEFAULT_ALIAS = "default"
#: JSON files a training run writes beside its card that are not model cards.
NOT_CARDS = ("config.json",)
CLICK_ALIAS = "click"
_HOW_TO_GET = (
    "Reinstall napari-hnc to get its bundled models, train one with `napari-hnc train`, or put a model card "
    "<name>.json and the .safetensors file(s) it lists into {folders} (or into a folder named by the "
    f"{ENV_VAR} environment variable), or pass the path of a card"
)


@dataclass(frozen=True)
class ModelEntry:
    """A model card found on disk: its name, file, origin ("user", "bundled" or "path") and contents."""

    name: str
    card_path: Path
    source: str
    card: ModelCard

    def load(self) -> Model:
        return load_model_file(self.card_path)


def bundled_dir() -> Path:
    """The package's ``models/weights`` folder."""
    return Path(str(resources.files("napari_hnc.models") / "weights"))


def user_model_dirs() -> list[Path]:
    """User model folders: ``$NAPARI_HNC_MODELS`` (several allowed) or the platform's user data folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    import platformdirs

    return [Path(platformdirs.user_data_dir("napari-hnc")) / "models"]


def _card_files(folder: Path) -> list[Path]:
    """``folder/*.json`` and ``folder/<sub>/<sub>.json`` (a model in its own folder), sorted."""
    if not folder.is_dir():
        return []
    own = [sub / f"{sub.name}.json" for sub in sorted(folder.iterdir())
           if sub.is_dir() and not sub.name.startswith(".") and (sub / f"{sub.name}.json").is_file()]
    return sorted(folder.glob("*.json")) + own


def _cards_in(folder: Path, source: str) -> list[ModelEntry]:
    entries = []
    for path in _card_files(folder):
        try:
            card = ModelCard.read(path)
        except ModelError as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        entries.append(ModelEntry(card.name, path, source, card))
    return entries


def available_models() -> list[ModelEntry]:
    """All model cards found, user folders first, then bundled ones.

    >>> import os, tempfile
    >>> from napari_hnc.models import Model, preset_card, save_model
    >>> folder = tempfile.mkdtemp()
    >>> card = preset_card("auto", name="my-model")
    >>> _ = save_model(Model.random(card).networks, card, folder)
    >>> previous = os.environ.get(ENV_VAR)
    >>> os.environ[ENV_VAR] = folder
    >>> [(entry.name, entry.source) for entry in available_models() if entry.source == "user"]
    [('my-model', 'user')]
    >>> _ = os.environ.pop(ENV_VAR) if previous is None else os.environ.update({ENV_VAR: previous})
    """
    entries = []
    for folder in user_model_dirs():
        entries += _cards_in(folder, "user")
    return entries + _cards_in(bundled_dir(), "bundled")


def find_model(model: str | os.PathLike, *, task: str | None = None) -> ModelEntry:
    """The model entry for a card path, a name or an alias.

    Parameters
    ----------
    model : str or path
        A ``.json`` card file, a folder holding exactly one card, a card name or an alias
        (``"default"``, ``"click"``).
    task : {"automatic", "click"}, optional
        Only accept a model made for this task.

    Raises
    ------
    ModelError
        Nothing matches (the message lists what is installed and how to get models).
    """
    entry = _find_by_path(Path(model).expanduser()) if _looks_like_path(model) else _find_by_name(str(model))
    if task is not None and entry.card.task != task:
        raise ModelError(
            f"model {entry.name!r} ({entry.card_path}) is made for the {entry.card.task!r} task, not {task!r}; "
            f"pick a {task} model (installed: {describe_installed()})"
        )
    return entry


def load_model(model: str | os.PathLike | Model, *, task: str | None = None) -> Model:
    """Load a model by card path, name or alias (a :class:`Model` is returned as it is).

    >>> import tempfile
    >>> from napari_hnc.models import Model, preset_card, save_model
    >>> card = preset_card("auto", name="my-model", folds=2)
    >>> path = save_model(Model.random(card).networks, card, tempfile.mkdtemp())
    >>> load_model(path)
    Model('my-model', SENormResUNet, 2 network(s), cpu)
    """
    if isinstance(model, Model):
        if task is not None and model.card.task != task:
            raise ModelError(f"model {model.card.name!r} is made for the {model.card.task!r} task, not {task!r}")
        return model
    return find_model(model, task=task).load()


def _looks_like_path(model: str | os.PathLike) -> bool:
    text = os.fspath(model)
    return isinstance(model, os.PathLike) or text.endswith(".json") or os.sep in text or "/" in text


def _find_by_path(path: Path) -> ModelEntry:
    if path.is_dir():
        cards = [path / f"{path.name}.json"] if (path / f"{path.name}.json").is_file() else [
            p for p in sorted(path.glob("*.json")) if p.name not in NOT_CARDS]
        if len(cards) != 1:
            raise ModelError(f"{path} holds {len(cards)} model cards (*.json); pass the card file you want")
        path = cards[0]
    if not path.is_file():
        raise ModelError(f"the model card {path} does not exist; check the path (installed models: {describe_installed()})")
    card = ModelCard.read(path)
    return ModelEntry(card.name, path, "path", card)


def _find_by_name(name: str) -> ModelEntry:
    entries = available_models()
    for entry in entries:
        if entry.name == name:
            return entry
    for entry in entries:
        if name in entry.card.aliases:
            return entry
    folders = ", ".join(str(d) for d in user_model_dirs())
    raise ModelError(
        f"no model named {name!r} is installed (installed: {describe_installed(entries)}). "
        + _HOW_TO_GET.format(folders=folders)
    )


def describe_installed(entries: list[ModelEntry] | None = None) -> str:
    """A short list of installed models for messages ("none" when there are none)."""
    entries = available_models() if entries is None else entries
    if not entries:
        return "none"
    return ", ".join(
        f"{e.name}{' (' + '/'.join(e.card.aliases) + ')' if e.card.aliases else ''} [{e.source}]" for e in entries
    )
