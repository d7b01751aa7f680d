"""A library run: the films found, those prepared already passed over, the rest handed to a
runner (this process, or a Ray cluster), the progress said, and the report made at the end,
even when Ctrl-C ends the run (then the films under way are "stopped", and nothing is written
for them; every film finished before is kept)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from models.library.film import prepared_track
from models.library.films import FilmList, film_seconds
from models.library.job import FilmOutcome, LibrarySettings
from models.library.progress import LibraryProgress
from models.library.report import LibraryReport


class RunSink(Protocol):
    """What a runner tells the run about the films it was given."""

    def started(self, video: str, pid: int, host: str, attempt: int) -> None: ...
    def position(self, video: str, seconds: float, duration: float) -> None: ...
    def line(self, video: str, text: str) -> None: ...
    def outcome(self, outcome: FilmOutcome) -> None: ...


class Runner(Protocol):
    """Prepares films, each exactly once, telling ``sink`` as they go; on KeyboardInterrupt
    it stops the films under way (nothing is written for them) and raises it again."""

    workers: int
    where: str  # "" for this process, "local" for an embedded cluster, else its address

    def run(self, films: list[Path], settings: LibrarySettings, sink: RunSink) -> None: ...


@dataclass
class LibraryRun:
    """One run over a library. ``on_start`` hears each film begin (with its worker's process
    id and the attempt), for tests and tools that watch the workers."""

    settings: LibrarySettings
    runner: Runner
    progress: LibraryProgress
    on_start: Callable[[str, int, int], None] | None = None
    lines: Callable[[str], None] | None = None  # the preparation's own lines, if wanted
    outcomes: dict[str, FilmOutcome] = field(default_factory=dict)
    report: LibraryReport | None = None  # made at the end of :meth:`run`, stopped or not
    under_way: set[str] = field(default_factory=set)  # films begun and not yet ended

    # RunSink
    def started(self, video: str, pid: int, host: str, attempt: int) -> None:  # noqa: ARG002
        self.under_way.add(video)
        if attempt > 1:
            self.progress.restarted(video)
        if self.on_start is not None:
            self.on_start(video, pid, attempt)

    def position(self, video: str, seconds: float, duration: float) -> None:
        self.progress.position(video, seconds, duration)

    def line(self, video: str, text: str) -> None:  # noqa: ARG002
        if self.lines is not None:
            self.lines(text)

    def outcome(self, outcome: FilmOutcome) -> None:
        self.under_way.discard(outcome.video)
        self.outcomes[outcome.video] = outcome
        self.progress.film_done(outcome)

    def run(self, found: FilmList) -> LibraryReport:
        """Prepare the films of ``found``; the report, also when stopped (KeyboardInterrupt
        is raised again after the report is made: it is in :attr:`report`)."""
        began = time.monotonic()
        films = [Path(f).absolute() for f in found.films]
        for film in films:
            self.progress.lengths[str(film)] = film_seconds(film)
        todo = []
        for film in films:
            track = prepared_track(film, self.settings)
            if track is None:
                todo.append(film)
            else:  # counted, and said once for all of them
                skipped = FilmOutcome(str(film), "skipped", "it was prepared already",
                                      str(track))
                self.outcomes[skipped.video] = self.progress.finished[skipped.video] = skipped
        if len(todo) < len(films):
            count = len(films) - len(todo)
            self.progress.say(
                f"{count} of the {len(films)} films {'were' if count != 1 else 'was'} prepared "
                f"already (track and analysis complete), so {'they are' if count != 1 else 'it is'}"
                f" skipped." if len(films) > 1 else
                f"{films[0].name} was prepared already (track and analysis complete), so it is "
                f"skipped.")
        stopped = False
        try:
            if todo:
                self.runner.run(todo, self.settings, self)
        except KeyboardInterrupt:
            stopped = True
            raise
        finally:
            self.progress.close()
            outcomes = tuple(self.outcomes.get(str(f)) or self._stopped(str(f))
                             for f in films)
            self.report = LibraryReport(
                outcomes, tuple(str(p) for p in found.not_films), time.monotonic() - began,
                self.runner.workers, self.runner.where, stopped, found.problems)
        return self.report

    def _stopped(self, video: str) -> FilmOutcome:
        if video in self.under_way:
            return FilmOutcome(video, "stopped", "It was under way, so nothing was written "
                                                 "for it.")
        return FilmOutcome(video, "stopped", "It had not started.")
