"""FINN's settings, one build at a time: its passes need FINN_BUILD_DIR.
`finn_build_dir(path)` sets it (and FINN's settings) for the duration of a
build and restores the previous value, so two builds in one process never
share a folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _reinit() -> None:
    from finn.util import settings
    settings._SETTINGS = None
    settings.initialize_dummy_settings()


@contextlib.contextmanager
def finn_build_dir(path: Path | None = None):
    """FINN_BUILD_DIR = path (a fresh temporary folder if None) inside the block."""
    old = os.environ.get("FINN_BUILD_DIR")
    path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="sdbnn-finn-"))
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(path)
    _reinit()
    try:
        yield path
    finally:
        from finn.util import settings
        if old is None:
            os.environ.pop("FINN_BUILD_DIR", None)
            settings._SETTINGS = None
        else:
            os.environ["FINN_BUILD_DIR"] = old
            _reinit()
