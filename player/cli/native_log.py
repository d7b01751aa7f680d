"""Keep native libraries' chatter off the terminal (terminal mode, ``narrate prepare``).

mediapipe, TensorFlow Lite and llama.cpp write progress lines ("Created TensorFlow Lite XNNPACK
delegate", "Feedback manager requires...") straight to the process's standard error, below
Python. In terminal mode a screen reader reads everything that appears, so those lines are
written to a log file instead, while what the player itself says (Python's ``sys.stderr`` and
logging) still appears on the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)
_DIVERTED: Path | None = None  # where fd 2 points, once diverted (the first call wins)


def divert_native_stderr(path: Path) -> Path | None:
    """Point file descriptor 2 at ``path`` (the native libraries' stderr) and give Python a new
    ``sys.stderr`` on the terminal it had. Only when standard error is a terminal (where a
    screen reader reads it); redirected to a file or a pipe, everything stays there. The log of
    the run before is kept beside it (``path`` + ``.1``), so a crash's last words survive one
    restart. Returns ``path``, or None when nothing changed."""
    global _DIVERTED  # noqa: PLW0603
    old = sys.stderr
    if _DIVERTED is not None:
        return _DIVERTED
    try:
        if old is None or not old.isatty():
            return None
        terminal_fd = os.dup(old.fileno())
    except (OSError, ValueError, AttributeError):  # no stderr, or not a real file (a test's capture)
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        os.close(terminal_fd)
        log.info("native libraries' messages stay on the terminal: %s", exc)
        return None
    old.flush()
    os.dup2(log_fd, 2)
    os.close(log_fd)
    new = os.fdopen(terminal_fd, "w", buffering=1, encoding=getattr(old, "encoding", None),
                    errors="backslashreplace")
    sys.stderr = new
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is old:
            handler.setStream(new)
    _DIVERTED = path
    return path
