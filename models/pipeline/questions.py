"""Which look-ahead frames the vision-language model describes, and for which pause.

The detectors see every sampled frame; the model is far slower, so it is asked about one frame
per pause in the dialogue worth filling (and again in a long pause after a shot change, or after
``min_interval`` seconds), with the word budget of that pause. At most ``max_outstanding``
questions wait at once, so a slow model never builds a backlog of moments already gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from models.types import Description, Gap, Observation
from models.vlm.base import VlmRequest
from models.vlm.prompts import LABEL_WORDS, describe_prompt, label_prompt, word_budget

UNKNOWN_ROOM = 4.0
"""Seconds assumed free where the dialogue scanner has not been yet."""
MAX_ROOM = 8.0
"""A long pause is filled a piece at a time: one description covers at most this much."""


@dataclass(frozen=True)
class GapQuestion:
    """Ask the model about the frame at ``t``; speak the answer from ``start`` in a pause of
    ``seconds``."""

    t: float
    start: float
    seconds: float


class GapPlanner:
    """Decides, frame by frame, when to ask the model for a look-ahead description.

    ``room_at(t)`` gives the seconds of pause from ``t`` (0 in dialogue, None where unknown);
    ``gap_at(t)`` the pause that holds ``t``; ``next_gap(t)`` the next pause after ``t``.
    """

    def __init__(self, room_at: Callable[[float], float | None],
                 gap_at: Callable[[float], Gap | None],
                 next_gap: Callable[[float], Gap | None], min_room: float = 1.5,
                 min_interval: float = 6.0, lead: float = 3.0, max_outstanding: int = 2) -> None:
        self.room_at = room_at
        self.gap_at = gap_at
        self.next_gap = next_gap
        self.min_room = min_room
        self.min_interval = min_interval
        self.lead = lead
        self.max_outstanding = max_outstanding
        self.outstanding = 0
        self._asked_for: set[float] = set()  # starts of the pauses already described
        self._last_start = -math.inf

    def reset(self) -> None:
        """After a seek: forget what was asked (the answers still due are dropped)."""
        self.outstanding = 0
        self._asked_for.clear()
        self._last_start = -math.inf

    def answered(self) -> None:
        self.outstanding = max(0, self.outstanding - 1)

    def consider(self, t: float, shot_change: bool = False) -> GapQuestion | None:
        """A question for the frame at ``t``, or None when this frame is not worth one."""
        if self.outstanding >= self.max_outstanding:
            return None
        room = self.room_at(t)
        if room is None:
            return self._ask(t, t, UNKNOWN_ROOM, key=None, shot_change=shot_change)
        if room >= self.min_room:
            gap = self.gap_at(t)
            return self._ask(t, t, room, key=gap.start if gap else None,
                             shot_change=shot_change)
        gap = self.next_gap(t)
        if gap is None or gap.start - t > self.lead or gap.duration < self.min_room:
            return None
        return self._ask(t, gap.start, gap.duration, key=gap.start, shot_change=shot_change)

    def _ask(self, t: float, start: float, room: float, key: float | None,
             shot_change: bool) -> GapQuestion | None:
        fresh_pause = key is not None and key not in self._asked_for
        due = start - self._last_start >= self.min_interval
        if not (fresh_pause or due or (shot_change and start - self._last_start >= 2.0)):
            return None
        if key is not None:
            self._asked_for.add(key)
        self._last_start = start
        self.outstanding += 1
        return GapQuestion(t=t, start=start, seconds=min(room, MAX_ROOM))


def gap_request(image: np.ndarray, question: GapQuestion, verbosity: int, seen: str = "",
                recent: Sequence[str] = ()) -> VlmRequest:
    """The model request for ``question``: the frame, a prompt with the pause's word budget,
    what the detectors saw and what was said last."""
    budget = word_budget(question.seconds, verbosity)
    prompt = describe_prompt(question.seconds, verbosity, seen, list(recent)[-3:])
    return VlmRequest(image, prompt, max_new_tokens=min(64, budget * 2 + 8), max_words=budget)


def gap_description(question: GapQuestion, text: str) -> Description:
    """The model's answer as a description for the pause: important (said at every verbosity,
    before the detectors' sentences), and still true for the length of the pause."""
    return Description(start=question.start, text=text, level=1, priority=2, source="vlm",
                       end=question.start + max(question.seconds, 4.0))


def answer_observation(question: GapQuestion, text: str) -> Observation:
    """The answer as an observation, so the analysis cache keeps it for the next viewing."""
    return Observation(question.start, "vlm", text,
                       data={"t": question.t, "seconds": question.seconds})


def cached_descriptions(observations: Iterable[Observation]) -> list[Description]:
    """The model's answers kept in the analysis cache, as descriptions again."""
    out = []
    for obs in observations:
        if obs.kind == "vlm" and obs.text.strip():
            seconds = float(obs.data.get("seconds", 4.0))
            q = GapQuestion(t=float(obs.data.get("t", obs.t)), start=obs.t, seconds=seconds)
            out.append(gap_description(q, obs.text))
    return out


def crop_box(image: np.ndarray, box: Sequence[float], margin: float = 0.1,
             min_side: int = 24) -> np.ndarray | None:
    """The part of ``image`` inside ``box`` ((x0, y0, x1, y1) as fractions of the frame), with a
    margin around it; None when it is too small to show anything."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    left, right = int(max(0.0, x0 - mx) * w), int(min(1.0, x1 + mx) * w)
    top, bottom = int(max(0.0, y0 - my) * h), int(min(1.0, y1 + my) * h)
    if right - left < min_side or bottom - top < min_side:
        return None
    return np.ascontiguousarray(image[top:bottom, left:right])


def label_requests(image: np.ndarray, observations: Iterable[Observation],
                   labelled: set[int]) -> list[tuple[int, VlmRequest]]:
    """A question for the label of each person in ``observations`` not yet asked about (their
    ids are not in ``labelled``), on a crop of ``image`` around them; ``labelled`` is updated.
    A person too small to crop is asked about later, when they are seen bigger."""
    out = []
    for obs in observations:
        for person in obs.data.get("people", ()) if obs.kind == "people" else ():
            pid, box = person.get("id"), person.get("box")
            if pid is None or box is None or pid in labelled:
                continue
            crop = crop_box(image, box)
            if crop is None:
                continue
            labelled.add(pid)
            out.append((int(pid), VlmRequest(crop, label_prompt(), max_new_tokens=12,
                                             max_words=LABEL_WORDS)))
    return out
