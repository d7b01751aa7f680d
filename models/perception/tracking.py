"""A small multi-object tracker: stable integer ids for boxes seen frame after frame.

Perception stages detect people and faces afresh in every frame; this tracker links each new box to
the box it most likely continues, so "person 1" stays person 1 while they move, and through a
missed frame or two (a short occlusion, a frame where the detector blinked).

Matching is greedy on a score that prefers overlap (intersection over union) and falls back to
centre distance for boxes that moved further than their own width between two keyframes. Boxes are
(x0, y0, x1, y1) as fractions of the frame, like every box in the observations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


@dataclass
class Track:
    """One followed object: its id, where it was last seen and how many updates it has missed."""

    id: int
    box: Box
    t: float
    missed: int = 0
    hits: int = 1


class Tracker:
    """Greedy IoU + centroid tracker with stable ids starting at 1.

    ``max_missed``: how many consecutive updates a track survives without a match.
    ``min_iou``: the least overlap that links two boxes on overlap alone.
    ``max_jump``: how far a centre may move between updates, in units of the box's larger side,
    for a link without overlap.
    """

    def __init__(self, max_missed: int = 2, min_iou: float = 0.2, max_jump: float = 1.0) -> None:
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.max_jump = max_jump
        self._tracks: list[Track] = []
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The live tracks, including those missed in the latest update."""
        return tuple(self._tracks)

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._tracks = []
        self._next_id = 1
        self._last_t = None

    def _score(self, track: Track, box: Sequence[float]) -> float:
        overlap = iou(track.box, box)
        if overlap >= self.min_iou:
            return 1.0 + overlap
        (ax, ay), (bx, by) = centre(track.box), centre(box)
        size = max(track.box[2] - track.box[0], track.box[3] - track.box[1],
                   box[2] - box[0], box[3] - box[1], 1e-6)
        jump = math.hypot(ax - bx, ay - by) / size
        # Allow a longer jump for a track that has been missing for a while.
        limit = self.max_jump * (1 + 0.5 * track.missed)
        if jump > limit:
            return 0.0
        # Similar sizes are more likely the same object.
        ha, hb = track.box[3] - track.box[1], box[3] - box[1]
        ratio = min(ha, hb) / max(ha, hb, 1e-6)
        if ratio < 0.5:
            return 0.0
        return (1.0 - jump / limit) * ratio

    def update(self, boxes: Sequence[Sequence[float]], t: float = 0.0) -> list[int]:
        """Link this frame's ``boxes`` to the tracks; return one id per box, in the same order.

        Time going backwards (a seek) starts afresh.
        """
        if self._last_t is not None and t < self._last_t:
            self.reset()
        self._last_t = t
        pairs = []
        for ti, track in enumerate(self._tracks):
            for bi, box in enumerate(boxes):
                score = self._score(track, box)
                if score > 0:
                    pairs.append((score, ti, bi))
        pairs.sort(reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, ti, bi in pairs:
            if ti in used or ids[bi] is not None:
                continue
            used.add(ti)
            track = self._tracks[ti]
            track.box = _as_box(boxes[bi])
            track.t = t
            track.missed = 0
            track.hits += 1
            ids[bi] = track.id
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        self._tracks = [tr for tr in self._tracks if tr.missed <= self.max_missed]
        out: list[int] = []
        for bi, found in enumerate(ids):
            if found is None:
                found = self._next_id
                self._next_id += 1
                self._tracks.append(Track(found, _as_box(boxes[bi]), t))
            out.append(found)
        return out


def _as_box(box: Sequence[float]) -> Box:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
