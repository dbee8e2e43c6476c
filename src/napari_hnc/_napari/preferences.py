"""napari-hnc as the reader napari uses for study files, without a question at every File > Open.

npe2 offers every reader that accepts a path, and napari's built-in reader accepts all files, so
a more specific filename pattern alone does not stop napari asking. What does is napari's own
preference (Preferences > Plugins > "File extension readers", the same as ticking "remember this
choice" in the question): napari-hnc fills it in for the study file patterns the user has not
chosen a reader for, and never changes one the user chose.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: file patterns napari-hnc reads as a study (napari.yaml's reader patterns)
STUDY_PATTERNS = ("*.nii.gz", "*.nii", "*.dcm")
PLUGIN = "napari-hnc"


def prefer_hnc_reader() -> list[str]:
    """Make napari-hnc napari's reader for :data:`STUDY_PATTERNS` where no reader was chosen; returns those set."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    chosen = dict(plugins.extension2reader)
    added = [pattern for pattern in STUDY_PATTERNS if pattern not in chosen]
    if added:
        plugins.extension2reader = {**chosen, **{pattern: PLUGIN for pattern in added}}
        log.info("napari-hnc reads %s from File > Open (Preferences > Plugins to change)", ", ".join(added))
    return added
