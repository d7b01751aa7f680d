"""The analysis worker: one thread per device owns the perception stages and serves requests.

:class:`AnalysisWorker` runs every enabled :class:`~models.perception.Stage` on each requested
frame, most urgent first (:class:`Priority`: describe-now and questions, then the next gaps, then
look-ahead), and hands each :class:`Result` to ``on_result`` on its own thread; the player bridges
that to Qt with a signal. A stage that is unusable at start (``problem()``) or that fails three
frames in a row is switched off and reported through ``on_problem``; the others keep working.

:class:`LookAhead` feeds a :class:`~models.pipeline.reader.FrameReader`'s frames to a worker at look-ahead
priority, keeping only a few queued so urgent requests never wait behind a long backlog.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from models.perception import Stage, as_stage
from models.types import Observation

if TYPE_CHECKING:
    from models.vlm.base import VlmEngine, VlmRequest

log = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 3
"""Frames in a row a stage may fail on before it is switched off."""
NO_FRAME = np.zeros((0, 0, 3), dtype=np.uint8)
NO_FRAME.flags.writeable = False


class Kind(str, Enum):
    """What a request asks for (a ``str`` enum: it compares equal to its value)."""

    FRAME = "frame"
    """A frame of the look-ahead's stream."""
    NOW = "now"
    """Describe now: a frame from the playhead, looked at apart from the stream."""
    VLM = "vlm"
    """A question to the vision-language model."""
    FLUSH = "flush"
    """The stages' last findings before a reset (sent by the worker)."""
    RESET = "reset"
    """Flush and reset the stages (a new film)."""
    REWIND = "rewind"
    """Flush and rewind the stages (a seek in the same film)."""
    SWAP = "swap-vlm"
    """Change the model (internal)."""


class Priority(IntEnum):
    """How urgent a request is; lower is served first."""

    NOW = 0
    """Describe now, or a question about the current frame."""
    GAP = 1
    """A frame for a gap that is coming up."""
    LOOKAHEAD = 2
    """Analysis ahead of the playhead."""


@dataclass(frozen=True)
class Request:
    """Analyse ``frame`` (RGB ``uint8``, (height, width, 3)) seen at media time ``t``.

    ``kind`` is a label the caller reads back from the result ("frame" for plain analysis; the
    worker itself sends "flush" results). A request of kind "now" (:data:`NOW`: describe now, a
    frame from the playhead, away from the look-ahead's stream) is looked at alone: stages that
    can (``look``) leave what they follow from frame to frame as it was. ``token`` is given by
    :meth:`AnalysisWorker.submit` when left at 0.
    """

    priority: Priority
    t: float
    frame: np.ndarray = field(repr=False, compare=False)
    kind: Kind = Kind.FRAME
    token: int = 0
    vlm: VlmRequest | None = field(default=None, repr=False, compare=False)
    """Set for a question to the vision-language model (``kind`` "vlm"): the stages are not
    run; the model answers, in batches with other queued questions of the same priority."""
    stream: bool = False
    """For a "vlm" request: deliver each sentence as soon as it is written (results with
    ``final`` False), then the whole answer."""


@dataclass(frozen=True)
class Result:
    """What the enabled stages saw for ``request``, and how long they took (seconds)."""

    request: Request
    observations: tuple[Observation, ...]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict, compare=False)
    final: bool = True
    """False for a streamed sentence; the last result of a request is final."""
    notes: tuple[str, ...] = ()
    """Things the user should hear about (the model fell back to the CPU, the model failed)."""


@dataclass(frozen=True)
class WorkerStats:
    """Frames analysed per priority, mean seconds per frame per stage, failures and switched-off
    stages (name to reason), and requests still queued."""

    done: dict[Priority, int]
    stage_seconds: dict[str, float]
    failures: dict[str, int]
    disabled: dict[str, str]
    queued: int


ResultCallback = Callable[[Result], None]
ProblemCallback = Callable[[str, str], None]

_RESET = Kind.RESET
_REWIND = Kind.REWIND
_SWAP = Kind.SWAP
VLM = Kind.VLM
NOW = Kind.NOW
"""The kind of a request for one frame apart from the stream (describe now)."""
VLM_NAME = "vision-language model"
_TOKENS = itertools.count(1)
"""Tokens are unique across workers (a caller may keep one table of jobs for several)."""


def _close_quietly(engine: Any) -> None:
    """Close a vision-language engine (or nothing); a failure to close (a driver already gone)
    is logged, never raised: it must not stop the worker or the player from shutting down."""
    if engine is None:
        return
    try:
        engine.close()
    except Exception:
        log.exception("closing the vision-language model failed")


class AnalysisWorker:
    """One thread that owns ``stages`` and serves requests by priority, oldest first within one.

    ``on_result`` and ``on_problem`` are called on the worker thread; they must be quick and must
    not call back into blocking worker methods (:meth:`stop`). ``device`` names the device whose
    models the stages use ("cpu", "cuda:0"); it names the thread and is shown in logs.
    ``on_vlm_off`` is called (on the worker thread) with the vision-language engine the worker
    switched off after it failed too often, or at once when the engine switched itself off
    (its ``off``), and why: a clause ("it failed 3 times in a row (...); ..."), or the
    engine's own reason, whole sentences ending with a full stop.
    """

    def __init__(self, stages: Sequence[Stage], on_result: ResultCallback,
                 device: str = "cpu", on_problem: ProblemCallback | None = None,
                 autostart: bool = True, vlm_batch: int = 4,
                 on_vlm_off: Callable[[Any, str], None] | None = None) -> None:
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"Each stage needs its own name; these repeat: {names}.")
        self.device = device
        self._stages = [as_stage(stage) for stage in stages]
        self._on_result = on_result
        self._on_problem = on_problem
        self._on_vlm_off = on_vlm_off
        self._enabled: list[Stage] = []
        self._disabled: dict[str, str] = {}
        self._failures_in_a_row: dict[str, int] = dict.fromkeys(names, 0)
        self._failures: dict[str, int] = dict.fromkeys(names, 0)
        self._stage_total: dict[str, float] = dict.fromkeys(names, 0.0)
        self._stage_count: dict[str, int] = dict.fromkeys(names, 0)
        self._done: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._heap: list[tuple[int, int, Request]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._last_t = 0.0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._vlm: VlmEngine | None = None
        self._swaps: dict[int, VlmEngine | None] = {}
        self._vlm_failures_in_a_row = 0
        self._streaming: Request | None = None
        self._stop_stream = False
        self.vlm_batch = max(1, vlm_batch)
        if autostart:
            self.start()

    # -- public API ----------------------------------------------------------------------------

    def start(self) -> AnalysisWorker:
        """Start the worker thread (done by the constructor unless ``autostart=False``)."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("This analysis worker was stopped; make a new one.")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"analysis-{self.device}")
                self._thread.start()
        return self

    def submit(self, request: Request) -> int:
        """Queue ``request``; returns its token (a new one when the request's is 0)."""
        if request.token == 0:
            request = replace(request, token=next(_TOKENS))
        request = replace(request, priority=Priority(request.priority))
        with self._cond:
            if self._stopping:
                log.debug("request %s after stop ignored", request.token)
                return request.token
            heapq.heappush(self._heap, (int(request.priority), next(self._order), request))
            self._cond.notify_all()
        return request.token

    def attach_vlm(self, engine: VlmEngine | None) -> None:
        """Hand a loaded vision-language model (or None) to the worker thread, which owns it from
        then on; the one it had is closed there, between two requests."""
        request = Request(Priority.NOW, self._last_t, NO_FRAME, kind=_SWAP,
                          token=next(_TOKENS))
        with self._cond:
            if self._stopping:
                _close_quietly(engine)
                return
            self._swaps[request.token] = engine
            heapq.heappush(self._heap, (-1, next(self._order), request))
            self._cond.notify_all()

    @property
    def has_vlm(self) -> bool:
        return self._vlm is not None

    def cancel_lookahead(self) -> int:
        """Drop queued look-ahead requests (after a seek); returns how many were dropped."""
        return self.cancel(lambda r: r.priority == Priority.LOOKAHEAD
                           and r.kind not in (_RESET, _REWIND))

    def cancel_vlm(self, priority: Priority = Priority.GAP) -> int:
        """Drop the queued questions to the model of ``priority`` (after a seek)."""
        return self.cancel(lambda r: r.kind == VLM and r.priority == priority)

    def cancel(self, which: Callable[[Request], bool]) -> int:
        """Drop the queued requests for which ``which(request)`` is true; returns how many. An
        answer being streamed for such a request stops after its current sentence."""
        with self._cond:
            if self._streaming is not None and which(self._streaming):
                self._stop_stream = True
            keep = [item for item in self._heap if not which(item[2])]
            dropped = len(self._heap) - len(keep)
            if dropped:
                heapq.heapify(keep)
                self._heap = keep
                self._cond.notify_all()
        return dropped

    def reset_stages(self, rewind: bool = False) -> int:
        """Before any queued request, flush every stage (its observations come as a result of kind
        "flush") and then reset it. Requests run one after another, so this never cuts into one.
        ``rewind``: the stream jumps within the same film (a seek): stages that can
        (``rewind()``) forget only what follows frame to frame and keep what they learnt of the
        film, such as who is who. Returns the token of the flush result."""
        token = next(_TOKENS)
        request = Request(Priority.NOW, self._last_t, NO_FRAME,
                          kind=_REWIND if rewind else _RESET, token=token)
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._heap, (-1, next(self._order), request))
                self._cond.notify_all()
        return token

    def queued(self, priority: Priority | None = None) -> int:
        """Requests waiting (of ``priority``, or all)."""
        with self._cond:
            if priority is None:
                return len(self._heap)
            return sum(1 for _, _, r in self._heap
                       if r.priority == priority and r.kind not in (_RESET, _REWIND))

    def wait_until_queued_below(self, priority: Priority, limit: int,
                                timeout: float | None = None) -> bool:
        """Block until fewer than ``limit`` requests of ``priority`` wait; False on timeout/stop."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stopping or self._count(priority) < limit, timeout) \
                and not self._stopping

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._busy, timeout)

    @property
    def stopped(self) -> bool:
        return self._stopping

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the stages in use (after the start-up checks)."""
        return tuple(stage.name for stage in self._enabled)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the start-up checks (``problem()`` of each stage) are done."""
        return self._ready.wait(timeout)

    def stats(self) -> WorkerStats:
        with self._cond:
            means = {name: self._stage_total[name] / self._stage_count[name]
                     for name in self._stage_total if self._stage_count[name]}
            return WorkerStats(done=dict(self._done), stage_seconds=means,
                               failures=dict(self._failures), disabled=dict(self._disabled),
                               queued=len(self._heap))

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the request in progress, drop the rest, join the thread; safe to repeat."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
            pending = [e for e in self._swaps.values() if e is not None]
            self._swaps.clear()
        for engine in pending:
            _close_quietly(engine)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # it closes its model itself when its answer is done
                log.warning("the analysis worker (%s) did not stop within %s s", self.device,
                            timeout)
                return
        last: VlmEngine | None = self._vlm
        self._vlm = None
        _close_quietly(last)

    def __enter__(self) -> AnalysisWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- worker thread -------------------------------------------------------------------------

    def _count(self, priority: Priority) -> int:
        return sum(1 for _, _, r in self._heap
                   if r.priority == priority and r.kind not in (_RESET, _REWIND))

    def _problem(self, name: str, message: str) -> None:
        self._disabled[name] = message
        log.warning("perception stage %s switched off: %s", name, message)
        if self._on_problem is not None:
            try:
                self._on_problem(name, message)
            except Exception:
                log.exception("the problem handler failed for stage %s", name)

    def _check_stages(self) -> None:
        for stage in self._stages:
            try:
                problem = stage.problem()
            except Exception as exc:  # problem() should never raise; treat it as a problem
                problem = f"its availability check failed ({exc})"
            if problem:
                self._problem(stage.name, problem)
            else:
                self._enabled.append(stage)

    def _run(self) -> None:
        try:
            self._check_stages()
        finally:
            self._ready.set()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or bool(self._heap))
                stopping = self._stopping
                if not stopping:
                    _, _, request = heapq.heappop(self._heap)
                    batch = [request]
                    if request.kind == VLM and not request.stream:
                        batch += self._take_batch(request.priority, self.vlm_batch - 1)
                    elif request.kind == VLM:  # cancellable from the moment it leaves the queue
                        self._streaming, self._stop_stream = request, False
                    self._busy = True
                    self._cond.notify_all()
            if stopping:
                engine, self._vlm = self._vlm, None  # stop() may have given up waiting
                _close_quietly(engine)
                return
            try:
                self._dispatch(request, batch)
            except Exception:  # a bug here must not end the thread that serves everything
                log.exception("the analysis worker failed on request %s", request.token)
                for item in batch:
                    if item.kind not in (_SWAP,):
                        self._deliver(Result(item, (), 0.0))
            finally:
                with self._cond:
                    self._busy = False
                    self._streaming, self._stop_stream = None, False
                    self._cond.notify_all()

    def _dispatch(self, request: Request, batch: list[Request]) -> None:
        if request.kind in (_RESET, _REWIND):
            self._deliver(self._reset(request))
        elif request.kind == _SWAP:
            self._swap(request.token)
        elif request.kind == VLM:
            self._answer(batch)
        else:
            self._deliver(self._analyse(request))

    def _take_batch(self, priority: Priority, limit: int) -> list[Request]:
        """Up to ``limit`` more queued model questions of ``priority``, oldest first (the lock
        is held)."""
        if limit <= 0:
            return []
        items = sorted(item for item in self._heap
                       if item[2].kind == VLM and item[2].priority == priority
                       and not item[2].stream)[:limit]
        if items:
            chosen = {id(item[2]) for item in items}
            self._heap = [item for item in self._heap if id(item[2]) not in chosen]
            heapq.heapify(self._heap)
        return [item[2] for item in items]

    def _swap(self, token: int) -> None:
        with self._cond:
            if token not in self._swaps:
                return
            engine = self._swaps.pop(token)
        old, self._vlm = self._vlm, engine
        self._vlm_failures_in_a_row = 0
        if old is not engine:
            _close_quietly(old)

    def _vlm_notes(self) -> tuple[str, ...]:
        notes = self._vlm.notes if self._vlm is not None else ()
        if not notes:
            return ()
        taken = tuple(notes)
        if isinstance(notes, list):
            notes.clear()
        return taken

    def _answer(self, batch: list[Request]) -> None:
        """Ask the model about each request's image; one result per request (a streamed
        request gets one per sentence first)."""
        started = time.perf_counter()
        engine = self._vlm
        if engine is None:
            for request in batch:
                self._deliver(Result(request, (), 0.0))
            return
        try:
            if batch[0].stream:
                texts = [self._stream(batch[0], engine, started)]
            else:
                vlm_requests = [r.vlm for r in batch]
                texts = engine.describe_batch(vlm_requests)  # type: ignore[arg-type]
            self._vlm_failures_in_a_row = 0
            notes = self._vlm_notes()
        except Exception as exc:
            log.warning("the vision-language model failed: %r", exc)
            self._vlm_failures_in_a_row += 1
            texts = [""] * len(batch)
            from models.vlm.base import VlmError  # noqa: PLC0415 - its messages are whole

            said = str(exc) if isinstance(exc, VlmError) else \
                f"The vision-language model failed: {exc}"
            off = engine.off  # the engine switched itself off
            notes = self._vlm_notes() if off else (*self._vlm_notes(), said)  # off: said below
            if off or self._vlm_failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                self._vlm = None
                _close_quietly(engine)
                # The engine's own reason is whole sentences, with what to do; ours is a clause.
                why = off or (f"it failed {MAX_FAILURES_IN_A_ROW} times in a row (last: {exc}); "
                              f"descriptions come from the detectors")
                self._problem(VLM_NAME, why)
                if self._on_vlm_off is not None:
                    try:
                        self._on_vlm_off(engine, why)  # which model: another may be on its way
                    except Exception:
                        log.exception("the model-off handler failed")
        seconds = time.perf_counter() - started
        with self._cond:
            self._done[batch[0].priority] += len(batch)
        for request, text in zip(batch, texts, strict=True):
            found = (Observation(request.t, VLM, text),) if text else ()
            self._deliver(Result(request, found, seconds, {VLM_NAME: seconds}, notes=notes))
            notes = ()

    def _stream(self, request: Request, engine: VlmEngine, started: float) -> str:
        """Deliver each cleaned sentence as soon as the model has written it; the whole answer
        (within the request's word budget) is returned for the final result."""
        from models.vlm.base import first_sentence  # noqa: PLC0415
        from models.vlm.clean import clean  # noqa: PLC0415

        assert request.vlm is not None
        budget = request.vlm.max_words
        said: list[str] = []
        if self._stop_stream:  # cancelled before the model began (_run marks it streaming)
            return ""
        pieces = engine.stream(request.vlm)

        def watched() -> Iterator[str]:
            for piece in pieces:
                if self._stop_stream:  # cancelled (a newer question): stop writing
                    return
                yield piece

        try:
            for sentence in first_sentence(watched()):
                left = None if budget is None else budget - sum(len(s.split()) for s in said)
                if left is not None and left < 2:
                    break
                text = clean(sentence, max_words=left)
                if not text:
                    continue
                if self._stop_stream:
                    break
                said.append(text)
                self._deliver(Result(request, (Observation(request.t, VLM, text),),
                                     time.perf_counter() - started, final=False))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # the engine stops generating
        return " ".join(said)

    def _deliver(self, result: Result) -> None:
        try:
            self._on_result(result)
        except Exception:
            log.exception("the result handler failed for request %s", result.request.token)

    def _stage_failed(self, stage: Stage, what: str, exc: Exception) -> None:
        name = stage.name
        self._failures[name] += 1
        self._failures_in_a_row[name] += 1
        first = self._failures_in_a_row[name] == 1  # the whole story once, not for every frame
        log.warning("perception stage %s failed %s: %r", name, what, exc,
                    exc_info=exc if first else None)
        if self._failures_in_a_row[name] >= MAX_FAILURES_IN_A_ROW and stage in self._enabled:
            self._enabled.remove(stage)
            self._problem(name, f"it failed on {MAX_FAILURES_IN_A_ROW} frames in a row "
                                f"(last: {type(exc).__name__}: {exc})")

    def _analyse(self, request: Request) -> Result:
        started = time.perf_counter()
        observations: list[Observation] = []
        timings: dict[str, float] = {}
        alone = request.kind == NOW  # the stream's state stays for its next frame
        if not alone:
            self._last_t = request.t
        for stage in list(self._enabled):
            t0 = time.perf_counter()
            try:
                found = (stage.look if alone else stage.process)(request.t, request.frame)
            except Exception as exc:
                self._stage_failed(stage, f"at {request.t:.2f} s", exc)
                continue
            finally:
                timings[stage.name] = time.perf_counter() - t0
            self._failures_in_a_row[stage.name] = 0
            observations.extend(found or ())
        with self._cond:
            self._done[request.priority] += 1
            for name, seconds in timings.items():
                self._stage_total[name] += seconds
                self._stage_count[name] += 1
        return Result(request, tuple(observations), time.perf_counter() - started, timings)

    def _reset(self, request: Request) -> Result:
        started = time.perf_counter()
        observations: list[Observation] = []
        timings: dict[str, float] = {}
        for stage in list(self._enabled):
            t0 = time.perf_counter()
            try:
                observations.extend(stage.flush() or ())
                (stage.rewind if request.kind == _REWIND else stage.reset)()
            except Exception as exc:
                self._stage_failed(stage, "to flush or reset", exc)
            timings[stage.name] = time.perf_counter() - t0
        flushed = replace(request, kind=Kind.FLUSH, t=self._last_t)
        return Result(flushed, tuple(observations), time.perf_counter() - started, timings)
