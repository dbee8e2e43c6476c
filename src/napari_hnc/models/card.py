"""Model cards: the JSON file beside a model's weights that says how to run it.

A card fixes everything inference needs (architecture and its arguments, input
channels, voxel spacing, patch size, intensity preprocessing, classes, the
weight files of an ensemble) and records where the model came from (training
data, command, measured scores). A click-guided card may add ``zoomed_weights``: networks of the
same architecture that take over from ``weights`` a lesion those found large on a region seen at a
coarser spacing than the card's (:meth:`napari_hnc.inference.engines.ModelEngine.networks_for`). Example ``hnc-auto.json``::

    {
      "format_version": 1,
      "name": "hnc-auto",
      "task": "automatic",
      "aliases": ["default"],
      "architecture": "SENormResUNet",
      "arguments": {"base_channels": 8, "depth": 3},
      "inputs": ["ct", "pet"],
      "spacing_mm": [2.5, 2.5, 2.5],
      "patch_size": [96, 96, 96],
      "preprocessing": {"ct_window": [-1024, 1024], "ct_range": [-1, 1], "pet": "zscore"},
      "classes": {"0": "background", "1": "primary tumour", "2": "lymph node"},
      "weights": ["hnc-auto_fold0.safetensors", "hnc-auto_fold1.safetensors"],
      "training": {"data": "...", "command": "napari-hnc train ..."},
      "scores": {"dice_primary": 0.0}
    }
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from ..conventions import CLASS_NAMES
from ..errors import ModelError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
IMAGE_INPUTS = ("ct", "pet")
CLICK_INPUTS = ("positive_clicks", "negative_clicks", "previous_mask")
KNOWN_INPUTS = IMAGE_INPUTS + CLICK_INPUTS
#: How far (mm, per axis) a click model's region may grow to hold a lesion that reaches its sides (about 20 cm).
MAX_REGION_MM = 200.0
Task = Literal["automatic", "click"]


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise ModelError(f"model card field {what!r} must be a list, got {value!r}") from None


def _triple(value: Any, what: str) -> list[float]:
    values = _as_list(value, what)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ModelError(f"model card field {what!r} needs 3 values (one per axis), got {value!r}")
    return values


def _pair(value: Any, what: str) -> tuple[float, float]:
    values = _as_list(value, what)
    if len(values) != 2:
        raise ModelError(f"{what} needs 2 values, got {value!r}")
    return float(values[0]), float(values[1])


@dataclass(frozen=True)
class Preprocessing:
    """Intensity preprocessing of the network inputs.

    Parameters
    ----------
    ct_window : (float, float)
        HU interval the CT is clipped to (seed 000: -1024..1024; seed 004: -150..150).
    ct_range : (float, float)
        Values the window's ends map to, linearly (seed 000: -1..1; seed 004: 0..1).
    pet : {"zscore", "minmax", "suv"}
        "zscore": (SUV - mean) / std over the PET's non-zero voxels (seed 000);
        "minmax": SUV / max to 0..1 (seed 004); "suv": SUV / ``pet_scale``.
    pet_clip : float or None
        SUV values above this are clipped first.
    pet_scale : float
        Divisor for ``pet="suv"``.
    """

    ct_window: tuple[float, float] = (-1024.0, 1024.0)
    ct_range: tuple[float, float] = (-1.0, 1.0)
    pet: Literal["zscore", "minmax", "suv"] = "zscore"
    pet_clip: float | None = None
    pet_scale: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ct_window", _pair(self.ct_window, "preprocessing.ct_window"))
        object.__setattr__(self, "ct_range", _pair(self.ct_range, "preprocessing.ct_range"))
        if self.ct_window[1] <= self.ct_window[0]:
            raise ModelError(f"preprocessing.ct_window must be increasing, got {list(self.ct_window)}")
        if self.pet not in ("zscore", "minmax", "suv"):
            raise ModelError(f"preprocessing.pet must be 'zscore', 'minmax' or 'suv', not {self.pet!r}")
        if self.pet_scale <= 0:
            raise ModelError("preprocessing.pet_scale must be positive")


@dataclass(frozen=True)
class ClickEncoding:
    """How clicks become input channels: ``"edt"`` (1 - distance / radius, clipped at 0) or ``"disk"``."""

    kind: Literal["edt", "disk"] = "edt"
    radius_mm: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in ("edt", "disk"):
            raise ModelError(f"click_encoding.kind must be 'edt' or 'disk', not {self.kind!r}")
        if not self.radius_mm > 0:
            raise ModelError("click_encoding.radius_mm must be positive")


@dataclass(frozen=True)
class ModelCard:
    """What a model is and how to run it (see the module docstring for the JSON).

    Examples
    --------
    >>> card = ModelCard(name="tiny", architecture="SENormResUNet", arguments={"base_channels": 4, "depth": 2},
    ...                  weights=("tiny.safetensors",))
    >>> card.in_channels, card.out_channels, card.is_click_guided
    (2, 3, False)
    >>> ModelCard.from_dict(card.to_dict()) == card
    True
    """

    name: str
    architecture: str
    weights: tuple[str, ...]
    zoomed_weights: tuple[str, ...] = ()
    arguments: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = IMAGE_INPUTS
    task: Task = "automatic"
    spacing_mm: tuple[float, float, float] = (2.5, 2.5, 2.5)
    patch_size: tuple[int, int, int] = (96, 96, 96)
    preprocessing: Preprocessing = Preprocessing()
    click_encoding: ClickEncoding = ClickEncoding()
    classes: dict[int, str] = field(default_factory=lambda: dict(CLASS_NAMES))
    min_region_ml: float = 0.1
    max_region_mm: float = MAX_REGION_MM
    aliases: tuple[str, ...] = ()
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _set(self, "weights", tuple(str(w) for w in _as_list(self.weights, "weights")))
        _set(self, "zoomed_weights", tuple(str(w) for w in _as_list(self.zoomed_weights, "zoomed_weights")))
        _set(self, "inputs", tuple(str(i) for i in _as_list(self.inputs, "inputs")))
        _set(self, "aliases", tuple(str(a) for a in _as_list(self.aliases, "aliases")))
        _set(self, "spacing_mm", tuple(float(v) for v in _triple(self.spacing_mm, "spacing_mm")))
        _set(self, "patch_size", tuple(int(v) for v in _triple(self.patch_size, "patch_size")))
        _set(self, "classes", {int(k): str(v) for k, v in dict(self.classes).items()})
        self._validate()

    def _validate(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ModelError(f"a model card needs a plain name (no slashes), got {self.name!r}")
        if not self.weights:
            raise ModelError(f"model card {self.name!r} lists no weight files; add them under \"weights\"")
        if self.zoomed_weights and not self.is_click_guided:
            raise ModelError(f"model card {self.name!r}: zoomed_weights are for click-guided models (a lesion's region "
                             "seen coarser); remove them from this automatic model's card")
        unknown = [i for i in self.inputs if i not in KNOWN_INPUTS]
        if unknown or not self.inputs:
            raise ModelError(f"model card {self.name!r}: unknown inputs {unknown}; use some of {list(KNOWN_INPUTS)}")
        if self.task not in ("automatic", "click"):
            raise ModelError(f"model card {self.name!r}: task must be 'automatic' or 'click', not {self.task!r}")
        if self.task == "click" and not self.is_click_guided:
            raise ModelError(f"model card {self.name!r} has task 'click' but no click inputs {list(CLICK_INPUTS)}")
        if any(s <= 0 for s in self.spacing_mm) or any(p < 1 for p in self.patch_size):
            raise ModelError(f"model card {self.name!r}: spacing_mm and patch_size must be positive")
        if not self.max_region_mm > 0:
            raise ModelError(f"model card {self.name!r}: max_region_mm must be positive, got {self.max_region_mm}")
        if sorted(self.classes) != list(range(len(self.classes))) or len(self.classes) < 2:
            raise ModelError(f"model card {self.name!r}: classes must be numbered 0..n-1 (0 background)")

    # ----------------------------------------------------------------- derived
    @property
    def in_channels(self) -> int:
        return len(self.inputs)

    @property
    def out_channels(self) -> int:
        return len(self.classes)

    @property
    def is_click_guided(self) -> bool:
        return any(i in CLICK_INPUTS for i in self.inputs)

    @property
    def needs(self) -> tuple[str, ...]:
        """The images (``"ct"``, ``"pet"``) a study must have for this model."""
        return tuple(i for i in IMAGE_INPUTS if i in self.inputs)

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = {str(k): v for k, v in self.classes.items()}
        for key in ("weights", "zoomed_weights", "inputs", "aliases", "spacing_mm", "patch_size"):
            out[key] = list(out[key])
        if not out["zoomed_weights"]:
            del out["zoomed_weights"]
        out["preprocessing"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["preprocessing"].items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "model card") -> "ModelCard":
        if not isinstance(data, dict):
            raise ModelError(f"{source}: a model card is a JSON object, got {type(data).__name__}")
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ModelError(f"{source}: card format {version} is newer than this napari-hnc reads; update napari-hnc")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("name", "architecture", "weights") if k not in data]
        if missing:
            raise ModelError(f"{source}: the card misses {missing}; every card needs name, architecture and weights")
        extra = sorted(set(data) - known)
        if extra:
            log.warning("%s: ignoring unknown card fields %s", source, extra)
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            if "preprocessing" in kwargs:
                kwargs["preprocessing"] = Preprocessing(**kwargs["preprocessing"])
            if "click_encoding" in kwargs:
                kwargs["click_encoding"] = ClickEncoding(**kwargs["click_encoding"])
            return cls(**kwargs)
        except TypeError as exc:
            raise ModelError(f"{source}: a field has the wrong form ({exc}); compare it with a card napari-hnc wrote") from exc
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        """Read a card from its JSON file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model card {path} does not exist; check the path") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model card {path} is not readable JSON ({exc}); fix or re-export it") from exc
        return cls.from_dict(data, source=str(path))

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def with_changes(self, **changes: Any) -> "ModelCard":
        return replace(self, **changes)
