"""Shot changes on sampled frames: hard cuts and pictures coming back out of black.

:class:`ShotStage` compares each frame with the one before it (the reader samples at a few
frames a second) with two cheap measures on a 128-pixel-wide copy:

- the HSV histogram difference (half the L1 distance of 8x4x4-bin histograms, 0..1), which
  ignores motion inside a shot but sees a change of set, light or palette;
- the mean absolute luma difference (0..1), which sees a change of layout with a similar
  palette.

Their mean is the frame's score. A frame is a cut when its score clears an adaptive threshold:
at least ``floor`` and ``ratio`` times the median score of the last ``history`` frames that
were not cuts (busy, moving footage raises its own bar), or at once when it exceeds ``hard``. Fades are handled
apart: when the picture comes back out of black (a frame at least ``black_below`` dark, then a
clearly brighter one), that frame is reported as a shot change, so a fade to black followed by
a fade from black, which never makes a large step, still counts. A frame that one shift of the
whole picture explains (a fast pan or tilt between two samples, checked tile by tile as
:func:`~models.perception.frames.whole_picture` does) is no cut, however large its score.
``data["score"]`` is the score (or the rise in brightness for a fade).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from models.perception import Stage
from models.perception.frames import (
    SceneOptions,
    load_cv2,
    luma,
    prepare_frame,
    shrink,
    whole_picture,
)
from models.types import Observation

_MOVES = SceneOptions()  # how a movement of the whole picture is told from a cut


@dataclass(frozen=True)
class ShotOptions:
    """Thresholds of :class:`ShotStage`."""

    width: int = 128
    floor: float = 0.22
    """The least score that can be a cut."""
    hard: float = 0.45
    """A score this high is a cut whatever the recent history."""
    ratio: float = 3.0
    """A cut must also be this many times the recent median score."""
    history: int = 8
    """Recent non-cut frames whose scores set the adaptive threshold."""
    black_below: float = 0.06
    """Mean luma (0..1) under which a frame counts as black."""
    rise: float = 0.04
    """Brightness rise out of black that marks the end of a fade (a new shot)."""
    max_gap: float = 3.0
    """Seconds between frames beyond which no comparison is made (a seek, a hole)."""


class ShotStage(Stage):
    """Reports a ``"shot"`` observation at every cut and at every picture rising out of black."""

    name = "shots"

    def __init__(self, options: ShotOptions | None = None) -> None:
        self.options = options or ShotOptions()
        self._cv2, self._problem = load_cv2()
        self._scores: deque[float] = deque(maxlen=self.options.history)
        self._prev: tuple[float, np.ndarray, np.ndarray, float, np.ndarray] | None = None
        self._in_black = False
        self._memo: tuple[float, list[Observation]] | None = None

    def problem(self) -> str:
        return self._problem

    def reset(self) -> None:
        self._scores.clear()
        self._prev = None
        self._in_black = False
        self._memo = None

    def flush(self) -> list[Observation]:
        return []

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone (describe now: a frame from elsewhere in the film): one picture is
        never a shot change, and the frame the stream compares its next one with stays."""
        return []

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        """The cut at ``t``, if there is one. One detector is shared by the stages that need the
        cuts (scene, pose, faces): each frame of the stream (one time, one frame) is measured
        once, however many of them ask, whatever size each gives it at."""
        if self._memo is None or self._memo[0] != t:
            self._memo = (float(t), self._detect(t, frame))
        return list(self._memo[1])

    def _detect(self, t: float, frame: np.ndarray) -> list[Observation]:
        cv2, opt = self._cv2, self.options
        rgb = prepare_frame(frame)
        if cv2 is None or rgb is None:
            return []
        small = shrink(rgb, opt.width, cv2)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        lit = (hsv[:, :, 2] > 40).astype(np.uint8)
        hist = cv2.calcHist([hsv], [0, 1], lit, [12, 4], [0, 180, 0, 256]).ravel()
        hist = hist / max(1.0, float(hist.sum()))
        level = luma(small)
        brightness = float(level.mean())
        gray = level / max(brightness, 1e-3)  # a fade scales luma: compare shapes, not levels
        prev, self._prev = self._prev, (t, hist, gray, brightness, level)
        was_black = self._in_black
        self._in_black = brightness < opt.black_below
        if prev is None or not 0 < t - prev[0] <= opt.max_gap or prev[2].shape != gray.shape:
            self._scores.clear()
            return []
        if self._in_black:
            return []  # black frames belong to the transition; the shot starts when it ends
        if was_black:
            rise = brightness - prev[3]
            cut, score = rise >= opt.rise, rise
        else:
            hist_diff = 0.5 * float(np.abs(hist - prev[1]).sum())
            luma_diff = float(np.abs(gray - prev[2]).mean())
            score = 0.5 * (hist_diff + min(1.0, luma_diff))
            usual = float(np.median(self._scores)) if self._scores else 0.0
            cut = score >= opt.hard or (score >= opt.floor and score >= opt.ratio * usual)
            if cut and self._camera_moved(prev[4], level):
                cut = False  # a fast pan or tilt: the same picture, moved as a whole
        if cut:
            return [Observation(t=t, kind="shot", text="shot change",
                                confidence=min(1.0, 0.5 + score), data={"score": round(score, 3)})]
        self._scores.append(score)
        return []

    def _camera_moved(self, before: np.ndarray, level: np.ndarray) -> bool:
        """True when one shift of the whole picture (phase correlation, checked tile by tile
        as :func:`~models.perception.frames.whole_picture` does) carries ``before`` to
        ``level``: the camera moved fast, and this is no cut."""
        cv2 = self._cv2
        h, w = level.shape
        window = cv2.createHanningWindow((w, h), cv2.CV_64F)
        (dx, dy), response = cv2.phaseCorrelate(before.astype(np.float64),
                                                level.astype(np.float64), window)
        if response < _MOVES.min_response or max(abs(dx), abs(dy)) < 1.0:
            return False
        move = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        return whole_picture(before, level, move, _MOVES, cv2) > 0
