"""Keep native libraries' chatter off the terminal in terminal mode.

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


def divert_native_stderr(path: Path) -> Path | None:
    """Point file descriptor 2 at ``path`` (the native libraries' stderr) and give Python a new
    ``sys.stderr`` on the terminal it had. Returns ``path``, or None when the log file cannot be
    made (then nothing changes)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        log.info("native libraries' messages stay on the terminal: %s", exc)
        return None
    old = sys.stderr
    old.flush()
    terminal_fd = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    new = os.fdopen(terminal_fd, "w", buffering=1, encoding=getattr(old, "encoding", None),
                    errors="backslashreplace")
    sys.stderr = new
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is old:
            handler.setStream(new)
    return path
