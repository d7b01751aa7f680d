"""One film of a library, prepared inside a worker (a Ray task, or this process).

A film whose track and analysis cache are both complete already (the cache is found by the
film's content, so a renamed or moved copy counts) is skipped, and is never prepared twice,
even when a worker that died after finishing it is retried. A film whose track cannot be
written (a read-only folder) is refused before any work. Otherwise the pipeline's
:class:`~models.pipeline.offline.Preparer` prepares it; one Preparer is kept per worker process,
so the stages and the model load once for all the films that worker gets.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from models.library.job import FilmOutcome, LibrarySettings

log = logging.getLogger(__name__)

NOTES_KEPT = 20
"""Notes (non-progress lines) kept per film for the report."""

_PLACE = re.compile(r"(?P<label>.+): \d+ percent \((?P<t>[\d:]+) of (?P<d>[\d:]+)\)")


class FilmEvents(Protocol):
    """What a runner hears from a film under way."""

    def started(self, pid: int, host: str) -> None:
        """The stages are loaded and the film begins (its time limit counts from here)."""

    def position(self, seconds: float, duration: float) -> None:
        """The analysis has reached ``seconds`` of the film's ``duration``."""

    def beat(self) -> None:
        """The analysis is still moving (the preparation said something: a progress line
        comes at least every few seconds while frames are analysed)."""

    def line(self, text: str) -> None:
        """A line the preparation said."""


def seconds_of(clock: str) -> float:
    """ "1:02:03" or "2:03" as seconds."""
    total = 0.0
    for part in clock.split(":"):
        total = total * 60 + float(part)
    return total


def place_in(text: str, name: str) -> tuple[float, float] | None:
    """The (position, duration) a progress line of film ``name`` gives, if it is one."""
    match = _PLACE.match(text)
    if not match or match["label"] != name:
        return None
    return seconds_of(match["t"]), seconds_of(match["d"])


def track_candidates(video: Path, settings: LibrarySettings) -> list[Path]:
    if settings.out:
        return [Path(settings.out)]
    return [video.with_suffix(".descriptions.vtt"), video.with_suffix(".auto.descriptions.vtt")]


def cache_settings(settings: LibrarySettings) -> dict[str, Any]:
    from models.pipeline.config import cache_config  # noqa: PLC0415

    return {**cache_config(settings.model), "fps": settings.fps}


def prepared_track(video: Path, settings: LibrarySettings) -> Path | None:
    """The film's track when both it and the film's analysis cache are complete, else None."""
    from models.pipeline.store import ObservationStore  # noqa: PLC0415

    tracks = [t for t in track_candidates(video, settings) if t.is_file()]
    if not tracks:
        return None
    try:
        if ObservationStore.load(video, cache_settings(settings)) is None:
            return None
    except OSError:
        return None
    return max(tracks, key=lambda t: t.stat().st_mtime)


def output_problem(video: Path, settings: LibrarySettings) -> str:
    """Why the film's track cannot be written, in one sentence ("" when it can)."""
    folder = Path(settings.out).parent if settings.out else video.parent
    if not folder.is_dir():
        return ""  # the preparation says what is missing
    try:  # a real try: permissions, a read-only file system, and root all answer truly
        fd, probe = tempfile.mkstemp(prefix=".narrate-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = "read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else \
            f"not writable ({(exc.strerror or str(exc)).lower()})"
        return f"The folder {folder} is {why}, so the track of {video.name} cannot be written."
    return ""


class _Relay:
    """The Preparer's say and check_stop, passed on to whichever film is under way."""

    def __init__(self) -> None:
        self.events: FilmEvents | None = None
        self.video = ""
        self.notes: list[str] = []
        self.stop: Callable[[], None] = lambda: None

    def say(self, text: str) -> None:
        log.info("%s", text)
        if self.events is None:
            self.notes.append(text)  # said while loading: kept for the first film's report
            return
        self.events.beat()  # a line is a sign of progress: one comes every few seconds
        self.events.line(text)
        place = place_in(text, self.video)
        if place is not None:
            self.events.position(*place)
        elif not re.match(r".+: \d+ percent", text) and not text.startswith("Finding the"):
            self.notes.append(text)

    def check_stop(self) -> None:
        self.stop()  # called even while the analysis waits, so it is no sign of progress


_PREPARER: dict[tuple[Any, ...], tuple[Any, _Relay]] = {}
"""This process's Preparer, by the settings it was built with (one at a time)."""


def _preparer(settings: LibrarySettings) -> tuple[Any, _Relay]:
    from models.library.stages import build_stages  # noqa: PLC0415
    from models.pipeline.offline import Preparer  # noqa: PLC0415

    key = (settings.model, settings.verbosity, settings.stages, settings.keep_partial)
    if key not in _PREPARER:
        for preparer, _ in _PREPARER.values():
            preparer.close()
        _PREPARER.clear()
        relay = _Relay()
        stages = build_stages(settings.stages, settings.keep_partial)
        preparer = Preparer(relay.say, settings.model, settings.verbosity, stages=stages,
                            check_stop=relay.check_stop)
        _PREPARER[key] = (preparer, relay)
    return _PREPARER[key]


def close_preparer() -> None:
    """Let go of this process's Preparer (its model, if any)."""
    for preparer, _ in _PREPARER.values():
        preparer.close()
    _PREPARER.clear()


def prepare_film(video: Path, settings: LibrarySettings, events: FilmEvents,
                 check_stop: Callable[[], None] = lambda: None, attempts: int = 1,
                 ) -> FilmOutcome:
    """Prepare one film; never raises but KeyboardInterrupt (a stop)."""
    if settings.cache_home:
        os.environ["XDG_CACHE_HOME"] = settings.cache_home
    host = socket.gethostname()
    began = time.monotonic()
    done = prepared_track(video, settings)
    if done is not None:
        return FilmOutcome(str(video), "skipped", "it was prepared already", str(done),
                           attempts=attempts, worker=host)
    problem = output_problem(video, settings)
    if problem:
        return FilmOutcome(str(video), "failed", problem, attempts=attempts, worker=host)
    from models.pipeline.offline import FilmJob  # noqa: PLC0415

    preparer, relay = _preparer(settings)
    if preparer.problem:
        return FilmOutcome(str(video), "failed", preparer.problem, attempts=attempts,
                           worker=host, notes=tuple(relay.notes[-NOTES_KEPT:]))
    relay.events, relay.video, relay.stop = events, video.name, check_stop
    events.started(os.getpid(), host)
    try:
        report = preparer.run(FilmJob(video, Path(settings.out) if settings.out else None,
                                      settings.fps))
    finally:
        notes, relay.notes = tuple(relay.notes[-NOTES_KEPT:]), []
        relay.events, relay.stop = None, lambda: None
    return FilmOutcome(str(video), "done" if report.ok else "failed", report.reason,
                       str(report.out or ""), report.descriptions, report.duration,
                       time.monotonic() - began, attempts, host, notes)
