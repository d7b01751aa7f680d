"""Checks on a media file before anything opens it: one plain sentence naming what is wrong."""

from __future__ import annotations

import os
from pathlib import Path


def check_path(path: str | os.PathLike[str]) -> str:
    """Return "" if ``path`` looks playable, else a message saying why not."""
    p = Path(path)
    name = p.name or str(p)
    if not p.exists():
        return f"No file named {name} was found at {p.parent}."
    if p.is_dir():
        return f"{name} is a folder, not a video file."
    if not os.access(p, os.R_OK):
        return f"{name} can't be opened: you don't have permission to read it."
    try:
        size = p.stat().st_size
    except OSError as exc:
        return f"{name} can't be opened: {exc.strerror or exc}."
    if size == 0:
        return f"{name} is empty (zero bytes), so there is nothing to play."
    return ""
