"""The questions an analysis session sends to the vision-language model, as typed jobs.

Each job remembers which worker it went to (so it can be cancelled there) and which model was
asked (its answer is cached only under that model's name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.pipeline.questions import GapQuestion


@dataclass
class NowJob:
    """Describe now, or the user's question, about the frame at ``t``. ``seen`` is what the
    detectors found there (the answer when the model gives none); ``spoken`` counts the
    sentences already passed on."""

    t: float
    seen: str
    worker: Any = field(repr=False)
    model: str = ""
    spoken: int = 0


@dataclass(frozen=True)
class GapJob:
    """A look-ahead description of a frame, for the pause ``question`` names."""

    question: GapQuestion
    worker: Any = field(repr=False)
    model: str = ""


@dataclass(frozen=True)
class LabelJob:
    """What to call person ``pid`` ("the man in the red coat")."""

    pid: int
    worker: Any = field(repr=False)
    model: str = ""


ModelJob = NowJob | GapJob | LabelJob
