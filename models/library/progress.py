"""The library's progress: films done, minutes of film analysed, speed and time left.

On a terminal it is one bar, redrawn in place every few seconds; anywhere else (a pipe, a log file, a screen
reader reading the output line by line) it is a plain line after each film and at least every
``every`` seconds while films are under way, e.g. "Library: 3 of 10 films, 12.5 of 40 minutes
of film analysed, 2.1 minutes of film a minute, about 13 minutes left."
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from models.library.job import FilmOutcome

BAR_WIDTH = 20
TERMINAL_EVERY = 5.0
"""Seconds between redraws of the bar on a terminal, as narrate prepare's own lines."""


def minutes(seconds: float) -> str:
    value = seconds / 60
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def time_left(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute left"
    whole = round(seconds / 60)
    hours, mins = divmod(whole, 60)
    parts = ([f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []) + (
        [f"{mins} minute{'s' if mins != 1 else ''}"] if mins or not hours else [])
    return f"about {' '.join(parts)} left"


@dataclass
class LibraryProgress:
    """Counts the library's films and minutes as they are analysed, and says how far it got.

    ``lengths``: each film's length in seconds (0 where its header did not say).
    """

    lengths: dict[str, float]
    stream: TextIO
    terminal: bool = False
    every: float = 15.0
    clock: Callable[[], float] = time.monotonic
    finished: dict[str, FilmOutcome] = field(default_factory=dict)
    under_way: dict[str, float] = field(default_factory=dict)  # film: seconds analysed
    began: float = 0.0
    last: float = 0.0
    drawn: bool = False

    def __post_init__(self) -> None:
        self.began = self.last = self.clock()

    # what the runner reports
    def position(self, video: str, seconds: float, duration: float) -> None:
        if duration > 0 and not self.lengths.get(video):
            self.lengths[video] = duration
        self.under_way[video] = seconds
        self.tick()

    def restarted(self, video: str) -> None:
        """A worker died and the film starts again: what it had analysed no longer counts."""
        self.under_way.pop(video, None)

    def film_done(self, outcome: FilmOutcome) -> None:
        self.under_way.pop(outcome.video, None)
        self.finished[outcome.video] = outcome
        if outcome.duration > 0:
            self.lengths[outcome.video] = outcome.duration
        self.say(film_line(outcome))
        self.say(self.line(), bar=True)

    def say(self, text: str, bar: bool = False) -> None:
        """Print ``text``; on a terminal the bar is redrawn below it."""
        if self.terminal:
            clear = "\r\033[K" if self.drawn else ""
            if bar:
                self.stream.write(f"{clear}{self.bar()} {text}")
                self.drawn = True
            else:
                self.stream.write(f"{clear}{text}\n")
                self.drawn = False
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()
        if bar:
            self.last = self.clock()

    def tick(self) -> None:
        """Say the progress if it is time to: on a terminal the bar is redrawn every few
        seconds (often enough to see it move, seldom enough for a screen reader reading the
        terminal), elsewhere a line every ``every`` seconds."""
        every = TERMINAL_EVERY if self.terminal else self.every
        if self.clock() - self.last >= every and self.under_way:
            self.say(self.line(), bar=True)

    def close(self) -> None:
        if self.terminal and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

    # the figures
    def analysed(self) -> float:
        """Seconds of film analysed in this run (films skipped as prepared do not count)."""
        done = sum(o.duration for o in self.finished.values() if o.state == "done")
        return done + sum(self.under_way.values())

    def to_do(self) -> float:
        """Seconds of film this run has to analyse: all but the skipped and failed films."""
        passed = {v for v, o in self.finished.items() if o.state in ("skipped", "failed")}
        return sum(s for v, s in self.lengths.items() if v not in passed)

    def speed(self) -> float:
        """Seconds of film analysed per second of wall time (0 before the first figures)."""
        took = self.clock() - self.began
        return self.analysed() / took if took > 0 else 0.0

    def share(self) -> float:
        total = self.to_do()
        if total > 0:
            return min(1.0, self.analysed() / total)
        return len(self.finished) / len(self.lengths) if self.lengths else 1.0

    def line(self) -> str:
        total, films = self.to_do(), len(self.lengths)
        parts = [f"Library: {len(self.finished)} of {films} film{'s' if films != 1 else ''}",
                 f"{minutes(self.analysed())} of {minutes(total)} minutes of film analysed"]
        speed = self.speed()
        if speed > 0:
            parts.append(f"{speed:.1f} minutes of film a minute")
            left = max(0.0, total - self.analysed())
            if len(self.finished) < films:
                parts.append(time_left(left / speed))
        return ", ".join(parts) + "."

    def bar(self) -> str:
        full = round(self.share() * BAR_WIDTH)
        return f"[{'#' * full}{'-' * (BAR_WIDTH - full)}]"


def film_line(outcome: FilmOutcome) -> str:
    """One plain sentence for a film that ended."""
    name = outcome.video.rsplit("/", 1)[-1]
    again = f" (after {outcome.attempts} tries)" if outcome.attempts > 1 else ""
    if outcome.state == "done":
        count = f"{outcome.descriptions} description{'s' if outcome.descriptions != 1 else ''}"
        return (f"{name}: done{again}, {count}, {minutes(outcome.duration)} minutes of film in "
                f"{outcome.seconds:.0f} seconds.")
    if outcome.state == "skipped":
        return f"{name}: skipped, {outcome.reason}."
    if outcome.state == "stopped":
        return f"{name}: stopped. {outcome.reason}"
    if name in outcome.reason and not again:
        return outcome.reason
    return f"{name} failed{again}: {outcome.reason}"
