"""The runner without Ray: the films one after another in this process, as ``narrate
prepare`` always did (the stages and the model load once)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.library.film import close_preparer, prepare_film
from models.library.job import LibrarySettings
from models.library.library import RunSink


@dataclass
class _Events:
    sink: RunSink
    video: str

    def started(self, pid: int, host: str) -> None:
        self.sink.started(self.video, pid, host, 1)

    def position(self, seconds: float, duration: float) -> None:
        self.sink.position(self.video, seconds, duration)

    def beat(self) -> None:
        pass

    def line(self, text: str) -> None:
        self.sink.line(self.video, text)


class LocalRunner:
    """Prepares the films in this process; ``check_stop`` (Ctrl-C) is asked at every frame.
    There is no time limit here: a film whose decoder hangs can only be stopped by Ctrl-C
    (the cluster runner stops it by itself)."""

    workers = 1
    where = ""

    def __init__(self, check_stop: Callable[[], None] = lambda: None) -> None:
        self.check_stop = check_stop

    def run(self, films: list[Path], settings: LibrarySettings, sink: RunSink) -> None:
        try:
            for film in films:
                self.check_stop()
                sink.outcome(prepare_film(film, settings, _Events(sink, str(film)),
                                          self.check_stop))
        finally:
            close_preparer()


