"""Perception stages: frames in, observations out.

Every stage follows one protocol (:class:`Stage`): it takes a frame with its time on the media
clock and returns what it saw as :class:`~models.types.Observation` values; ``flush`` returns
anything held back at the end of a stream (or before a seek); ``reset`` forgets the stream.
Frames are RGB ``uint8`` arrays of shape (height, width, 3), already scaled down by the reader.

Observation kinds and their ``data`` (all boxes are (x0, y0, x1, y1) as fractions of the frame):

- ``"people"``: {"count": int, "people": [{"id": int, "position": "left"|"centre"|"right",
  "distance": "near"|"middle"|"far", "posture": "standing"|"sitting"|"lying"|"unknown",
  "gestures": [str, ...] (e.g. "walking", "arms raised", "pointing", "hands on head",
  "waving"), "box": [x0, y0, x1, y1], "visibility": float, "new": bool, "clothes": str (a
  colour word for the clothes, "" when unclear)}]}. ``id`` is stable
  for the whole video, through absences and shot changes (tracking, then appearance: see
  :mod:`models.perception.identity`); ``new`` is true on the first frame a person is seen.
  ``text`` is a plain summary, e.g. "2 people".
- ``"faces"``: {"count": int, "faces": [{"id": int, "facing": "camera"|"left"|"right"|"away",
  "box": [...], "score": float, "new": bool}]}; ``id`` stable for the whole video (the face
  stage's own ids, not the people's).
- ``"text"``: {"lines": [str, ...], "new": bool, "box": [...]} for on-screen text; emitted when
  text appears or changes (read once), ``text`` is the lines joined with ", ".
- ``"objects"``: {"count": int, "objects": [{"label": str (a COCO class: "car", "dog",
  "bicycle"...), "box": [...], "score": float}]} from the NanoDet detector (objects.py).
- ``"shot"``: {"score": float} at a shot change (cut or fade end); ``text`` "shot change".
- ``"scene"``: {"brightness": float 0..1, "dark": bool, "fade": "to black"|"from black"|None,
  "colours": [str, ...] (dominant colour names, most first), "motion": "still"|"pan left"|
  "pan right"|"tilt up"|"tilt down"|"zoom in"|"zoom out"|"shaky"}.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from models.types import Observation


class Stage(ABC):
    """One perception stage. Instances are used from one worker thread.

    Only :meth:`process` must be written; the rest have defaults that suit a stage that keeps
    nothing from frame to frame.
    """

    name: str = "stage"

    def problem(self) -> str:
        """"" when usable; otherwise why not, with the fix (never raises)."""
        return ""

    def notes(self) -> list[str]:
        """Plain sentences on how a working stage runs otherwise than asked (a GPU missing:
        it runs on the CPU); [] by default."""
        return []

    @abstractmethod
    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        """What this stage sees in ``frame`` at media time ``t`` (seconds)."""

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """One frame from elsewhere in the film (describe now, at the playhead, while the stream
        of frames runs ahead): what the stage sees in that frame alone, leaving what it follows
        from frame to frame (the last frame, tracks, text already read) as it was, so the next
        frame of the stream goes on from the one before. By default :meth:`process`, right for
        a stage that keeps nothing from frame to frame."""
        return self.process(t, frame)

    def flush(self) -> list[Observation]:
        """Anything held back, at the end of a stream or before a seek."""
        return []

    def reset(self) -> None:  # noqa: B027 - nothing to forget by default
        """Forget the stream (tracks, last text read): the next frame starts afresh."""

    def rewind(self) -> None:
        """A seek within the same film: like :meth:`reset`, but what the stage learnt of the
        film stays (the pose and face stages keep who is who). By default :meth:`reset`."""
        self.reset()


class _Adapted(Stage):
    """A stage written without the base class (a plug-in, a test's stand-in): its own methods
    where it has them, the defaults where it has not."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", type(inner).__name__))

    def problem(self) -> str:
        check = getattr(self.inner, "problem", None)
        return check() if check is not None else ""

    def notes(self) -> list[str]:
        notes = getattr(self.inner, "notes", None)
        return list(notes()) if notes is not None else []

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        return self.inner.process(t, frame)

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        look = getattr(self.inner, "look", None)
        return look(t, frame) if look is not None else self.inner.process(t, frame)

    def flush(self) -> list[Observation]:
        flush = getattr(self.inner, "flush", None)
        return list(flush() or ()) if flush is not None else []

    def reset(self) -> None:
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()

    def rewind(self) -> None:
        rewind = getattr(self.inner, "rewind", None)
        (rewind or self.reset)()


def as_stage(stage: Any) -> Stage:
    """``stage`` itself when it is a :class:`Stage`; otherwise the same object behind the
    stage contract (the one place where a stage's optional methods are looked up by name)."""
    return stage if isinstance(stage, Stage) else _Adapted(stage)
