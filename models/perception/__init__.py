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

from typing import Protocol, runtime_checkable

import numpy as np

from models.types import Observation


@runtime_checkable
class Stage(Protocol):
    """One perception stage. Instances are used from one worker thread."""

    name: str

    def problem(self) -> str:
        """"" when usable; otherwise why not, with the fix (never raises)."""
        ...

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        """What this stage sees in ``frame`` at media time ``t`` (seconds)."""
        ...

    def flush(self) -> list[Observation]:
        """Anything held back, at the end of a stream or before a seek."""
        ...

    def reset(self) -> None:
        """Forget the stream (tracks, last text read): the next frame starts afresh."""
        ...

    # Optional: ``rewind()``, for a seek within the same film: like reset, but what the stage
    # learnt of the film stays (the pose and face stages keep who is who). The worker calls it
    # when a stage has it, and reset otherwise.
    #
    # Optional: ``look(t, frame) -> list[Observation]``, for one frame from elsewhere in the
    # film (describe now, at the playhead, while the stream of frames runs ahead): what the
    # stage sees in that frame alone, leaving what it follows from frame to frame (the last
    # frame, tracks, text already read) as it was, so the next frame of the stream goes on from
    # the one before. The worker calls it for requests of kind "now" when a stage has it, and
    # process otherwise (right for a stage that keeps nothing from frame to frame).
