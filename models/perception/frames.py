"""Frame helpers shared by the perception stages: one frame format, scaling, luma, and the
test of whether one movement carries a whole picture to the next (a camera movement, not a cut).

A leaf module: the stages import it, it imports no stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

COLOUR_NAMES = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple",
                "pink", "brown", "beige")

MIN_SIDE = 8
"""Frames smaller than this (either side) are ignored by every stage."""

CV2_HINT = "OpenCV is not installed: pip install opencv-python-headless"


def load_cv2() -> tuple[Any, str]:
    """The ``cv2`` module, or None and an install hint."""
    try:
        import cv2
    except ImportError as exc:
        return None, f"{CV2_HINT} ({exc})"
    return cv2, ""


def prepare_frame(frame: Any) -> np.ndarray | None:
    """``frame`` as a contiguous RGB ``uint8`` array (h, w, 3), or None when it is unusable.

    Grayscale (h, w) and (h, w, 1) frames are widened to three channels, an alpha channel is
    dropped and float frames in 0..1 are scaled. Frames smaller than :data:`MIN_SIDE` pixels,
    empty ones and other shapes give None.
    """
    try:
        arr = np.asarray(frame)
    except Exception:  # noqa: BLE001 - anything that is not array-like is simply unusable
        return None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return None
    if arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        return None
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f":
            scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
            arr = np.nan_to_num(arr * scale)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def shrink(rgb: np.ndarray, width: int, cv2: Any = None) -> np.ndarray:
    """``rgb`` scaled down (never up) to at most ``width`` pixels wide, aspect kept."""
    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    height = max(1, round(h * width / w))
    if cv2 is not None:
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    rows = (np.arange(height) * h / height).astype(int)
    cols = (np.arange(width) * w / width).astype(int)
    return np.ascontiguousarray(rgb[rows][:, cols])


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 image, float32 0..1."""
    f = rgb.astype(np.float32)
    return (0.299 * f[:, :, 0] + 0.587 * f[:, :, 1] + 0.114 * f[:, :, 2]) / 255.0


@dataclass(frozen=True)
class SceneOptions:
    """Thresholds of :class:`SceneStage`."""

    width: int = 160
    """Frames are scaled down to this width before any measurement."""
    dark_below: float = 0.15
    black_below: float = 0.06
    """A frame this dark counts as black for fades."""
    pan_speed: float = 0.04
    """Global motion, in frame widths (or heights) per second, that counts as camera movement."""
    zoom_speed: float = 0.06
    """Relative growth per second that counts as a zoom."""
    cut_luma: float = 0.25
    """Mean luma difference above which two frames are treated as a cut (motion "still")."""
    min_response: float = 0.1
    """Least phase-correlation peak (0..1) for a translation to be considered."""
    grid: tuple[int, int] = (8, 6)
    """Tiles across and down that vote on a candidate camera movement."""
    noise: float = 0.02
    """Mean luma difference (0..1) of a tile below which it shows no change (coding noise)."""
    agree: float = 0.8
    """Least share of the tiles with a say that the movement must explain."""
    disagree: float = 0.1
    """Most share of the tiles with a say that may show the picture standing still."""
    spread: int = 5
    """Least number of the nine regions (3 x 3) holding a tile that agrees."""
    max_gap: float = 1.5
    """Seconds between frames beyond which motion is not measured."""


def whole_picture(before: np.ndarray, gray: np.ndarray, move: np.ndarray,
                  opt: SceneOptions, cv2: Any) -> int:
    """How many tiles agree that ``move`` (a 2 x 3 affine matrix) carried the luma picture
    ``before`` to ``gray``, when it explains the picture as a whole (see the module's notes:
    ``opt.agree``, ``opt.disagree``, ``opt.spread``), else 0."""
    h, w = gray.shape
    moved = cv2.warpAffine(before.astype(np.float32), move, (w, h), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones((h, w), np.float32), move, (w, h),
                            flags=cv2.INTER_LINEAR) > 0.999
    err_moved = np.abs(gray - moved)
    err_still = np.abs(gray - before)
    cols, rows = opt.grid
    agree, disagree, say = 0, 0, 0
    regions: set[tuple[int, int]] = set()
    for j in range(rows):
        for i in range(cols):
            tile = (slice(j * h // rows, (j + 1) * h // rows),
                    slice(i * w // cols, (i + 1) * w // cols))
            valid = inside[tile]
            if valid.mean() < 0.5:
                continue  # mostly outside the moved picture
            e_moved = float(err_moved[tile][valid].mean())
            e_still = float(err_still[tile][valid].mean())
            if max(e_moved, e_still) <= opt.noise:
                continue  # no visible change either way: this tile has no say
            say += 1
            if e_moved <= 0.5 * e_still:
                agree += 1
                regions.add((3 * i // cols, 3 * j // rows))
            elif e_still <= 0.5 * e_moved:
                disagree += 1
    log.debug("movement %s: %d tiles for, %d against, of %d with a say, in %d regions",
              np.round(move, 3).tolist(), agree, disagree, say, len(regions))
    if (say == 0 or agree < opt.agree * say or disagree > opt.disagree * say
            or len(regions) < opt.spread):
        return 0
    return agree
