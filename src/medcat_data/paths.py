"""Where medcat keeps things on disk: ``MEDCAT_HOME`` and the raw cache layout."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "MEDCAT_HOME"


def medcat_home() -> Path:
    """Return ``$MEDCAT_HOME``, defaulting to the platform's user cache dir."""
    value = os.environ.get(HOME_ENV)
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("medcat", appauthor=False))


def raw_dir(dataset_id: str, version: str) -> Path:
    """Return the default cache folder of one dataset version: ``$MEDCAT_HOME/raw/<id>/<version>``."""
    return medcat_home() / "raw" / dataset_id / version
