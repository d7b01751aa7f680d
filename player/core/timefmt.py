"""Times for display ("1:05") and for speech ("1 minute 5 seconds")."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``75.4`` -> ``"1:15"``; hours when needed: ``"1:02:03"``."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def spoken(seconds: float) -> str:
    """``75.4`` -> ``"1 minute 15 seconds"``: words a screen reader says naturally."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = []
    for value, unit in ((h, "hour"), (m, "minute"), (sec, "second")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    return " ".join(parts) or "0 seconds"
