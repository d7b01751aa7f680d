"""Helpers shared by the tests: driving the offline analysis the way ``narrate prepare`` does."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.pipeline.offline import FilmJob, FilmReport, Preparer
from models.types import Description


def prepare_film(video: Path, out: Path, fps: float, stages: Sequence[Any],
                 say: Callable[[str], None], *, notes: Sequence[str] = (), engine: Any = None,
                 model: str = "", clock: Callable[[], float] = time.monotonic,
                 every: float = 5.0) -> tuple[list[Description], FilmReport]:
    """Prepare one film with these stages (and ``notes`` on stages that could not be built),
    as ``narrate prepare`` does; returns its descriptions and its report."""
    preparer = Preparer(say, model, stages=(list(stages), list(notes)), engine=engine,
                        clock=clock, every=every)
    try:
        report = preparer.run(FilmJob(Path(video), Path(out), fps))
        return preparer.last, report
    finally:
        preparer.close()
