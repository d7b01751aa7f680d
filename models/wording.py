"""Small wording helpers for what the user reads and hears."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and the noun, singular for one: "1 description", "2 descriptions"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
