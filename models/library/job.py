"""What every film of a library is prepared with, and how each one ended.

Both are plain frozen dataclasses of strings and numbers, so they travel to Ray workers on other
machines and back, and into the JSON report, unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from models.pipeline.config import LOOKAHEAD_FPS

State = Literal["done", "skipped", "failed", "stopped"]


@dataclass(frozen=True)
class LibrarySettings:
    """How the films are prepared.

    ``stages``: the perception stages by name (see :mod:`models.library.stages`); empty for
    every stage that can be built on the worker. A chosen subset is a weaker analysis than the
    player's, so it is cached (and a rerun skips its films) only with ``keep_partial``, which
    tests and benchmarks use with a cache folder of their own.
    ``cache_home``: the XDG cache folder the workers use; empty to leave each worker's own
    (on a cluster it must be storage every machine shares, at the same path).
    ``out``: where the track goes when there is a single film (empty: beside the film).
    """

    fps: float = LOOKAHEAD_FPS
    model: str = ""
    verbosity: int = 2
    stages: tuple[str, ...] = ()
    keep_partial: bool = False
    cache_home: str = ""
    out: str = ""


@dataclass(frozen=True)
class FilmOutcome:
    """How one film ended: ``done`` (its track written), ``skipped`` (already prepared),
    ``failed`` (``reason`` says why, in one sentence) or ``stopped`` (by Ctrl-C, or by the time
    limit, with a reason)."""

    video: str
    state: State
    reason: str = ""
    track: str = ""
    descriptions: int = 0
    duration: float = 0.0  # seconds of film
    seconds: float = 0.0  # wall time the preparation took
    attempts: int = 1  # how many times a worker started it (a worker that died is retried)
    worker: str = ""  # the machine (host name) that prepared it
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data
