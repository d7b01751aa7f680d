"""Live scene analysis for the player: look-ahead frames, the analysis worker, the composer.

A reader decodes the film ahead of the playhead and feeds sampled frames to one worker thread
that owns the perception models (people and poses, faces, on-screen text, shots, scene cues).
"Describe now" sends the frame on screen to the same worker at the highest priority. Results
come back to the Qt thread only through signals; the composer (cheap) runs here and turns them
into descriptions for the narrator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from models.composer import Composer
from models.types import Description, Observation

log = logging.getLogger(__name__)

LOOKAHEAD_FPS = 2.0
FRAME_WIDTH = 640
CACHE_CONFIG = {"fps": LOOKAHEAD_FPS, "width": FRAME_WIDTH, "version": 1}
INSTALL_HINT = "pip install 'video-narrator[perception]'"


def default_stages() -> tuple[list[Any], list[str]]:
    """The perception stages that can be built here, and notes on those that cannot."""
    stages: list[Any] = []
    notes: list[str] = []
    factories: list[tuple[str, Callable[[], Any]]] = []

    def add(label: str, module: str, cls: str) -> None:
        def make() -> Any:
            import importlib  # noqa: PLC0415

            return getattr(importlib.import_module(module), cls)()

        factories.append((label, make))

    add("shot changes", "models.perception.shots", "ShotStage")
    add("scene", "models.perception.scene", "SceneStage")
    add("people and poses", "models.perception.pose", "PoseStage")
    add("faces", "models.perception.faces", "FaceStage")
    add("on-screen text", "models.perception.ocr", "TextStage")
    for label, make in factories:
        try:
            stage = make()
            problem = stage.problem()
        except ImportError as exc:
            notes.append(f"{label} is off: {exc.name or exc} is not installed ({INSTALL_HINT}).")
            continue
        except Exception as exc:  # noqa: BLE001 - one broken stage must not stop the rest
            notes.append(f"{label} is off: {exc}.")
            continue
        if problem:
            notes.append(f"{label} is off: {problem}")
        else:
            stages.append(stage)
    return stages, notes


def frame_array(frame: tuple[int, int, bytes], width: int = FRAME_WIDTH) -> np.ndarray:
    """mpv's RGB screenshot as an (H, W, 3) array, scaled down to ``width`` at most."""
    w, h, data = frame
    image = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
    if w > width:
        step = int(np.ceil(w / width))
        image = image[::step, ::step]
    return np.ascontiguousarray(image)


class Perception(QObject):
    """Runs the analysis for one film at a time; emits descriptions and describe-now answers."""

    descriptions = Signal(object)  # list[Description], from the look-ahead
    answer = Signal(float, str)  # film time, text: the describe-now answer
    problem = Signal(str)
    _result = Signal(object)
    _problem = Signal(str, str)
    _problem_text = Signal(str)
    _ready = Signal(object, object)
    _cached = Signal(str, object)  # path, ObservationStore | None
    _vlm_answer = Signal(float, str, str)  # film time, seen by the detectors, the VLM's text
    vlm_ready = Signal(str)  # the model's name, once loaded

    def __init__(self, stages_factory: Callable[[], tuple[list[Any], list[str]]] = default_stages,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = stages_factory
        self._worker: Any = None
        self._lookahead: Any = None
        self._building: threading.Thread | None = None
        self._pending: tuple[str, float, bool] | None = None
        self._composer = Composer()
        self._observations: list[Observation] = []
        self._now_tokens: dict[int, float] = {}
        self.stage_names: list[str] = []
        self.compose = True
        self.detail = 2  # the user's verbosity: colours only at "detailed"
        self._tried = False
        self._closed = False
        self._result.connect(self._on_result)
        self._problem.connect(lambda name, text: self.problem.emit(f"{name} stopped: {text}"))
        self._problem_text.connect(self.problem)
        self._ready.connect(self._on_ready)
        self._cached.connect(self._on_cached)
        self._vlm_answer.connect(self._on_vlm_answer)
        self._vlm: Any = None
        self._vlm_name = ""
        self._vlm_lock = threading.Lock()
        self._questions: dict[int, str | None] = {}
        self._images: dict[int, np.ndarray] = {}
        self.recent: list[str] = []  # the last descriptions said, for the VLM's context
        self._store: Any = None
        self._path = ""
        self._duration = 0.0
        self.from_cache = False

    @property
    def available(self) -> bool:
        return self._worker is not None

    def warm_up(self) -> None:
        """Load the models on a background thread (seconds), so the window never waits."""
        if self._building is not None or self._worker is not None or self._tried:
            return
        self._tried = True
        self._building = threading.Thread(target=self._build, name="perception-load",
                                          daemon=True)
        self._building.start()

    def _build(self) -> None:
        try:
            from models.worker import AnalysisWorker  # noqa: PLC0415
        except ImportError as exc:
            self._problem_text.emit(f"Live scene analysis is off: {exc}.")
            return
        stages, notes = self._factory()
        for note in notes:
            self._problem_text.emit(note)
        if not stages:
            return
        worker = AnalysisWorker(stages, on_result=self._result.emit,
                                on_problem=self._problem.emit)
        self._ready.emit(worker, [s.name for s in stages])

    @Slot(object, object)
    def _on_ready(self, worker: Any, names: list[str]) -> None:
        if self._closed:
            worker.stop()
            return
        self._worker = worker
        self.stage_names = list(names)
        if self._pending is not None:
            path, at, compose = self._pending
            self._pending = None
            self.start(path, at, compose)

    def open(self, path: str | Path, duration: float, at: float = 0.0,
             compose: bool = True) -> None:
        """A new film: use what an earlier viewing (or ``narrate prepare``) saw, if it is
        cached; otherwise analyse ahead of the playhead from ``at``."""
        self.stop_lookahead()
        self._path, self._duration = str(path), duration
        self.from_cache = False
        from models.observations import ObservationStore  # noqa: PLC0415

        self._store = ObservationStore()
        self.compose = compose
        self._pending = (str(path), at, compose)

        def load(p: str = str(path)) -> None:
            self._cached.emit(p, ObservationStore.load(p, CACHE_CONFIG))

        threading.Thread(target=load, name="observation-cache", daemon=True).start()

    @Slot(str, object)
    def _on_cached(self, path: str, store: Any) -> None:
        if path != self._path or self._closed:
            return
        pending, self._pending = self._pending, None
        complete = store is not None and store.is_covered(min(1.0, self._duration / 2), max(0.0, self._duration - 1.0))
        if complete:
            self._store = store
            self.from_cache = True
            self._observations = list(store)
            if self.compose:
                descs = Composer().feed(self._observations)
                if descs:
                    self.descriptions.emit(list(descs))
            self.warm_up()  # still needed for "describe now"
            return
        if pending is not None:
            self.start(*pending)

    def start(self, path: str | Path, at: float = 0.0, compose: bool = True) -> None:
        """Analyse ``path`` ahead of the playhead from ``at``; compose descriptions if asked."""
        self.stop_lookahead()
        self.compose = compose
        self._composer = Composer()
        self._observations = []
        if self._worker is None:
            self._pending = (str(path), at, compose)
            self.warm_up()
            return
        from models.reader import ReaderError  # noqa: PLC0415
        from models.worker import LookAhead  # noqa: PLC0415

        try:
            self._lookahead = LookAhead(str(path), self._worker, fps=LOOKAHEAD_FPS,
                                        max_width=FRAME_WIDTH, start=at)
            self._lookahead.start()
        except ReaderError as exc:
            self._lookahead = None
            self.problem.emit(str(exc))

    def keep_ahead(self, playhead: float) -> None:
        """On a slow machine the analysis can fall behind the film: then it jumps to just ahead
        of the playhead, so what it finds is still worth saying."""
        la = self._lookahead
        if la is None or getattr(la, "finished", False):
            return
        if la.position < playhead - 1.0:
            log.info("analysis fell behind (%.1f s < %.1f s): jumping ahead", la.position,
                     playhead)
            self.seek(playhead + 0.5)

    def seek(self, t: float) -> None:
        if self._lookahead is not None:
            self._lookahead.seek(t)
            self._composer.reset()
        elif self._pending is not None:
            self._pending = (self._pending[0], t, self._pending[2])

    # ----- vision-language model ----------------------------------------------------------------
    def set_vlm(self, name_or_path: str) -> None:
        """Load the vision-language model the user chose (on a thread: it takes seconds)."""
        if not name_or_path or name_or_path == self._vlm_name:
            return
        self._vlm_name = name_or_path

        def load() -> None:
            from models.vlm import VlmError  # noqa: PLC0415
            from models.vlm.loader import open_vlm  # noqa: PLC0415

            try:
                engine = open_vlm(name_or_path)
                problem = engine.problem()
                if problem:
                    raise VlmError(problem)
                engine.load()
            except Exception as exc:  # noqa: BLE001 - the narrator goes on without it
                self._problem_text.emit(f"The vision-language model could not be used: {exc}")
                return
            with self._vlm_lock:
                old, self._vlm = self._vlm, engine
            if old is not None:
                old.close()
            self.vlm_ready.emit(str(name_or_path))

        threading.Thread(target=load, name="vlm-load", daemon=True).start()

    @property
    def has_vlm(self) -> bool:
        return self._vlm is not None

    def _ask_vlm(self, t: float, image: np.ndarray, seen: str, question: str | None) -> None:
        """Run the model on its own thread; the answer comes back through a signal."""
        from models.vlm import VlmRequest, ask_prompt, describe_prompt  # noqa: PLC0415

        recent = list(self.recent[-3:])
        prompt = (ask_prompt(question, seen, recent) if question
                  else describe_prompt(4.0, self.detail, seen, recent))

        def run() -> None:
            with self._vlm_lock:
                engine = self._vlm
                try:
                    text = engine.describe(VlmRequest(image, prompt, max_new_tokens=48,
                                                      max_words=30)) if engine else ""
                except Exception as exc:  # noqa: BLE001 - fall back to the detectors
                    log.warning("VLM failed: %s", exc)
                    self._problem_text.emit(f"The vision-language model failed: {exc}")
                    text = ""
            self._vlm_answer.emit(t, seen, text)

        threading.Thread(target=run, name="vlm", daemon=True).start()

    @Slot(float, str, str)
    def _on_vlm_answer(self, t: float, seen: str, text: str) -> None:
        self.answer.emit(t, text or seen)

    def describe_now(self, t: float, frame: tuple[int, int, bytes] | None,
                     question: str | None = None) -> bool:
        """Ask about the frame on screen, ahead of everything else: the detectors, then the
        vision-language model if one is set up. False when analysis is not ready (the caller
        answers from what it has)."""
        if frame is None or self._worker is None:
            return False
        from models.worker import Priority, Request  # noqa: PLC0415

        image = frame_array(frame)
        token = self._worker.submit(Request(Priority.NOW, t, image, kind="now"))
        self._now_tokens[token] = t
        self._questions[token] = question
        self._images[token] = image
        return True

    @Slot(object)
    def _on_result(self, result: Any) -> None:
        observations = list(result.observations)
        token = getattr(result.request, "token", None)
        if token in self._now_tokens:
            t = self._now_tokens.pop(token)
            question = self._questions.pop(token, None)
            image = self._images.pop(token, None)
            context = [o for o in self._observations if t - 8.0 <= o.t <= t]
            seen = Composer.describe(context + observations, t + 0.05, self.detail)
            if self._vlm is not None and image is not None:
                self._ask_vlm(t, image, seen, question)
            else:
                self.answer.emit(t, seen)
            return
        self._observations += observations
        if self._store is not None and getattr(result.request, "kind", "") != "flush":
            self._store.record(result.request.t, observations, 1.0 / LOOKAHEAD_FPS)
        if len(self._observations) > 20000:
            self._observations = self._observations[-10000:]
        if self.compose:
            descs: Sequence[Description] = self._composer.feed(observations)
            if descs:
                self.descriptions.emit(list(descs))

    def observations(self) -> list[Observation]:
        return list(self._observations)

    def stop_lookahead(self) -> None:
        self._pending = None
        if self._lookahead is not None:
            self._lookahead.stop()
            self._lookahead = None
        self._save_cache()

    def _save_cache(self) -> None:
        """Keep what was seen of the whole film, so the next viewing narrates at once."""
        store, path = self._store, self._path
        if store is None or self.from_cache or not path or self._duration <= 0:
            return
        if not store.is_covered(min(1.0, self._duration / 2), max(0.0, self._duration - 1.0)):
            return
        self.from_cache = True  # saved once
        threading.Thread(target=store.save, args=(path, CACHE_CONFIG), name="cache-save",
                         daemon=False).start()

    def close(self) -> None:
        self._closed = True
        with self._vlm_lock:
            if self._vlm is not None:
                self._vlm.close()
                self._vlm = None
        self.stop_lookahead()
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
