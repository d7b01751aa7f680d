"""How fast the analysis runs: frames a second, times real time, and on which device.

The origin of this project measured its narrator in frames per second; the player says it on a
key, narrate prepare in its summary, and narrate doctor gives the last measurement (kept in the
cache folder).
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from models.cache import cache_dir

WINDOW = 20
"""Frames the live figure is measured over (the last ones analysed)."""


@dataclass(frozen=True)
class AnalysisSpeed:
    """``fps``: frames analysed a second of wall time; ``real_time``: seconds of film analysed
    a second (at the sampling rate); ``device``: where the detectors ran."""

    fps: float
    real_time: float
    device: str = "cpu"
    when: float = 0.0  # seconds since the epoch

    def sentence(self) -> str:
        where = "the processor" if self.device == "cpu" else f"the GPU ({self.device})"
        return (f"Analysis runs at {self.fps:.1f} frames a second, {self.real_time:.1f} times "
                f"real time, on {where}.")


class SpeedMeter:
    """Times the frames as the analysis delivers them (film time ``t`` at wall time)."""

    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001 - a zero-argument clock
        self._clock = clock
        self._marks: deque[tuple[float, float]] = deque(maxlen=WINDOW)

    def reset(self) -> None:
        self._marks.clear()

    def frame(self, t: float) -> None:
        if self._marks and t <= self._marks[-1][1]:
            self._marks.clear()  # a seek: a new run
        self._marks.append((self._clock(), t))

    def speed(self, device: str = "cpu") -> AnalysisSpeed | None:
        """The speed over the last frames; None before two frames of one run."""
        if len(self._marks) < 2:
            return None
        (w0, t0), (w1, t1) = self._marks[0], self._marks[-1]
        wall = w1 - w0
        if wall <= 0:
            return None
        return AnalysisSpeed((len(self._marks) - 1) / wall, (t1 - t0) / wall, device, time.time())


def speed_file() -> Path:
    return cache_dir() / "analysis-speed.json"


def keep(speed: AnalysisSpeed) -> None:
    """Remember the last measurement for narrate doctor (best effort)."""
    try:
        path = speed_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(speed)))
    except OSError:
        pass


def last_kept() -> AnalysisSpeed | None:
    try:
        data = json.loads(speed_file().read_text())
        return AnalysisSpeed(float(data["fps"]), float(data["real_time"]),
                             str(data.get("device", "cpu")), float(data.get("when", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
