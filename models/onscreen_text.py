"""On-screen numbers that change in place: counters, clocks and timecodes.

A test pattern's running counter or a clock in a corner shows new digits every second. Read
each time, it fills the narration with "Text on screen: 38.", "88.", "113.". A number is read
the first time it appears in a place; when another number replaces it in that place soon
after, the narrator says once that a counter runs there, and then keeps quiet about that place
while the numbers keep changing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NUMERIC = re.compile(r"^[\d\s:.,;/%+\-]+$")
"""Digits with the marks of times, dates, scores and counts, and nothing else."""
CHANGE_WITHIN = 10.0
"""Seconds: a number replaced by another in the same place within this is a counter."""
QUIET_AFTER = 20.0
"""Seconds without a change after which a place is forgotten (a later number is read)."""

Box = Sequence[float]


def numeric(lines: Sequence[str]) -> bool:
    """Whether the text is only numbers (and their marks)."""
    return bool(lines) and all(NUMERIC.match(line.strip()) for line in lines)


def _same_place(a: Box, b: Box) -> bool:
    """The boxes (x0, y0, x1, y1, fractions of the frame) overlap or their centres are close:
    a changing number's box changes width with its digits."""
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    overlap = min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
    return overlap or (abs(ax - bx) < 0.1 and abs(ay - by) < 0.1)


@dataclass
class _Place:
    box: Box
    last: float  # media time of its last number
    counter: bool = False  # said to be a counter


class NumberWatch:
    """Decides, for each new on-screen text, whether to read it ("read"), to say a counter
    runs there ("counter", once per place) or to keep quiet ("quiet")."""

    def __init__(self) -> None:
        self._places: list[_Place] = []

    def judge(self, t: float, lines: Sequence[str], box: Box | None) -> str:
        if not numeric(lines) or box is None or len(box) != 4:
            return "read"
        self._places = [p for p in self._places if t - p.last <= QUIET_AFTER]
        place = next((p for p in self._places if _same_place(p.box, box)), None)
        if place is None:
            self._places.append(_Place(box, t))
            return "read"
        changed_soon = t - place.last <= CHANGE_WITHIN
        place.box, place.last = box, t
        if place.counter:
            return "quiet"
        if changed_soon:
            place.counter = True
            return "counter"
        return "read"
