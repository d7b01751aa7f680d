"""The picture's layout: how much of it is sky, greenery, water, sand and road.

Shares of the picture, measured on a small frame (the scene stage's), each in the part of the
picture where it is found in real footage: sky in the top part, and smooth; greenery, water,
sand and road in the bottom part. They are cues for the setting (models/pipeline/setting.py),
never said on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LAYOUT_KEYS = ("sky", "greenery", "water", "sand", "road", "flat")


def _smooth(gray: np.ndarray) -> np.ndarray:
    """Where the picture has little texture (sky and calm water, not foliage or crowds)."""
    gy = np.abs(np.diff(gray, axis=0, prepend=gray[:1]))
    gx = np.abs(np.diff(gray, axis=1, prepend=gray[:, :1]))
    return (gx + gy) < 0.04


def picture_layout(rgb: np.ndarray, cv2: Any) -> dict[str, float]:
    """Shares (0..1) of sky in the top third, of greenery, water, sand and road in the bottom
    half of ``rgb`` (a small RGB uint8 frame), and of smooth picture all over ("flat": near 1
    for a title card or graphics)."""
    h = rgb.shape[0]
    if h < 6 or cv2 is None:
        return dict.fromkeys(LAYOUT_KEYS, 0.0)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hue, sat, val = hsv[:, :, 0] * 2.0, hsv[:, :, 1] / 255.0, hsv[:, :, 2] / 255.0
    gray = rgb.astype(np.float32).mean(axis=2) / 255.0
    smooth = _smooth(gray)
    blue = (hue >= 185) & (hue < 250) & (sat >= 0.15) & (val >= 0.45)
    overcast = (sat < 0.12) & (val >= 0.78)
    green = (hue >= 65) & (hue < 160) & (sat >= 0.22) & (val >= 0.15)
    watery = (hue >= 170) & (hue < 240) & (sat >= 0.2) & (val >= 0.2)
    sandy = (hue >= 25) & (hue < 55) & (sat >= 0.12) & (sat < 0.5) & (val >= 0.55)
    asphalt = (sat < 0.14) & (val >= 0.2) & (val < 0.7)  # grey ground: tarmac, paving
    top, bottom = slice(0, max(1, h // 3)), slice(h // 2, h)

    def share(mask: np.ndarray, rows: slice) -> float:
        return round(float(mask[rows].mean()), 3)

    return {"sky": share((blue | overcast) & smooth, top),
            "greenery": share(green, bottom),
            "water": share(watery & smooth, bottom),
            "sand": share(sandy, bottom),
            "road": share(asphalt, bottom),
            "flat": round(float(smooth.mean()), 3)}
