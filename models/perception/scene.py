"""Cheap per-frame cues: how bright, fading, which colours, and how the camera moves.

:class:`SceneStage` emits one ``"scene"`` observation for every frame it processes (see the
schema in :mod:`models.perception`); the composer decides what is worth saying.

Conventions:

- ``brightness`` is the mean luma (BT.601) from 0 (black) to 1 (white); ``dark`` is
  ``brightness < 0.15``.
- ``fade`` is ``"from black"`` while the picture is rising out of a black frame seen within the
  last two seconds, ``"to black"`` while it falls steadily towards black (two or more falling
  steps, ending dark), otherwise ``None``.
- ``colours`` are plain names (black, white, grey, red, orange, yellow, green, blue, purple,
  pink, brown, beige) covering at least 10 % of the picture, most first, at most three.
- ``motion`` names the camera's movement, not the content's: "pan right" means the camera
  turns right, so the content slides left across the screen; "tilt up" means the content slides
  down; "zoom in" means the content grows from the centre. "shaky" is a translation that keeps
  reversing; "still" covers no camera movement, movement that could not be measured with
  confidence, and the first frame after a cut. Motion is only measured between two frames of
  one shot: the stage runs its own shot detector (:class:`~models.perception.shots.ShotStage`)
  on every frame, and a frame that starts a shot, follows a jump in time or changes size is
  "still" (the frame before shows something else).

How camera motion is told from moving content. A camera that moves shifts (or scales) the
whole picture at once; a still camera looking at moving things (people walking, a test pattern
whose parts move, a scrolling band) leaves the rest of the picture where it was. So a candidate
movement (the translation phase correlation finds, and a shift-and-scale fitted to the optical
flow) is only reported when it explains the picture as a whole: the frame is cut into a grid of
tiles, the previous frame is moved by the candidate, and each tile votes. A tile whose change
the movement explains (at most half the error of "nothing moved") is for it; a tile that
"nothing moved" explains better is against it; a tile with no visible change either way (flat,
or edges along the movement) has no say. The movement counts when at least
``agree`` of the tiles with a say are for it, at most ``disagree`` are against it, and the tiles
for it lie in at least ``spread`` of the nine regions of a 3 x 3 division of the picture.

This module also holds the small frame helpers the other stages share (:func:`prepare_frame`,
:func:`shrink`). OpenCV is imported only when a frame is processed.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import numpy as np

from models.perception import Stage
from models.perception.frames import (
    COLOUR_NAMES,
    SceneOptions,
    load_cv2,
    luma,
    prepare_frame,
    shrink,
    whole_picture,
)
from models.perception.layout import picture_layout
from models.perception.shots import ShotStage
from models.types import Observation

log = logging.getLogger(__name__)

def colour_names(rgb: np.ndarray, cv2: Any, share: float = 0.10, most: int = 3) -> list[str]:
    """Basic colour names covering at least ``share`` of ``rgb``, most first."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    h = hsv[:, 0] * 2.0  # degrees 0..360
    s = hsv[:, 1] / 255.0
    v = hsv[:, 2] / 255.0
    idx = np.full(h.shape, COLOUR_NAMES.index("grey"), dtype=np.int8)

    def put(mask: np.ndarray, name: str) -> None:
        idx[mask] = COLOUR_NAMES.index(name)

    chroma = (s >= 0.2) & (v >= 0.18)
    put(chroma & ((h < 15) | (h >= 345)), "red")
    put(chroma & (h >= 15) & (h < 40), "orange")
    put(chroma & (h >= 40) & (h < 70), "yellow")
    put(chroma & (h >= 70) & (h < 165), "green")
    put(chroma & (h >= 165) & (h < 255), "blue")
    put(chroma & (h >= 255) & (h < 290), "purple")
    put(chroma & (h >= 290) & (h < 345), "pink")
    warm = chroma & ((h < 45) | (h >= 345))
    put(warm & (v < 0.55), "brown")
    put(chroma & ((h < 15) | (h >= 320)) & (s < 0.5) & (v >= 0.75), "pink")
    put((h >= 20) & (h < 55) & (s >= 0.08) & (s < 0.35) & (v >= 0.7), "beige")
    put((s < 0.2) & (v >= 0.85), "white")
    put(v < 0.18, "black")
    counts = np.bincount(idx, minlength=len(COLOUR_NAMES)) / max(1, idx.size)
    order = np.argsort(-counts, kind="stable")
    return [COLOUR_NAMES[i] for i in order[:most] if counts[i] >= share]


class SceneStage(Stage):
    """Brightness, fades, dominant colours and camera motion for every frame."""

    name = "scene"

    def __init__(self, options: SceneOptions | None = None,
                 cuts: ShotStage | None = None) -> None:
        self.options = options or SceneOptions()
        self._cv2, self._problem = load_cv2()
        self._levels: deque[tuple[float, float]] = deque(maxlen=12)
        self._shifts: deque[tuple[float, float]] = deque(maxlen=5)
        self._prev: tuple[float, np.ndarray] | None = None
        self._cuts = cuts or ShotStage()  # motion across a cut compares two unrelated pictures

    def problem(self) -> str:
        return self._problem

    def reset(self) -> None:
        self._levels.clear()
        self._shifts.clear()
        self._prev = None
        self._cuts.reset()

    def flush(self) -> list[Observation]:
        return []

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        cv2 = self._cv2
        rgb = prepare_frame(frame)
        if cv2 is None or rgb is None:
            return []
        if self._prev is not None and t <= self._prev[0]:
            self.reset()  # a seek backwards, or the same frame again
        cut = bool(self._cuts.process(t, rgb))
        small = shrink(rgb, self.options.width, cv2)
        gray = luma(small)
        self._levels.append((t, float(gray.mean())))
        return [self._observe(t, small, gray, self._fade(t), self._motion(t, gray, cut))]

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone (describe now: a frame from elsewhere in the film): brightness and
        colours, no fade and motion "still"; what the stage follows frame to frame is left as
        it was."""
        cv2 = self._cv2
        rgb = prepare_frame(frame)
        if cv2 is None or rgb is None:
            return []
        small = shrink(rgb, self.options.width, cv2)
        return [self._observe(t, small, luma(small), None, "still")]

    def _observe(self, t: float, small: np.ndarray, gray: np.ndarray, fade: str | None,
                 motion: str) -> Observation:
        cv2 = self._cv2
        brightness = float(gray.mean())
        colours = colour_names(small, cv2)
        dark = brightness < self.options.dark_below
        data = {"brightness": round(brightness, 3), "dark": dark, "fade": fade,
                "colours": colours, "motion": motion, "layout": picture_layout(small, cv2)}
        words = ["dark" if dark else f"brightness {brightness:.2f}"]
        if fade:
            words.append(f"fading {fade}")
        if colours:
            words.append(", ".join(colours))
        words.append(motion)
        return Observation(t=t, kind="scene", text="; ".join(words), data=data)

    def _fade(self, t: float) -> str | None:
        recent = [(ti, b) for ti, b in self._levels if t - ti <= 2.0 + 1e-6]
        if len(recent) < 2:
            return None
        black = self.options.black_below
        levels = [b for _, b in recent]
        now, before = levels[-1], levels[-2]
        # From black: a black frame, then a steady rise up to now, still rising.
        if now > black and now - before > 0.01:
            i = len(levels) - 1
            while i > 0 and levels[i - 1] <= levels[i] + 0.005 and levels[i] > black:
                i -= 1
            if levels[i] <= black and i < len(levels) - 1:
                return "from black"
        # To black: at least two falling steps from a brighter frame, ending dark.
        if now < before - 0.005 and now < self.options.dark_below:
            i = len(levels) - 1
            while i > 0 and levels[i - 1] > levels[i] + 0.005:
                i -= 1
            steps = len(levels) - 1 - i
            if steps >= 2 and levels[i] - now > 0.05:
                return "to black"
        if now <= black < before and len(levels) >= 3 and levels[-3] > before + 0.005:
            return "to black"
        return None

    def _motion(self, t: float, gray: np.ndarray, cut: bool = False) -> str:
        """Camera motion between the previous frame and this one.

        Two candidates: a translation from phase correlation (considered when its peak
        response is at least ``min_response``) and a shift with a scale fitted to the
        Farneback optical flow of the textured pixels. A candidate fast enough to count must
        also explain the picture as a whole (:func:`whole_picture`); of those, the one most
        tiles agree with wins. Flat pictures and the first frame of a shot (``cut``, or a luma
        difference over ``cut_luma``) are "still".
        """
        opt = self.options
        prev, self._prev = self._prev, (t, gray)
        if (cut or prev is None or t - prev[0] > opt.max_gap
                or prev[1].shape != gray.shape):
            self._shifts.clear()
            return "still"
        dt, before = t - prev[0], prev[1]
        if float(np.abs(gray - before).mean()) > opt.cut_luma or float(gray.std()) < 0.02:
            self._shifts.clear()
            return "still"
        h, w = gray.shape
        best: tuple[int, float, float, float] | None = None  # agreeing tiles, sx, sy, zoom
        for move in self._candidates(before, gray):
            # The centre's shift, in frame sizes per second (the content's direction), and
            # the relative growth per second.
            centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
            shift = move[:, :2] @ centre + move[:, 2] - centre
            sx, sy = float(shift[0]) / w / dt, float(shift[1]) / h / dt
            scale = float(np.sqrt(max(1e-6, abs(np.linalg.det(move[:, :2])))))
            zoom = float(np.log(scale)) / dt
            if max(abs(sx), abs(sy)) < opt.pan_speed and abs(zoom) < opt.zoom_speed:
                continue
            agreeing = whole_picture(before, gray, move, opt, self._cv2)
            if agreeing and (best is None or agreeing > best[0]):
                best = (agreeing, sx, sy, zoom)
        _, sx, sy, zoom = best or (0, 0.0, 0.0, 0.0)
        self._shifts.append((sx, sy))
        if self._shaky():
            return "shaky"
        if abs(zoom) >= opt.zoom_speed and abs(zoom) >= 0.5 * max(abs(sx), abs(sy)):
            return "zoom in" if zoom > 0 else "zoom out"
        if max(abs(sx), abs(sy)) < opt.pan_speed:
            return "still"
        if abs(sx) >= abs(sy):
            return "pan right" if sx < 0 else "pan left"
        return "tilt up" if sy > 0 else "tilt down"

    def _candidates(self, before: np.ndarray, gray: np.ndarray) -> list[np.ndarray]:
        """Candidate movements from ``before`` to ``gray``, as 2 x 3 affine matrices: the
        phase-correlation translation, and a shift with a scale fitted (RANSAC) to the optical
        flow where the picture has texture."""
        cv2, opt = self._cv2, self.options
        h, w = gray.shape
        found: list[np.ndarray] = []
        window = cv2.createHanningWindow((w, h), cv2.CV_64F)
        (px, py), response = cv2.phaseCorrelate(before.astype(np.float64),
                                                gray.astype(np.float64), window)
        if response >= opt.min_response:
            found.append(np.array([[1.0, 0.0, px], [0.0, 1.0, py]]))
        a = (before * 255).astype(np.uint8)
        b = (gray * 255).astype(np.uint8)
        grad = cv2.Sobel(a, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(a, cv2.CV_32F, 0, 1) ** 2
        ys, xs = np.nonzero(grad > 40.0 ** 2)
        if len(xs) >= max(30, 0.02 * grad.size):
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            pick = np.linspace(0, len(xs) - 1, min(len(xs), 1500)).astype(int)
            xs, ys = xs[pick], ys[pick]
            src = np.stack([xs, ys], axis=1).astype(np.float32)
            fitted, _inliers = cv2.estimateAffinePartial2D(
                src, src + flow[ys, xs], method=cv2.RANSAC, ransacReprojThreshold=1.0)
            if fitted is not None and np.all(np.isfinite(fitted)):
                found.append(fitted.astype(np.float64))
        return found

    def _shaky(self) -> bool:
        """True when the last few translations are large and keep reversing."""
        if len(self._shifts) < 3:
            return False
        limit = self.options.pan_speed
        flips = 0
        for axis in (0, 1):
            values = [s[axis] for s in self._shifts if abs(s[axis]) >= limit]
            pairs = zip(values[:-1], values[1:], strict=True)
            flips = max(flips, sum(1 for a, b in pairs if a * b < 0))
        return flips >= 2
