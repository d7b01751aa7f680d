"""Live scene analysis for the player: the Qt adapter over the analysis session.

All the rules (sampling, stages, cache, the model's questions, describe now) live in
:class:`models.pipeline.session.AnalysisSession`, which knows nothing of Qt. This adapter gives
it a way to run its threads' reports on the Qt thread (a queued signal carrying the call) and
turns its events into Qt signals for the controller and the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from models.pipeline.config import default_stages
from models.pipeline.session import AnalysisSession, SessionEvents
from models.pipeline.speed import AnalysisSpeed
from models.types import Observation


class Perception(QObject):
    """Runs the analysis for one film at a time; emits descriptions and describe-now answers."""

    descriptions = Signal(object)  # list[Description], from the look-ahead
    answer = Signal(float, str)  # film time, text: the describe-now answer (its first part)
    answer_more = Signal(float, str)  # film time, text: the next sentence of a streamed answer
    answer_done = Signal(float)  # film time: the describe-now answer is complete
    analysed = Signal(float)  # film time: the look-ahead has looked this far (or, cached, all)
    problem = Signal(str)
    vlm_ready = Signal(str)  # the model's name, once loaded
    _call = Signal(object)  # a call from one of the session's threads, run on the Qt thread

    def __init__(self, stages_factory: Callable[[], tuple[list[Any], list[str]]] = default_stages,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._call.connect(self._run)
        events = SessionEvents(descriptions=self.descriptions.emit, answer=self.answer.emit,
                               answer_more=self.answer_more.emit,
                               answer_done=self.answer_done.emit, analysed=self.analysed.emit,
                               problem=self.problem.emit, vlm_ready=self.vlm_ready.emit)
        self.session = AnalysisSession(stages_factory, post=self._call.emit, events=events)

    @Slot(object)
    def _run(self, call: Callable[[], None]) -> None:
        call()

    # The session's state, as the player reads it.
    @property
    def compose(self) -> bool:
        return self.session.compose

    @compose.setter
    def compose(self, value: bool) -> None:
        self.session.compose = value

    @property
    def detail(self) -> int:
        return self.session.detail

    @detail.setter
    def detail(self, value: int) -> None:
        self.session.detail = value

    @property
    def cache_config(self) -> dict[str, Any]:
        return self.session.cache_config

    @property
    def available(self) -> bool:
        return self.session.available

    @property
    def cannot_look(self) -> bool:
        return self.session.cannot_look

    @property
    def loading(self) -> bool:
        return self.session.loading

    @property
    def from_cache(self) -> bool:
        return self.session.from_cache

    @property
    def stage_names(self) -> list[str]:
        return self.session.stage_names

    @property
    def has_vlm(self) -> bool:
        return self.session.has_vlm

    @property
    def answering(self) -> bool:
        return self.session.answering

    @property
    def vlm_loading(self) -> bool:
        return self.session.vlm_loading

    @property
    def vlm_seconds(self) -> float:
        return self.session.vlm_seconds

    # What the player asks of it.
    def warm_up(self) -> None:
        self.session.warm_up()

    def open(self, path: str | Path, duration: float, at: float = 0.0,
             compose: bool = True) -> None:
        self.session.open(path, duration, at, compose)

    def start(self, path: str | Path, at: float = 0.0, compose: bool = True) -> None:
        self.session.start(path, at, compose)

    def keep_ahead(self, playhead: float) -> None:
        self.session.keep_ahead(playhead)

    def seek(self, t: float) -> None:
        self.session.seek(t)

    def stop_lookahead(self) -> None:
        self.session.stop_lookahead()

    def set_vlm(self, name_or_path: str) -> None:
        self.session.set_vlm(name_or_path)

    def use_engine(self, engine: Any, name: str) -> None:
        self.session.use_engine(engine, name)

    def use_gaps(self, room_at: Callable[[float], float | None],
                 gap_at: Callable[[float], Any], next_gap: Callable[[float], Any]) -> None:
        self.session.use_gaps(room_at, gap_at, next_gap)

    def describe_now(self, t: float, frame: tuple[int, int, bytes] | None,
                     question: str | None = None) -> bool:
        return self.session.describe_now(t, frame, question)

    def remember_said(self, t: float, text: str) -> None:
        self.session.remember_said(t, text)

    def recent(self, t: float) -> list[str]:
        return self.session.recent(t)

    def speed(self) -> AnalysisSpeed | None:
        return self.session.speed()

    @property
    def looked_at_all(self) -> bool:
        return self.session.looked_at_all

    def observations(self) -> list[Observation]:
        return self.session.observations()

    def close(self) -> None:
        self.session.close()
