"""The vision-language model's side of an analysis session: loading it, routing it to a device,
and the questions put to it (describe now, a description for each pause, people's labels).

:class:`ModelQuestions` is a part of :class:`~models.pipeline.session.AnalysisSession`; it uses
the session's worker, composer, store and events, and runs on the owner's thread like the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from models.pipeline.composer import Composer
from models.pipeline.events import SessionEvents
from models.pipeline.jobs import GapJob, LabelJob, ModelJob, NowJob
from models.types import Observation
from models.vlm.base import VlmEngine

log = logging.getLogger(__name__)

GPU_BATCH = 8
"""Look-ahead questions answered at once by a model on a GPU."""


def _device(engine: VlmEngine) -> str:
    return engine.device or "cpu"


class ModelQuestions:
    """The model, its worker and its questions (see the module's text)."""

    # Provided by AnalysisSession.
    events: SessionEvents
    offline: bool
    compose: bool
    detail: int
    _closed: bool
    _built: bool
    _worker: Any
    _building: threading.Thread | None
    _store: Any
    _composer: Composer
    _observations: list[Observation]
    _playhead: float
    from_cache: bool

    if TYPE_CHECKING:
        def _later(self, fn: Callable[..., None], *args: Any) -> None: ...
        def _new_worker(self, stages: list[Any], device: str = "cpu",
                        vlm_batch: int = 1) -> Any: ...
        def recent(self, t: float, seconds: float = ...) -> list[str]: ...

    def __init__(self) -> None:
        self._gpu_worker: Any = None  # a model on a GPU gets a worker thread of its own
        self._vlm = ""  # the attached model's name
        self._engine: Any = None  # the attached engine
        self._label_tries: dict[int, int] = {}
        self._mixed_models = False  # this viewing's findings came from more than one model
        self._vlm_name = ""  # the model asked for
        self._waiting_vlm: tuple[Any, str] | None = None
        self._vlm_jobs: dict[int, ModelJob] = {}  # token -> the question's job
        self._planner: Any = None
        self._labelled: set[int] = set()
        self.vlm_seconds = 0.0  # how long a look-ahead answer takes (running mean)

    # ----- choosing and loading the model -------------------------------------------------------
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
                self._later(self.events.problem,
                            f"The vision-language model could not be used: {exc}")
                self._later(self._on_vlm_failed, str(name_or_path))
                return
            self._later(self._on_vlm_loaded, engine, str(name_or_path))

        threading.Thread(target=load, name="vlm-load", daemon=True).start()

    def use_engine(self, engine: Any, name: str) -> None:
        """Use a vision-language engine that is already loaded (``set_vlm`` loads one by name)."""
        if name != self._vlm_name:
            self._forget_model_answers()
        self._vlm_name = name
        self._on_vlm_loaded(engine, name)

    def _on_vlm_loaded(self, engine: Any, name: str) -> None:
        if self._closed or name != self._vlm_name:
            engine.close()
            return
        notes = engine.notes
        for note in list(notes):
            self.events.problem(note)
        if isinstance(notes, list):
            notes.clear()  # said once (the worker passes on only new ones)
        if self._worker is None and self._built:
            self._worker = self._new_worker([])  # no detectors here; the model can still answer
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
            from models.pipeline.worker import Kind  # noqa: PLC0415

            if self._store.drop_kind(Kind.VLM.value):
                self._mixed_models = True  # part of the film has no answers from the new one

    def _attach(self, engine: Any, name: str) -> None:
        """One worker thread per device: a model on a GPU gets its own, so the detectors (on
        the CPU) and the model work at the same time; on the CPU one thread owns both (two
        would only fight over the same cores)."""
        device = _device(engine)
        if device.startswith("cuda"):
            self._worker.attach_vlm(None)  # its queued questions are answered without a model
            if self._gpu_worker is None or self._gpu_worker.device != device:
                self._stop_gpu_worker()
                self._gpu_worker = self._new_worker([], device=device, vlm_batch=GPU_BATCH)
            self._gpu_worker.attach_vlm(engine)
        else:
            self._stop_gpu_worker()
            self._worker.vlm_batch = 1
            self._worker.attach_vlm(engine)
        self._vlm, self._engine = name, engine
        self._set_outstanding(4 if device.startswith("cuda") else 1)
        self.events.vlm_ready(name)

    def _set_outstanding(self, live: int) -> None:
        """How many look-ahead questions may wait for answers: a few on a GPU, one on the CPU;
        offline, all of them (nothing is late: there is no playhead)."""
        if self._planner is not None:
            self._planner.max_outstanding = 1 << 30 if self.offline else live

    def _follow_the_model_to_the_cpu(self) -> None:
        """A model on a GPU that ran out of memory moves itself to the processor: from then on
        it is asked one question at a time, as a model on the CPU is (its own thread stays)."""
        if self._gpu_worker is None or self._engine is None or \
                _device(self._engine).startswith("cuda"):
            return
        if self._gpu_worker.vlm_batch != 1:
            log.info("the model moved to the CPU: one question at a time from now on")
        self._gpu_worker.vlm_batch = 1
        self._set_outstanding(1)

    def _stop_gpu_worker(self, wait: bool = False) -> None:
        """Stop the model's own worker. The questions still queued there are answered here (a
        describe now from the detectors; the others are forgotten, and people's labels asked
        again of the next model); the thread finishes its current answer and closes the model
        in the background unless ``wait``, so the owner never waits for it."""
        worker, self._gpu_worker = self._gpu_worker, None
        if worker is None:
            return
        for token, job in list(self._vlm_jobs.items()):
            if job.worker is not worker:
                continue
            del self._vlm_jobs[token]
            if self._closed:
                continue
            if isinstance(job, NowJob):
                if job.spoken == 0:
                    self.events.answer(job.t, job.seen)
                self.events.answer_done(job.t)
            elif isinstance(job, LabelJob):
                self._labelled.discard(job.pid)
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

    def _on_vlm_failed(self, name: str) -> None:
        if name == self._vlm_name:  # the model in use before (if any) goes on answering
            self._vlm_name = self._vlm

    def _on_vlm_off(self, engine: Any, why: str = "") -> None:
        """The worker switched ``engine`` off after it failed too often. Only if it is still the
        model in use is the narrator left without one, and the user told (they may have chosen
        another since)."""
        if engine is not self._engine:
            log.info("a model no longer in use was switched off: %s", why)
            return
        if why.endswith("."):  # the model's own reason, whole, with what to do about it
            self.events.problem(f"{why} Until then, descriptions come from the detectors.")
        else:
            self.events.problem(f"The vision-language model is off: {why}. To try it again, "
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
        return any(isinstance(job, NowJob) for job in self._vlm_jobs.values())

    @property
    def vlm_loading(self) -> bool:
        """A model was asked for and is still loading."""
        return bool(self._vlm_name) and not self._vlm

    # ----- the questions ------------------------------------------------------------------------
    def use_gaps(self, room_at: Callable[[float], float | None],
                 gap_at: Callable[[float], Any], next_gap: Callable[[float], Any]) -> None:
        """Where the pauses in the dialogue are: the model describes a frame for each pause
        worth filling, ahead of the playhead."""
        from models.pipeline.questions import GapPlanner  # noqa: PLC0415

        self._planner = GapPlanner(room_at, gap_at, next_gap)
        if self.offline:
            self._set_outstanding(1)

    def _ask_model(self, job: Callable[[Any, str], ModelJob], t: float, question: Any,
                   stream: bool = False) -> None:
        """Send ``question`` (a VlmRequest) to the worker that owns the model: describe now at
        the highest priority, streamed; pauses and labels at gap priority, batched."""
        from models.pipeline.worker import NO_FRAME, Kind, Priority, Request  # noqa: PLC0415

        worker = self._model_worker
        if worker is None:  # closed
            return
        made = job(worker, self._vlm)
        priority = Priority.NOW if isinstance(made, NowJob) else Priority.GAP
        token = worker.submit(Request(priority, t, NO_FRAME, kind=Kind.VLM, vlm=question,
                                      stream=stream))
        self._vlm_jobs[token] = made

    def _ask_now(self, t: float, image: np.ndarray, seen: str, question: str | None) -> None:
        from models.vlm import VlmRequest, ask_prompt, describe_prompt  # noqa: PLC0415

        recent = self.recent(t)
        prompt = (ask_prompt(question, seen, recent) if question
                  else describe_prompt(4.0, self.detail, seen, recent))
        self._ask_model(lambda w, m: NowJob(t, seen, w, m), t,
                        VlmRequest(image, prompt, max_new_tokens=48, max_words=30), stream=True)

    def _ask_for_gap(self, t: float, image: np.ndarray, shot_change: bool) -> None:
        """Look-ahead: a description of this frame from the model, for the pause it falls in."""
        if self._planner is None or not self.compose:
            return
        if not self.offline:
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
        self._ask_model(lambda w, m: GapJob(gap, w, m), t, question)

    def _ask_labels(self, t: float, image: np.ndarray,
                    observations: Sequence[Observation]) -> None:
        """A new person in the film: ask the model what to call them ("the man in the red
        coat"), so the narration names them the same way from then on."""
        from models.pipeline.questions import label_requests  # noqa: PLC0415

        for pid, question in label_requests(image, observations, self._labelled):
            self._ask_model(partial(LabelJob, pid), t, question)

    def _on_model_result(self, result: Any) -> None:
        token = result.request.token
        job = self._vlm_jobs.get(token)
        for note in result.notes:
            self.events.problem(note)
        self._follow_the_model_to_the_cpu()
        if job is None:
            return
        text = " ".join(o.text for o in result.observations if o.kind == "vlm").strip()
        t = result.request.t
        if isinstance(job, NowJob):
            if not result.final:  # one sentence, said as soon as it is written
                if text:
                    (self.events.answer if job.spoken == 0 else self.events.answer_more)(t, text)
                    job.spoken += 1
                return
            del self._vlm_jobs[token]
            if job.spoken == 0:  # nothing came (or the model failed): the detectors answer
                self.events.answer(t, text or job.seen)
            self.events.answer_done(t)
            return
        del self._vlm_jobs[token]
        if isinstance(job, LabelJob):
            if text:
                self._composer.name_person(job.pid, text)
            elif self._label_tries.get(job.pid, 0) < 2:  # no answer (no model, or it failed)
                self._label_tries[job.pid] = self._label_tries.get(job.pid, 0) + 1
                self._labelled.discard(job.pid)  # asked again when next seen
            return
        if self._planner is not None:  # a seek forgets older jobs, so this one is current
            self._planner.answered()
        if result.seconds > 0:
            self.vlm_seconds = (result.seconds if not self.vlm_seconds
                                else 0.7 * self.vlm_seconds + 0.3 * result.seconds)
        if text:
            from models.pipeline.questions import (  # noqa: PLC0415
                answer_observation,
                gap_description,
            )

            if self._store is not None and job.model == self._vlm_name:
                self._store.add(answer_observation(job.question, text))
            elif self._store is not None:  # an older model's answer: not the cached model's
                self._mixed_models = True
            if self.compose:
                self.events.descriptions([gap_description(job.question, text)])

    def _cancel_now_questions(self) -> None:
        """Describe now's model question is replaced: no answer_done (the new answer takes over
        the film's hold), and the model stops writing."""
        old = {token for token, job in self._vlm_jobs.items() if isinstance(job, NowJob)}
        for token in old:
            job = self._vlm_jobs.pop(token)
            job.worker.cancel(lambda r, tokens=old: r.token in tokens)

    def _forget_gap_questions(self, labels: bool = False) -> None:
        """The look-ahead moves: questions about frames no longer ahead are dropped (and, for a
        new film, the questions about people's labels too: within a film people keep their ids
        across a seek, so those still hold). An answer already being written is ignored."""
        if self._planner is not None:
            self._planner.reset()
        kinds: tuple[type, ...] = (GapJob, LabelJob) if labels else (GapJob,)
        dropped = {token for token, job in self._vlm_jobs.items() if isinstance(job, kinds)}
        workers = {id(self._vlm_jobs[token].worker): self._vlm_jobs[token].worker
                   for token in dropped}
        for token in dropped:
            del self._vlm_jobs[token]
        for worker in workers.values():
            worker.cancel(lambda r: r.token in dropped)
