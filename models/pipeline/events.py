"""What an analysis session tells its owner: the events, as callbacks run on the owner's thread.
A leaf module, so the session's parts can name them without importing the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.types import Description


def _ignore(*_args: Any) -> None:
    """An event nobody listens to."""


@dataclass
class SessionEvents:
    """What the session tells its owner, on the owner's thread.

    ``descriptions``: new descriptions from the look-ahead (or the cache); ``answer``,
    ``answer_more`` and ``answer_done``: describe now's answer (film time, its first sentence,
    each next sentence, its end); ``analysed``: how far the look-ahead has looked; ``problem``:
    a sentence for the user; ``vlm_ready``: the model's name once it answers.
    """

    descriptions: Callable[[list[Description]], None] = _ignore
    answer: Callable[[float, str], None] = _ignore
    answer_more: Callable[[float, str], None] = _ignore
    answer_done: Callable[[float], None] = _ignore
    analysed: Callable[[float], None] = _ignore
    problem: Callable[[str], None] = _ignore
    vlm_ready: Callable[[str], None] = _ignore
