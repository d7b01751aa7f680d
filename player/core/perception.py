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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from models.pipeline.composer import Composer
from models.pipeline.config import (
    FRAME_WIDTH,
    LOOKAHEAD_FPS,
    RECENT_KEPT,
    RECENT_SECONDS,
    cache_config,
    default_stages,
    frame_array,
)
from models.types import Description, Observation

log = logging.getLogger(__name__)

@dataclass
class _Job:
    """A question sent to the model: what it is for, and where its answer goes."""

    kind: str  # "now", "gap" or "label"
    info: Any  # now: {"seen", "spoken"}; gap: the Gap; label: the person's id
    worker: Any = field(repr=False)
    model: str = ""  # the model asked (its answers are cached only under its own name)


LOAD_WAIT_ON_CLOSE = 20.0
"""Seconds closing waits at most for the detectors to finish loading."""

class Perception(QObject):
    """Runs the analysis for one film at a time; emits descriptions and describe-now answers."""

    descriptions = Signal(object)  # list[Description], from the look-ahead
    answer = Signal(float, str)  # film time, text: the describe-now answer (its first part)
    answer_more = Signal(float, str)  # film time, text: the next sentence of a streamed answer
    answer_done = Signal(float)  # film time: the describe-now answer is complete
    analysed = Signal(float)  # film time: the look-ahead has looked this far (or, cached, all)
    problem = Signal(str)
    _result = Signal(object)
    _problem = Signal(str, str)
    _problem_text = Signal(str)
    _ready = Signal(object, object)
    _cached = Signal(str, object)  # path, ObservationStore | None
    _damage = Signal(str, object)  # path, the Damage the look-ahead found in it
    _vlm_loaded = Signal(object, str)  # engine, name
    _vlm_failed = Signal(str)  # name
    _vlm_off = Signal(object, str)  # the engine the worker switched off, and why
    vlm_ready = Signal(str)  # the model's name, once loaded

    def __init__(self, stages_factory: Callable[[], tuple[list[Any], list[str]]] = default_stages,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = stages_factory
        self._worker: Any = None
        self._gpu_worker: Any = None  # a model on a GPU gets a worker thread of its own
        self._lookahead: Any = None
        self._building: threading.Thread | None = None
        self._loaded_worker: Any = None  # the worker the loading thread made
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
        self._problem.connect(self._on_stage_problem)
        self._problem_text.connect(self.problem)
        self._ready.connect(self._on_ready)
        self._cached.connect(self._on_cached)
        self._damage.connect(self._on_damage)
        self._vlm_loaded.connect(self._on_vlm_loaded)
        self._vlm_failed.connect(self._on_vlm_failed)
        self._vlm_off.connect(self._on_vlm_off)
        self._vlm = ""  # the attached model's name
        self._engine: Any = None  # the attached engine
        self._label_tries: dict[int, int] = {}
        self._mixed_models = False  # this viewing's findings came from more than one model
        self._vlm_name = ""  # the model asked for
        self._waiting_vlm: tuple[Any, str] | None = None
        self._vlm_jobs: dict[int, _Job] = {}  # token -> the question's job
        self._planner: Any = None
        self._labelled: set[int] = set()
        self._built = False
        self._playhead = 0.0
        self.vlm_seconds = 0.0  # how long a look-ahead answer takes (running mean)
        self._questions: dict[int, str | None] = {}
        self._images: dict[int, np.ndarray] = {}
        self._said: list[tuple[float, str]] = []  # (film time, text) of what was said lately
        self._store: Any = None
        self._path = ""
        self._duration = 0.0
        self.from_cache = False
        self._no_models = False  # the detectors failed to load (said when it happened)
        self._all_stages = True  # every stage loaded and none was switched off since
        self._last_frame_t: float | None = None  # the look-ahead's last frame in this run
        self._run_token = 0  # look-ahead results with a smaller token are of an earlier film
        self._unreadable = False  # the look-ahead cannot read this film (said when it happened)
        self._damaged = False  # part of this film could not be read: its analysis is not kept
        self._told_damage = False  # and that was said (once a film)

    @property
    def cache_config(self) -> dict[str, Any]:
        """What the cached analysis depends on: the sampling, and the model asked for (its
        descriptions are kept with the detectors' findings)."""
        return cache_config(self._vlm_name)

    @property
    def available(self) -> bool:
        return self._worker is not None

    def remember_said(self, t: float, text: str) -> None:
        """The narrator said ``text`` at film time ``t``: context for the model's next answers."""
        self._said = [*self._said[-(RECENT_KEPT - 1):], (t, text)]

    def recent(self, t: float, seconds: float = RECENT_SECONDS) -> list[str]:
        """What was said in the ``seconds`` of film before ``t`` (not what was said later in
        the film, before a seek back), oldest first, at most three sentences."""
        return [text for at, text in self._said if t - seconds <= at <= t + 0.5][-3:]

    @property
    def cannot_look(self) -> bool:
        """Live analysis will not look at this film: its models failed to load, or the film
        cannot be read (each with a message already given)."""
        return self._no_models or self._unreadable

    @property
    def loading(self) -> bool:
        """The detectors are still being loaded."""
        return self._building is not None and self._building.is_alive()

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
            from models.pipeline.worker import AnalysisWorker  # noqa: PLC0415
        except ImportError as exc:
            self._problem_text.emit(f"Live scene analysis is off: {exc}.")
            self._no_models = True
            return
        stages, notes = self._factory()
        self._all_stages = not notes
        for note in notes:
            self._problem_text.emit(note)
        worker = AnalysisWorker(stages, on_result=self._result.emit,
                                on_problem=self._problem.emit,
                                on_vlm_off=self._vlm_off.emit) if stages else None
        self._loaded_worker = worker  # for close(), should the player quit before _on_ready
        self._ready.emit(worker, [s.name for s in stages])

    def _make_worker(self, stages: list[Any]) -> None:
        from models.pipeline.worker import AnalysisWorker  # noqa: PLC0415

        self._worker = AnalysisWorker(stages, on_result=self._result.emit,
                                      on_problem=self._problem.emit,
                                      on_vlm_off=self._vlm_off.emit)

    @Slot(object, object)
    def _on_ready(self, worker: Any, names: list[str]) -> None:
        self._built = True
        if self._closed:
            if worker is not None:
                worker.stop()
            return
        if worker is None:
            if self._waiting_vlm is None:
                self._no_models = True
                return
            self._make_worker([])
        else:
            self._worker = worker
        self.stage_names = list(names)
        if self._waiting_vlm is not None:
            self._attach(*self._waiting_vlm)
            self._waiting_vlm = None
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
        self._unreadable = False
        self._damaged = self._told_damage = False
        from models.pipeline.store import ObservationStore  # noqa: PLC0415

        self._store = ObservationStore()
        self._mixed_models = False
        self._said = []  # nothing of the last film is context for this one
        self.compose = compose
        self._pending = (str(path), at, compose)

        def load(p: str = str(path)) -> None:
            self._cached.emit(p, ObservationStore.load(p, self.cache_config))

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
                from models.pipeline.questions import cached_descriptions  # noqa: PLC0415

                descs = [*Composer().feed(self._observations),
                         *cached_descriptions(self._observations)]
                if descs:
                    self.descriptions.emit(list(descs))
            self.analysed.emit(self._duration)
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
        self._last_frame_t = None
        if self._worker is None:
            self._pending = (str(path), at, compose)
            self.warm_up()
            return
        from models.pipeline.feeder import LookAhead  # noqa: PLC0415
        from models.pipeline.reader import ReaderError  # noqa: PLC0415

        # A new film: nobody from the last one is known here, and what the worker still
        # brings of it (asked before this token) is not this film's.
        self._run_token = self._worker.reset_stages()

        def damaged(span: Any, film: str = str(path)) -> None:  # on the reader's thread
            self._damage.emit(film, span)

        try:
            self._lookahead = LookAhead(str(path), self._worker, fps=LOOKAHEAD_FPS,
                                        max_width=FRAME_WIDTH, start=at, on_damage=damaged)
            self._lookahead.start()
        except ReaderError as exc:
            self._lookahead = None
            self._unreadable = True
            self.problem.emit(str(exc))

    @Slot(str, object)
    def _on_damage(self, path: str, span: Any) -> None:
        """The look-ahead found a part of the film it cannot read: said once a film."""
        if path != self._path or self._closed:
            return
        self._damaged = True
        if not self._told_damage:
            from models.pipeline.reader import damage_message  # noqa: PLC0415

            self._told_damage = True
            self.problem.emit(damage_message(Path(path).name, [span]))

    def keep_ahead(self, playhead: float) -> None:
        """On a slow machine the analysis can fall behind the film: then it jumps to just ahead
        of the playhead, so what it finds is still worth saying."""
        self._playhead = playhead
        la = self._lookahead
        if la is None or getattr(la, "finished", False):
            return
        if la.position < playhead - 1.0:
            log.info("analysis fell behind (%.1f s < %.1f s): jumping ahead", la.position,
                     playhead)
            self.seek(playhead + 0.5)

    def seek(self, t: float) -> None:
        self._last_frame_t = None  # a new run: the stretch before it was not looked at
        self._forget_gap_questions()
        if self._lookahead is not None:
            self._lookahead.seek(t)
            self._composer.rewind()  # the same film: people keep their names and labels
        elif self._pending is not None:
            self._pending = (self._pending[0], t, self._pending[2])

    # ----- vision-language model ----------------------------------------------------------------
    def set_vlm(self, name_or_path: str) -> None:
        """Load the vision-language model the user chose (on a thread: it takes seconds); the
        analysis worker owns it from then on."""
        if name_or_path == self._vlm_name:
            return
        self._vlm_name = name_or_path
        self._drop_waiting_vlm()  # loaded for an earlier choice
        self._forget_model_answers()  # the cache keeps one model's answers
        if not name_or_path:  # none: the detectors alone
            self._vlm, self._engine = "", None
            if self._worker is not None:
                self._worker.attach_vlm(None)
            self._stop_gpu_worker()
            return

        building = self._building

        def load() -> None:
            from models.vlm.loader import load_vlm  # noqa: PLC0415

            if building is not None:  # the detectors first: on two cores, loading both at once
                building.join()       # made the look-ahead miss the film's first seconds
            try:
                engine = load_vlm(name_or_path)
            except Exception as exc:  # noqa: BLE001 - the narrator goes on without it
                self._problem_text.emit(f"The vision-language model could not be used: {exc}")
                self._vlm_failed.emit(str(name_or_path))
                return
            self._vlm_loaded.emit(engine, str(name_or_path))

        threading.Thread(target=load, name="vlm-load", daemon=True).start()

    def use_engine(self, engine: Any, name: str) -> None:
        """Use a vision-language engine that is already loaded (``set_vlm`` loads one by name)."""
        if name != self._vlm_name:
            self._forget_model_answers()
        self._vlm_name = name
        self._on_vlm_loaded(engine, name)

    @Slot(object, str)
    def _on_vlm_loaded(self, engine: Any, name: str) -> None:
        if self._closed or name != self._vlm_name:
            engine.close()
            return
        notes = getattr(engine, "notes", None)
        for note in list(notes or ()):
            self.problem.emit(note)
        if notes:
            notes.clear()  # said once (the worker passes on only new ones)
        if self._worker is None and self._built:
            self._make_worker([])  # no detectors here, but the model can still answer
        if self._worker is None:
            self._drop_waiting_vlm()
            self._waiting_vlm = (engine, name)  # attached once the detectors are loaded
            return
        self._attach(engine, name)

    def _drop_waiting_vlm(self) -> None:
        waiting, self._waiting_vlm = self._waiting_vlm, None
        if waiting is not None:
            waiting[0].close()

    def _forget_model_answers(self) -> None:
        """Another model (or none): the answers cached for this film came from the old one; the
        cache is keyed by the model, so they are dropped rather than saved under the new name."""
        if self._store is not None and not self.from_cache:
            from models.pipeline.worker import VLM  # noqa: PLC0415

            if self._store.drop_kind(VLM):
                self._mixed_models = True  # part of the film has no answers from the new one

    def _attach(self, engine: Any, name: str) -> None:
        """One worker thread per device: a model on a GPU gets its own, so the detectors (on
        the CPU) and the model work at the same time; on the CPU one thread owns both (two
        would only fight over the same cores)."""
        device = str(getattr(engine, "device", "") or "cpu")
        if device.startswith("cuda"):
            self._worker.attach_vlm(None)  # its queued questions are answered without a model
            if self._gpu_worker is None or self._gpu_worker.device != device:
                self._stop_gpu_worker()
                from models.pipeline.worker import AnalysisWorker  # noqa: PLC0415

                self._gpu_worker = AnalysisWorker([], on_result=self._result.emit,
                                                  on_problem=self._problem.emit, device=device,
                                                  vlm_batch=8, on_vlm_off=self._vlm_off.emit)
            self._gpu_worker.attach_vlm(engine)
        else:
            self._stop_gpu_worker()
            self._worker.vlm_batch = 1
            self._worker.attach_vlm(engine)
        self._vlm, self._engine = name, engine
        if self._planner is not None:
            self._planner.max_outstanding = 4 if device.startswith("cuda") else 1
        self.vlm_ready.emit(name)

    def _follow_the_model_to_the_cpu(self) -> None:
        """A model on a GPU that ran out of memory moves itself to the processor: from then on
        it is asked one question at a time, as a model on the CPU is (its own thread stays)."""
        if self._gpu_worker is None or self._engine is None or \
                str(getattr(self._engine, "device", "cpu")).startswith("cuda"):
            return
        if self._gpu_worker.vlm_batch != 1:
            log.info("the model moved to the CPU: one question at a time from now on")
        self._gpu_worker.vlm_batch = 1
        if self._planner is not None:
            self._planner.max_outstanding = 1

    def _stop_gpu_worker(self, wait: bool = False) -> None:
        """Stop the model's own worker. The questions still queued there are answered here (a
        describe now from the detectors; the others are forgotten, and people's labels asked
        again of the next model); the thread finishes its current answer and closes the model
        in the background unless ``wait``, so the window never waits for it."""
        worker, self._gpu_worker = self._gpu_worker, None
        if worker is None:
            return
        for token, job in list(self._vlm_jobs.items()):
            if job.worker is not worker:
                continue
            del self._vlm_jobs[token]
            if self._closed:
                continue
            if job.kind == "now":
                if job.info["spoken"] == 0:
                    self.answer.emit(job.info["t"], job.info["seen"])
                self.answer_done.emit(job.info["t"])
            elif job.kind == "label":
                self._labelled.discard(int(job.info))
        if self._planner is not None:
            self._planner.reset()
        worker.cancel(lambda r: True)  # an answer being streamed stops at once
        if wait:
            worker.stop()  # closes its model
        else:
            threading.Thread(target=worker.stop, name="vlm-stop", daemon=True).start()

    @property
    def _model_worker(self) -> Any:
        """The worker that owns the model."""
        return self._gpu_worker or self._worker

    @Slot(str)
    def _on_vlm_failed(self, name: str) -> None:
        if name == self._vlm_name:  # the model in use before (if any) goes on answering
            self._vlm_name = self._vlm

    @Slot(str, str)
    def _on_stage_problem(self, name: str, text: str) -> None:
        from models.pipeline.worker import VLM_NAME  # noqa: PLC0415

        if name == VLM_NAME:  # a failing model was switched off: _on_vlm_off tells the user
            return
        self._all_stages = False
        self.problem.emit(f"{name} stopped: {text}")

    @Slot(object, str)
    def _on_vlm_off(self, engine: Any, why: str = "") -> None:
        """The worker switched ``engine`` off after it failed too often. Only if it is still the
        model in use is the narrator left without one, and the user told (they may have chosen
        another since)."""
        if engine is not self._engine:
            log.info("a model no longer in use was switched off: %s", why)
            return
        if why.endswith("."):  # the model's own reason, whole, with what to do about it
            self.problem.emit(f"{why} Until then, descriptions come from the detectors.")
        else:
            self.problem.emit(f"The vision-language model is off: {why}. To try it again, "
                              f"restart the player, or choose no model and then it again in "
                              f"Settings.")
        if self._vlm_name == self._vlm:
            self._vlm_name = ""
            self._forget_model_answers()
        self._vlm, self._engine = "", None

    @property
    def has_vlm(self) -> bool:
        return bool(self._vlm)

    @property
    def answering(self) -> bool:
        """The model is still writing an answer to "describe now" or a question."""
        return any(job.kind == "now" for job in self._vlm_jobs.values())

    @property
    def vlm_loading(self) -> bool:
        """A model was asked for and is still loading."""
        return bool(self._vlm_name) and not self._vlm

    def use_gaps(self, room_at: Callable[[float], float | None],
                 gap_at: Callable[[float], Any], next_gap: Callable[[float], Any]) -> None:
        """Where the pauses in the dialogue are: the model describes a frame for each pause
        worth filling, ahead of the playhead."""
        from models.pipeline.questions import GapPlanner  # noqa: PLC0415

        self._planner = GapPlanner(room_at, gap_at, next_gap)

    def _ask_model(self, kind: str, t: float, question: Any, info: Any,
                   stream: bool = False) -> None:
        """Send ``question`` (a VlmRequest) to the worker that owns the model: "now" at the
        highest priority, streamed; "gap" and "label" at gap priority, batched."""
        from models.pipeline.worker import NO_FRAME, VLM, Priority, Request  # noqa: PLC0415

        priority = Priority.NOW if kind == "now" else Priority.GAP
        worker = self._model_worker
        if worker is None:  # closed
            return
        token = worker.submit(Request(priority, t, NO_FRAME, kind=VLM, vlm=question,
                                      stream=stream))
        self._vlm_jobs[token] = _Job(kind, info, worker, self._vlm)

    def _ask_now(self, t: float, image: np.ndarray, seen: str, question: str | None) -> None:
        from models.vlm import VlmRequest, ask_prompt, describe_prompt  # noqa: PLC0415

        recent = self.recent(t)
        prompt = (ask_prompt(question, seen, recent) if question
                  else describe_prompt(4.0, self.detail, seen, recent))
        self._ask_model("now", t, VlmRequest(image, prompt, max_new_tokens=48, max_words=30),
                        {"seen": seen, "spoken": 0, "t": t}, stream=True)

    def _ask_for_gap(self, t: float, image: np.ndarray, shot_change: bool) -> None:
        """Look-ahead: a description of this frame from the model, for the pause it falls in."""
        if self._planner is None or not self.compose:
            return
        if t - self._playhead < self.vlm_seconds + 1.0:
            return  # the answer would come after its moment
        # A slow model (a CPU) may take at most about a third of the analysis time.
        self._planner.min_interval = max(6.0, 3.0 * self.vlm_seconds)
        gap = self._planner.consider(t, shot_change)
        if gap is None:
            return
        from models.pipeline.questions import gap_request  # noqa: PLC0415

        context = [o for o in self._observations if t - 8.0 <= o.t <= t + 0.01]
        seen = Composer.describe(context, t + 0.05, self.detail, self._composer.labels)
        question = gap_request(image, gap, self.detail, seen, self.recent(t))
        self._ask_model("gap", t, question, gap)

    def _ask_labels(self, t: float, image: np.ndarray, observations: Sequence[Observation]) -> None:
        """A new person in the film: ask the model what to call them ("the man in the red
        coat"), so the narration names them the same way from then on."""
        from models.pipeline.questions import label_requests  # noqa: PLC0415

        for pid, question in label_requests(image, observations, self._labelled):
            self._ask_model("label", t, question, pid)

    def _on_model_result(self, result: Any) -> None:
        token = result.request.token
        job = self._vlm_jobs.get(token)
        for note in result.notes:
            self.problem.emit(note)
        self._follow_the_model_to_the_cpu()
        if job is None:
            return
        kind, info = job.kind, job.info
        text = " ".join(o.text for o in result.observations if o.kind == "vlm").strip()
        t = result.request.t
        if kind == "now":
            if not result.final:  # one sentence, said as soon as it is written
                if text:
                    (self.answer if info["spoken"] == 0 else self.answer_more).emit(t, text)
                    info["spoken"] += 1
                return
            del self._vlm_jobs[token]
            if info["spoken"] == 0:  # nothing came (or the model failed): the detectors answer
                self.answer.emit(t, text or info["seen"])
            self.answer_done.emit(t)
            return
        del self._vlm_jobs[token]
        if kind == "label":
            pid = int(info)
            if text:
                self._composer.name_person(pid, text)
            elif self._label_tries.get(pid, 0) < 2:  # no answer (no model, or it failed)
                self._label_tries[pid] = self._label_tries.get(pid, 0) + 1
                self._labelled.discard(pid)  # asked again when next seen
            return
        if self._planner is not None:  # a seek forgets older jobs, so this one is current
            self._planner.answered()
        if kind == "gap" and result.seconds > 0:
            self.vlm_seconds = (result.seconds if not self.vlm_seconds
                                else 0.7 * self.vlm_seconds + 0.3 * result.seconds)
        if text:
            from models.pipeline.questions import answer_observation, gap_description  # noqa: PLC0415

            if self._store is not None and job.model == self._vlm_name:
                self._store.add(answer_observation(info, text))
            elif self._store is not None:  # an older model's answer: not the cached model's
                self._mixed_models = True
            if self.compose:
                self.descriptions.emit([gap_description(info, text)])

    def describe_now(self, t: float, frame: tuple[int, int, bytes] | None,
                     question: str | None = None) -> bool:
        """Ask about the frame on screen, ahead of everything else: the detectors, then the
        vision-language model if one is set up (its first sentence is said as soon as it is
        written). False when analysis is not ready (the caller answers from what it has)."""
        if frame is None or self._worker is None:
            return False
        from models.pipeline.worker import Priority, Request  # noqa: PLC0415

        self._supersede_now()
        image = frame_array(frame)
        token = self._worker.submit(Request(Priority.NOW, t, image, kind="now"))
        self._now_tokens[token] = t
        self._questions[token] = question
        self._images[token] = image
        return True

    def _supersede_now(self) -> None:
        """A newer "describe now" or question replaces the one still being answered: its
        detectors' result is ignored, and the model stops writing its answer."""
        if self._now_tokens and self._worker is not None:
            stale = set(self._now_tokens)
            self._worker.cancel(lambda r: r.token in stale)
        self._now_tokens.clear()
        self._questions.clear()
        self._images.clear()
        old = {token for token, job in self._vlm_jobs.items() if job.kind == "now"}
        for token in old:  # no answer_done: the new answer takes over the film's hold
            job = self._vlm_jobs.pop(token)
            job.worker.cancel(lambda r, tokens=old: r.token in tokens)

    @Slot(object)
    def _on_result(self, result: Any) -> None:
        if self._closed:  # queued before the close
            return
        from models.pipeline.worker import VLM  # noqa: PLC0415

        if result.request.kind == VLM:
            self._on_model_result(result)
            return
        observations = list(result.observations)
        token = getattr(result.request, "token", None)
        if result.request.kind == "now" and token not in self._now_tokens:
            return  # a describe now that a newer one replaced
        if token in self._now_tokens:
            t = self._now_tokens.pop(token)
            question = self._questions.pop(token, None)
            image = self._images.pop(token, None)
            context = [o for o in self._observations if t - 8.0 <= o.t <= t]
            seen = Composer.describe(context + observations, t + 0.05, self.detail,
                                     self._composer.labels)
            if self.has_vlm and image is not None:
                self._ask_now(t, image, seen, question)
                self._ask_labels(t, image, observations)  # someone not seen in the look-ahead
            else:
                self.answer.emit(t, seen)
                self.answer_done.emit(t)
            return
        if result.request.kind == "flush":
            self._last_frame_t = None  # the worker is between two runs (a seek, a new film)
        if result.request.kind in ("frame", "flush") and token is not None and \
                token <= self._run_token:
            return  # the film before this one: its last frames, and its stages' flush
        self._observations += observations
        if self._store is not None and getattr(result.request, "kind", "") != "flush":
            self._store.record(result.request.t, observations, 1.0 / LOOKAHEAD_FPS,
                               after=self._last_frame_t)
            self._last_frame_t = result.request.t if result.request.kind == "frame" else None
        if len(self._observations) > 20000:
            self._observations = self._observations[-10000:]
        if self.compose:
            descs: Sequence[Description] = self._composer.feed(observations)
            if descs:
                self.descriptions.emit(list(descs))
        if result.request.kind == "frame":
            self.analysed.emit(result.request.t)
        image = result.request.frame
        if self.has_vlm and result.request.kind == "frame" and image.size:
            self._ask_labels(result.request.t, image, observations)
            self._ask_for_gap(result.request.t, image,
                              any(o.kind == "shot" for o in observations))

    def observations(self) -> list[Observation]:
        return list(self._observations)

    def _forget_gap_questions(self, labels: bool = False) -> None:
        """The look-ahead moves: questions about frames no longer ahead are dropped (and, for a
        new film, the questions about people's labels too: within a film people keep their ids
        across a seek, so those still hold). An answer already being written is ignored."""
        if self._planner is not None:
            self._planner.reset()
        kinds = ("gap", "label") if labels else ("gap",)
        dropped = {token for token, job in self._vlm_jobs.items() if job.kind in kinds}
        workers = {id(self._vlm_jobs[token].worker): self._vlm_jobs[token].worker
                   for token in dropped}
        for token in dropped:
            del self._vlm_jobs[token]
        for worker in workers.values():
            worker.cancel(lambda r: r.token in dropped)

    def stop_lookahead(self) -> None:
        self._forget_gap_questions(labels=True)
        self._labelled.clear()
        self._label_tries.clear()
        self._pending = None
        if self._lookahead is not None:
            self._lookahead.stop()
            # Damage found just now may not have reached _on_damage yet: not cached either.
            self._damaged = self._damaged or bool(self._lookahead.reader.damage)
            self._lookahead = None
            if self._worker is not None:
                self._worker.cancel_lookahead()  # its frames waiting in the queue
        self._save_cache()

    def _save_cache(self) -> None:
        """Keep what was seen of the whole film, so the next viewing narrates at once."""
        store, path = self._store, self._path
        if store is None or self.from_cache or not path or self._duration <= 0:
            return
        if self._mixed_models:  # saved under the new model's name, it would lack its answers
            log.info("not caching the analysis of %s: the model changed while it ran", path)
            return
        if not self._all_stages:  # a weaker analysis must not stand in for the full one
            log.info("not caching the analysis of %s: not every stage could run", path)
            return
        if self._damaged:  # the next viewing looks again at what can be read
            log.info("not caching the analysis of %s: part of it could not be read", path)
            return
        if not store.is_covered(min(1.0, self._duration / 2), max(0.0, self._duration - 1.0)):
            return
        self.from_cache = True  # saved once
        threading.Thread(target=store.save, args=(path, self.cache_config), name="cache-save",
                         daemon=False).start()

    def close(self) -> None:
        self._closed = True
        # Quitting while the detectors load: let the loading end and stop what it made, so no
        # native library is still busy on a thread of its own while Python shuts down (seen
        # as an abort, exit status -6, when terminal mode was quit a second after it started).
        if self._building is not None and self._building.is_alive():
            self._building.join(timeout=LOAD_WAIT_ON_CLOSE)
        loaded, self._loaded_worker = self._loaded_worker, None
        if loaded is not None and loaded is not self._worker:
            loaded.stop()
        self._drop_waiting_vlm()
        self.stop_lookahead()
        self._stop_gpu_worker(wait=True)
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
