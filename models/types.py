"""The narration brain's values: gaps in the sound, observations, descriptions and timelines."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS = (1, 2, 3)
"""Verbosity levels: 1 brief, 2 standard, 3 detailed."""

SOURCES = ("track", "describe_now", "answer", "system")
"""Where a description usually comes from; other names are allowed (the player adds its own)."""


@dataclass(frozen=True)
class Gap:
    """A stretch of the programme, in seconds, with no speech: room for narration."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"A gap needs finite times, not {self.start} to {self.end}.")
        if self.end < self.start:
            raise ValueError(f"A gap cannot end ({self.end} s) before it starts ({self.start} s).")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def contains(self, t: float) -> bool:
        """True when ``start <= t < end``."""
        return self.start <= t < self.end


@dataclass(frozen=True)
class Observation:
    """Something a perception stage noticed at time ``t`` (a scene cut, a face, on-screen text)."""

    t: float
    kind: str
    text: str
    confidence: float = 1.0
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Description:
    """One thing to say at ``start`` seconds.

    ``level`` is the least verbosity at which it is spoken (1 brief, 2 standard, 3 detailed);
    ``priority`` is 0 low, 1 normal, 2 high; ``source`` names where it came from.

    Live descriptions name people the listener has met ("The second person is back."): such a
    one ``refers`` to those people's ids, and ``plain`` says the same without relying on an
    earlier sentence ("New shot: a person standing in the centre."), for a listener who never
    heard them introduced (that sentence found no room). ``introduces`` lists the people it
    introduces.
    """

    start: float
    text: str
    level: int = 2
    priority: int = 1
    source: str = "track"
    end: float | None = None
    ident: str = ""
    refers: tuple[int, ...] = ()
    introduces: tuple[int, ...] = ()
    plain: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.start) or self.start < 0:
            raise ValueError(f"A description must start at zero seconds or later, "
                             f"not at {self.start}.")
        if not self.text.strip():
            raise ValueError("A description needs some text; this one is empty.")
        if self.level not in LEVELS:
            raise ValueError(f"A description's level must be 1 (brief), 2 (standard) or "
                             f"3 (detailed), not {self.level!r}.")
        if self.end is not None and (not math.isfinite(self.end) or self.end < self.start):
            raise ValueError(f"A description cannot end ({self.end} s) before it starts "
                             f"({self.start} s).")

    @property
    def words(self) -> int:
        return len(self.text.split())


def _level_index(level: int) -> int:
    """Clamp a verbosity to 0..3; 0 selects nothing."""
    return max(0, min(3, int(level)))


@dataclass(frozen=True)
class Timeline:
    """Descriptions and gaps of one programme, each sorted by start time."""

    descriptions: Sequence[Description] = ()
    gaps: Sequence[Gap] = ()
    _levels: tuple[tuple[Description, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False, default=())
    _starts: tuple[tuple[float, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False, default=())

    def __post_init__(self) -> None:
        cues = tuple(sorted(self.descriptions, key=lambda d: d.start))
        object.__setattr__(self, "descriptions", cues)
        object.__setattr__(self, "gaps", tuple(sorted(self.gaps, key=lambda g: g.start)))
        levels = tuple(tuple(d for d in cues if d.level <= n) for n in range(4))
        object.__setattr__(self, "_levels", levels)
        object.__setattr__(self, "_starts", tuple(tuple(d.start for d in c) for c in levels))

    def __len__(self) -> int:
        return len(self.descriptions)

    def for_level(self, level: int) -> tuple[Description, ...]:
        """The cues spoken at verbosity ``level`` (those with ``d.level <= level``), by start."""
        return self._levels[_level_index(level)]

    def due(self, after: float, until: float, level: int) -> tuple[Description, ...]:
        """Cues for ``level`` with ``after < start <= until``."""
        n = _level_index(level)
        starts = self._starts[n]
        return self._levels[n][bisect_right(starts, after):bisect_right(starts, until)]

    def next_after(self, t: float, level: int) -> Description | None:
        """The first cue for ``level`` that starts after ``t``."""
        n = _level_index(level)
        i = bisect_right(self._starts[n], t)
        return self._levels[n][i] if i < len(self._levels[n]) else None

    def latest_before(self, t: float, level: int) -> Description | None:
        """The last cue for ``level`` that starts at or before ``t``."""
        n = _level_index(level)
        i = bisect_right(self._starts[n], t)
        return self._levels[n][i - 1] if i > 0 else None

    def gap_at(self, t: float) -> Gap | None:
        """The gap that contains ``t``, if any."""
        return next((gap for gap in self.gaps if gap.contains(t)), None)
