"""Where derived files (description tracks, analysis results) of a video are cached on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20
"""Bytes hashed from each end of a file."""


def content_key(path: str | os.PathLike[str]) -> str:
    """A key for a file's content alone: its size and its first and last MiB, hashed.

    Names and times do not count, so a renamed copy maps to the same key.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(f"size={size}\n".encode())
        digest.update(handle.read(CHUNK))
        if size > CHUNK:
            handle.seek(max(CHUNK, size - CHUNK))
            digest.update(b"\ntail\n")
            digest.update(handle.read(CHUNK))
    return digest.hexdigest()[:32]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/video-narrator``, else ``~/.cache/video-narrator``; not created here."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "video-narrator"


def cache_path(path: str | os.PathLike[str], kind: str, suffix: str) -> Path:
    """``cache_dir()/kind/<content key><suffix>`` for the file at ``path``."""
    if not kind or kind in (".", "..") or "/" in kind or os.sep in kind:
        raise ValueError(f"A cache kind must be a plain folder name, not {kind!r}.")
    return cache_dir() / kind / f"{content_key(path)}{suffix}"
