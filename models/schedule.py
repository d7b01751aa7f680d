"""Fitting descriptions into the pauses between dialogue: pure decisions, no clocks, no Qt.

The player asks two questions at each tick of the playhead: how much room is there now (a
``GapMap`` built from the dialogue detector's results), and what to do with a description whose
spoken length is known (``decide``). Export uses the same rules, so a described file sounds like
the live player.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from models.types import Gap

WORDS_PER_SECOND = 3.0  # about 180 words a minute: describers' rule of thumb at normal rate
MAX_SPEEDUP = 1.2  # speak at most 20% faster to fit a gap
STALE_AFTER = 1.0  # a description more than this late (after a seek) is not said
MAX_DEFER = 4.0  # how long a description may wait for a pause in the dialogue
AUTO_WAIT = 2.0  # how long an important one waits in automatic mode before pausing the film
AFTER_THE_END = "no room before the film ends"
NOT_KNOWN = "the dialogue there was not known yet"

_CLAUSE = re.compile(r"\s*(?:;|,|\s-\s|\s—\s|\s(?=(?:while|as|and then|then|with|who|which)\s))")


def word_budget(seconds: float) -> int:
    """How many words fit in ``seconds`` at a normal speaking rate."""
    return max(0, int(seconds * WORDS_PER_SECOND))


def clauses(text: str) -> list[str]:
    """Split a sentence into its clauses, most important (first) first."""
    parts = [p.strip(" ,;") for p in _CLAUSE.split(text.strip())]
    return [p for p in parts if p]


def shorten(text: str, max_words: int) -> str:
    """Drop trailing, lower-priority clauses until ``text`` has at most ``max_words`` words.

    Returns "" when even the first clause is too long. The result ends with a full stop.
    """
    if len(text.split()) <= max_words:
        return text
    kept: list[str] = []
    for clause in clauses(text):
        if len(" ".join([*kept, clause]).split()) > max_words:
            break
        kept.append(clause)
    if not kept:
        return ""
    out = ", ".join(kept).rstrip(".!?")
    return out[0].upper() + out[1:] + "."


@dataclass(frozen=True)
class Decision:
    """What to do with a description now."""

    action: str  # "speak" | "wait" | "drop" | "pause"
    speed: float = 1.0
    short: bool = False  # speak the shortened text
    reason: str = ""



@functools.lru_cache(maxsize=2048)  # the narrator asks on every tick for the sentences ahead
def short_form(text: str) -> str | None:
    """The shortened form (its first clause) that may be said when the whole sentence does not
    fit its pause; None when it has no shorter form."""
    parts = clauses(text)
    if len(parts) < 2:
        return None
    short = shorten(text, len(parts[0].split()))
    return short if short and short != text else None


def decide(late: float, waited: float, room: float | None, duration: float,
           short_duration: float | None, mode: str, important: bool = False,
           may_pause: bool = True) -> Decision:
    """Decide for a description whose full text lasts ``duration`` seconds when spoken.

    ``late``: how far the playhead is past the moment it should start (after a seek, the
    description is stale beyond ``STALE_AFTER``). ``waited``: how long it has waited for a pause.
    ``room``: seconds until dialogue resumes (``math.inf`` with no dialogue ahead, ``None`` when
    dialogue detection has not covered this moment yet). ``mode``: "duck" (inline: speak only in
    the pauses), "pause" (extended: pause the film when it does not fit) or "auto" (inline, but
    an ``important`` description that found no pause within ``AUTO_WAIT`` pauses the film,
    when ``may_pause``: the caller keeps count of how often).

    Unknown is not room: a description waits for dialogue detection (far faster than real
    time, so it is a moment at most); one that waited ``MAX_DEFER`` in vain pauses the film in
    extended mode and is left out in inline mode.
    """
    if late > STALE_AFTER:
        return Decision("drop", reason="stale")
    if room is not None:
        # The whole sentence, then the whole sentence a little faster, then its first clauses.
        options = [(duration, False)]
        if short_duration is not None:
            options.append((short_duration, True))
        for length, short in options:
            if length <= room:
                return Decision("speak", 1.0, short, "fits")
            if room > 0 and length <= room * MAX_SPEEDUP:
                return Decision("speak", length / room, short, "faster")
        if mode == "pause":
            return Decision("pause", reason="extended")
    if mode == "auto" and important and may_pause and waited >= AUTO_WAIT:
        return Decision("pause", reason="important")
    if waited < MAX_DEFER:
        return Decision("wait", reason="no room yet" if room is not None else NOT_KNOWN)
    if mode == "pause":
        return Decision("pause", reason="extended")
    return Decision("drop", reason="no room" if room is not None else NOT_KNOWN)


def important(desc_priority: int, desc_level: int) -> bool:
    """What automatic mode pauses the film for: a high-priority description (a new scene with
    people, text on screen) or one a describer marked as essential (said even at "brief")."""
    return desc_priority >= 2 or desc_level <= 1


class GapMap:
    """Where the dialogue pauses are, over the parts of the soundtrack analysed so far."""

    def __init__(self) -> None:
        self.gaps: list[Gap] = []
        self._starts: list[float] = []
        self.covered: list[tuple[float, float]] = []
        self.has_audio = True
        self.complete = False
        self.end: float | None = None  # the film's end: no room at or after it
        self.detection_failed = False  # dialogue detection gave up: what it missed is room

    def update(self, gaps: Iterable[Gap], covered: Sequence[tuple[float, float]],
               has_audio: bool = True, complete: bool = False,
               end: float | None = None) -> None:
        self.gaps = sorted(gaps, key=lambda g: g.start)
        self._starts = [g.start for g in self.gaps]
        self.covered = sorted(covered)
        self.has_audio = has_audio
        self.complete = complete
        self.end = end if end is not None and end > 0 else None

    def ended(self, t: float) -> bool:
        """Whether ``t`` is at or after the film's end (when it is known)."""
        return self.end is not None and t >= self.end

    def known(self, t: float) -> bool:
        return any(a <= t <= b for a, b in self.covered)

    def room_at(self, t: float) -> float | None:
        """Seconds of pause from ``t`` (0 inside dialogue, and from the film's end on); None
        where nothing is known yet. A pause never reaches past the film's end."""
        if self.ended(t):
            return 0.0
        room = self._room(t)
        return min(room, self.end - t) if room is not None and self.end is not None else room

    def _room(self, t: float) -> float | None:
        if not self.has_audio:
            return math.inf
        if not self.known(t):
            # Better said over the dialogue than never, when detection cannot tell.
            return math.inf if self.detection_failed else None
        i = bisect.bisect_right(self._starts, t) - 1
        if i >= 0 and self.gaps[i].start <= t < self.gaps[i].end:
            return self.gaps[i].end - t
        return 0.0

    def gap_at(self, t: float) -> Gap | None:
        """The pause that holds ``t``, if one is known."""
        i = bisect.bisect_right(self._starts, t) - 1
        return self.gaps[i] if i >= 0 and self.gaps[i].contains(t) else None

    def next_gap(self, t: float) -> Gap | None:
        i = bisect.bisect_right(self._starts, t)
        return self.gaps[i] if i < len(self.gaps) else None


@dataclass(frozen=True)
class Placement:
    """Where a description was placed in a described file, or why it was left out."""

    index: int  # position in the input
    start: float
    duration: float  # as spoken (after any speed-up)
    speed: float
    short: bool
    reason: str  # "fits", "faster", or why it was dropped
    placed: bool
    paused: bool = False  # said while the film is held at ``start`` (extended description)


def place(starts: Sequence[float], durations: Sequence[float],
          short_durations: Sequence[float | None], gaps: GapMap,
          step: float = 0.05, mode: str = "duck", important: Sequence[bool] = (),
          pauses_a_minute: int = 3) -> list[Placement]:
    """Place descriptions offline (for export) with the same rules the live player follows.

    Each description is tried from its own start, then every ``step`` seconds while it may wait
    (``MAX_DEFER``); it never starts before the previous one has ended, and one that finds no
    room before the film's end (``gaps.end``) is left out. In "pause" mode, and in "auto" mode
    for the ``important`` ones (at most ``pauses_a_minute`` a minute of film), a description
    that does not fit holds the film at its place while it is said (``paused``).
    """
    out: list[Placement] = []
    free_from = 0.0
    held: list[float] = []  # film times the film was held at (automatic mode counts them)
    for i, (start, length, short) in enumerate(zip(starts, durations, short_durations,
                                                   strict=True)):
        t = max(start, free_from)
        key = important[i] if i < len(important) else False
        while True:
            if gaps.ended(t):
                out.append(Placement(i, start, length, 1.0, False, AFTER_THE_END, False))
                break
            recent = [h for h in held if t - h < 60.0]
            d = decide(late=0.0, waited=t - start, room=gaps.room_at(t), duration=length,
                       short_duration=short, mode=mode, important=key,
                       may_pause=len(recent) < pauses_a_minute)
            if d.action == "pause":
                out.append(Placement(i, t, length, 1.0, False, d.reason, True, paused=True))
                held.append(t)
                free_from = t  # the film stood still while it was said
                break
            if d.action == "speak":
                spoken = (short if d.short and short is not None else length) / d.speed
                out.append(Placement(i, t, spoken, d.speed, d.short, d.reason, True))
                free_from = t + spoken
                break
            if d.action == "drop":
                out.append(Placement(i, start, length, 1.0, False, d.reason, False))
                break
            gap = gaps.next_gap(t) if gaps.room_at(t) == 0.0 else None
            t = gap.start if gap is not None else t + step
    return out
