"""Project-wide conventions, each stated once: label classes and display defaults."""

from __future__ import annotations

#: Label values (HECKTOR 2022 convention).
BACKGROUND, PRIMARY, NODE = 0, 1, 2

#: Human-readable class names, by label value.
CLASS_NAMES: dict[int, str] = {BACKGROUND: "background", PRIMARY: "primary tumour", NODE: "lymph node"}

#: Short names accepted on the command line and in APIs (``--click X,Y,Z:node``).
CLASS_ALIASES: dict[str, int] = {
    "background": BACKGROUND,
    "bg": BACKGROUND,
    "primary": PRIMARY,
    "tumour": PRIMARY,
    "tumor": PRIMARY,
    "gtvp": PRIMARY,
    "node": NODE,
    "lymph node": NODE,
    "ln": NODE,
    "gtvn": NODE,
}

#: RGBA colours of the classes in the napari Labels layer and the PNG renderings: green and blue, far
#: from every colour of the hot-iron PET (black, red, yellow, white) and from the CT's greys.
CLASS_COLORS: dict[int, tuple[float, float, float, float]] = {
    BACKGROUND: (0.0, 0.0, 0.0, 0.0),
    PRIMARY: (0.1, 0.9, 0.2, 1.0),
    NODE: (0.2, 0.6, 1.0, 1.0),
}

#: Name endings of files napari-hnc derives from a study, which no dataset layout ever takes for an
#: image or for reference labels: ``<case>_pred.nii.gz`` (a model's prediction, written by
#: ``napari-hnc segment``) and ``<case>_instances.nii.gz`` (the lesion-instance map saved beside labels).
PREDICTION_SUFFIX = "_pred"
INSTANCES_SUFFIX = "_instances"
DERIVED_SUFFIXES = (PREDICTION_SUFFIX, INSTANCES_SUFFIX)

#: CT display windows as (width, level) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft tissue": (400.0, 40.0),
    "bone": (1800.0, 400.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
}
DEFAULT_CT_WINDOW = "soft tissue"

#: PET display: contrast from 0 SUV to max(PET_MIN_DISPLAY_MAX, this percentile of the volume).
PET_DISPLAY_PERCENTILE = 99.9
PET_MIN_DISPLAY_MAX = 10.0

#: A PET whose maximum exceeds this is almost certainly in Bq/ml, not SUV.
SUV_PLAUSIBLE_MAX = 1000.0


def unknown_classes(array) -> list[int]:
    """Label values in ``array`` (whole numbers >= 0) that are not a class: anything but 0, 1 and 2.

    >>> import numpy as np
    >>> unknown_classes(np.array([0, 1, 2, 7, 7, 3], np.uint8))
    [3, 7]
    """
    import numpy as np

    values = np.asarray(array)
    if not values.size or int(values.max()) <= max(CLASS_NAMES):
        return []
    counts = np.bincount(values.ravel().astype(np.intp, copy=False))
    return [int(v) for v in np.flatnonzero(counts) if v not in CLASS_NAMES]


def class_value(name: str | int) -> int:
    """Return the label value of a class given by value or name (``"primary"``, ``"node"``...).

    >>> class_value("node"), class_value(1)
    (2, 1)
    """
    if isinstance(name, int):
        if name in CLASS_NAMES:
            return name
        raise ValueError(f"label class {name} is not one of {sorted(CLASS_NAMES)}")
    key = str(name).strip().lower()
    if key.isdigit():
        return class_value(int(key))
    if key in CLASS_ALIASES:
        return CLASS_ALIASES[key]
    raise ValueError(
        f"unknown label class {name!r}; use one of 'primary' (1) or 'node' (2)"
    )


def ct_contrast_limits(window: str | tuple[float, float] = DEFAULT_CT_WINDOW) -> tuple[float, float]:
    """Contrast limits (min, max) in HU for a named window or a (width, level) pair.

    >>> ct_contrast_limits("soft tissue")
    (-160.0, 240.0)
    """
    width, level = CT_WINDOWS[window] if isinstance(window, str) else window
    return (level - width / 2.0, level + width / 2.0)
