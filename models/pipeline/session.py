"""The analysis session: one film's analysis with all its rules, without Qt.

The session owns the rules that the player and ``narrate prepare`` (and the cluster's workers)
share: which stages run, how the film is sampled, what is cached and when, the questions put to
the vision-language model and on which device, and "describe now". It drives the reader, the
feeder, the worker(s), the observation store and the composer.

Threads: the detectors load, the worker analyses and the model answers on threads of their own.
Everything they report is handed to ``post``, which must run it on the owner's thread (the Qt
adapter posts it to the Qt event loop; the offline driver runs a queue); the session's state is
only touched there. What the owner hears comes through :class:`SessionEvents`, always on its
own thread.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
from models.pipeline.events import SessionEvents
from models.pipeline.jobs import ModelJob
from models.pipeline.session_model import ModelQuestions
from models.pipeline.speed import AnalysisSpeed, SpeedMeter, keep
from models.types import Description, Observation

log = logging.getLogger(__name__)

LOAD_WAIT_ON_CLOSE = 20.0
"""Seconds closing waits at most for the detectors to finish loading."""
KEPT_OBSERVATIONS = 20000
"""Observations kept in memory for context; the oldest half is dropped beyond this."""


def _run_now(fn: Callable[[], None]) -> None:
    fn()


class AnalysisSession(ModelQuestions):
    """Runs the analysis for one film at a time; see the module's text for its threads.

    ``offline``: the whole film is analysed from its start, as fast as it can be read (no
    playhead to keep ahead of): every pause worth it gets the model's description, the damage
    found is kept for the caller to say (with the sound's), and the cache is written by
    :meth:`save_cache` when the caller says the film is done.
    """

    def __init__(self, stages_factory: Callable[[], tuple[list[Any], list[str]]] = default_stages,
                 post: Callable[[Callable[[], None]], None] = _run_now,
                 events: SessionEvents | None = None, offline: bool = False,
                 fps: float = LOOKAHEAD_FPS) -> None:
        ModelQuestions.__init__(self)
        self._factory = stages_factory
        self._post = post
        self.events = events or SessionEvents()
        self.offline = offline
        self.fps = fps
        self._worker: Any = None
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
        self._built = False
        self._playhead = 0.0
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
        self.meter = SpeedMeter()  # how fast the look-ahead goes
        self.damage: list[Any] = []  # offline: the parts that could not be read, for the caller
        self.flushed = False  # offline: the stages' last findings of the film have come

    def _later(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the owner's thread (called from any thread)."""
        self._post(functools.partial(fn, *args))

    # ----- context for the model ----------------------------------------------------------------
    @property
    def cache_config(self) -> dict[str, Any]:
        """What the cached analysis depends on: the sampling, and the model asked for (its
        descriptions are kept with the detectors' findings)."""
        return {**cache_config(self._vlm_name), "fps": self.fps}

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
    def ready(self) -> bool:
        """The detectors have loaded (or failed to: then :attr:`cannot_look`)."""
        return self._built or self._no_models

    @property
    def loading(self) -> bool:
        """The detectors are still being loaded."""
        return self._building is not None and self._building.is_alive()

    # ----- loading the detectors ----------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the models on a background thread (seconds), so the owner never waits."""
        if self._building is not None or self._worker is not None or self._tried:
            return
        self._tried = True
        self._building = threading.Thread(target=self._build, name="perception-load",
                                          daemon=True)
        self._building.start()

    def _build(self) -> None:
        try:
            import models.pipeline.worker  # noqa: F401, PLC0415 - numpy and the stages' base
        except ImportError as exc:
            self._later(self.events.problem, f"Live scene analysis is off: {exc}.")
            self._no_models = True
            return
        from models.perception import as_stage  # noqa: PLC0415

        stages, notes = self._factory()
        self._all_stages = not notes
        for note in notes:
            self._later(self.events.problem, note)
        for stage in map(as_stage, stages):  # working, with a caveat (no GPU: on the CPU)
            for note in stage.notes():
                self._later(self.events.problem, f"{stage.name}: {note}")
        worker = self._new_worker(stages) if stages else None
        self._loaded_worker = worker  # for close(), should the owner quit before _on_ready
        self._later(self._on_ready, worker, [s.name for s in stages])

    def _new_worker(self, stages: list[Any], device: str = "cpu", vlm_batch: int = 1) -> Any:
        from models.pipeline.worker import AnalysisWorker  # noqa: PLC0415

        return AnalysisWorker(stages, on_result=functools.partial(self._later, self._on_result),
                              on_problem=functools.partial(self._later, self._on_stage_problem),
                              on_vlm_off=functools.partial(self._later, self._on_vlm_off),
                              device=device, vlm_batch=vlm_batch)

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
            self._worker = self._new_worker([])
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

    # ----- a film -------------------------------------------------------------------------------
    def _new_film(self, path: str | Path, duration: float, compose: bool) -> None:
        from models.pipeline.store import ObservationStore  # noqa: PLC0415

        self.stop_lookahead()
        self._path, self._duration = str(path), duration
        self.from_cache = False
        self._unreadable = False
        self._damaged = self._told_damage = False
        self.damage = []
        self.meter.reset()
        self.flushed = False
        self._store = ObservationStore()
        self._mixed_models = False
        self._said = []  # nothing of the last film is context for this one
        self.compose = compose

    def open(self, path: str | Path, duration: float, at: float = 0.0,
             compose: bool = True) -> None:
        """A new film: use what an earlier viewing (or ``narrate prepare``) saw, if it is
        cached; otherwise analyse ahead of the playhead from ``at``."""
        from models.pipeline.store import ObservationStore  # noqa: PLC0415

        self._new_film(path, duration, compose)
        self._pending = (str(path), at, compose)
        config = self.cache_config

        def load(p: str = str(path)) -> None:
            self._later(self._on_cached, p, ObservationStore.load(p, config))

        threading.Thread(target=load, name="observation-cache", daemon=True).start()

    def analyse_whole(self, path: str | Path, duration: float) -> None:
        """A new film, analysed from its start whatever is cached (``narrate prepare``)."""
        self._new_film(path, duration, True)
        self.start(path, 0.0, True)

    def _on_cached(self, path: str, store: Any) -> None:
        if path != self._path or self._closed:
            return
        pending, self._pending = self._pending, None
        complete = store is not None and store.is_covered(min(1.0, self._duration / 2),
                                                          max(0.0, self._duration - 1.0))
        if complete:
            self._store = store
            self.from_cache = True
            self._observations = list(store)
            if self.compose:
                from models.pipeline.questions import cached_descriptions  # noqa: PLC0415

                descs = [*Composer().feed(self._observations),
                         *cached_descriptions(self._observations)]
                if descs:
                    self.events.descriptions(list(descs))
            self.events.analysed(self._duration)
            self.warm_up()  # still needed for "describe now"
            return
        if pending is not None:
            self.start(*pending)

    def start(self, path: str | Path, at: float = 0.0, compose: bool = True) -> None:
        """Analyse ``path`` ahead of the playhead from ``at``; compose descriptions if asked."""
        self.stop_lookahead(save=False)
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
            self._later(self._on_damage, film, span)

        try:
            self._lookahead = LookAhead(str(path), self._worker, fps=self.fps,
                                        max_width=FRAME_WIDTH, start=at, on_damage=damaged)
            self._lookahead.start()
        except ReaderError as exc:
            self._lookahead = None
            self._unreadable = True
            self.events.problem(str(exc))
            if self.offline:
                raise

    def _on_damage(self, path: str, span: Any) -> None:
        """The look-ahead found a part of the film it cannot read: said once a film (offline,
        kept for the caller, who says it with the sound's damage)."""
        if path != self._path or self._closed:
            return
        self._damaged = True
        self.damage.append(span)
        if not self._told_damage and not self.offline:
            from models.pipeline.reader import damage_message  # noqa: PLC0415

            self._told_damage = True
            self.events.problem(damage_message(Path(path).name, [span]))

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

    # ----- describe now -------------------------------------------------------------------------
    def describe_now(self, t: float, frame: tuple[int, int, bytes] | np.ndarray | None,
                     question: str | None = None) -> bool:
        """Ask about the frame on screen, ahead of everything else: the detectors, then the
        vision-language model if one is set up (its first sentence is said as soon as it is
        written). False when analysis is not ready (the caller answers from what it has)."""
        if frame is None or self._worker is None:
            return False
        from models.pipeline.worker import Kind, Priority, Request  # noqa: PLC0415

        self._supersede_now()
        image = frame if isinstance(frame, np.ndarray) else frame_array(frame)
        token = self._worker.submit(Request(Priority.NOW, t, image, kind=Kind.NOW))
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
        self._cancel_now_questions()

    # ----- results ------------------------------------------------------------------------------
    def _on_result(self, result: Any) -> None:
        if self._closed:  # queued before the close
            return
        from models.pipeline.worker import Kind  # noqa: PLC0415

        kind = result.request.kind
        if kind == Kind.VLM:
            self._on_model_result(result)
            return
        observations = list(result.observations)
        token = result.request.token
        if kind == Kind.NOW and token not in self._now_tokens:
            return  # a describe now that a newer one replaced
        if token in self._now_tokens:
            self._answer_now(token, observations)
            return
        if kind == Kind.FLUSH:
            self._last_frame_t = None  # the worker is between two runs (a seek, a new film)
        if kind in (Kind.FRAME, Kind.FLUSH) and token <= self._run_token:
            return  # the film before this one: its last frames, and its stages' flush
        if kind == Kind.FLUSH:
            self.flushed = True
        self._observations += observations
        if self._store is not None and kind != Kind.FLUSH:
            self._store.record(result.request.t, observations, 1.0 / self.fps,
                               after=self._last_frame_t)
            self._last_frame_t = result.request.t if kind == Kind.FRAME else None
        if len(self._observations) > KEPT_OBSERVATIONS:
            self._observations = self._observations[-KEPT_OBSERVATIONS // 2:]
        if self.compose:
            descs: Sequence[Description] = self._composer.feed(observations)
            if descs:
                self.events.descriptions(list(descs))
        if kind == Kind.FRAME:
            self.meter.frame(result.request.t)
            self.events.analysed(result.request.t)
        image = result.request.frame
        if self.has_vlm and kind == Kind.FRAME and image.size:
            self._ask_labels(result.request.t, image, observations)
            self._ask_for_gap(result.request.t, image,
                              any(o.kind == "shot" for o in observations))

    def _answer_now(self, token: int, observations: list[Observation]) -> None:
        """The detectors' findings for describe now: the answer, or the model's context."""
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
            self.events.answer(t, seen)
            self.events.answer_done(t)

    def _on_stage_problem(self, name: str, text: str) -> None:
        from models.pipeline.worker import VLM_NAME  # noqa: PLC0415

        if name == VLM_NAME:  # a failing model was switched off: _on_vlm_off tells the user
            return
        self._all_stages = False
        self.events.problem(f"{name} stopped: {text}")

    def observations(self) -> list[Observation]:
        return list(self._observations)

    # ----- the end of a film, and of the session ------------------------------------------------
    @property
    def idle(self) -> bool:
        """Offline: the whole film was read, and every frame and question is answered."""
        la = self._lookahead
        workers = [w for w in (self._worker, self._gpu_worker) if w is not None]
        return (la is not None and la.over and not self._vlm_jobs
                and all(w.queued() == 0 and w.wait_idle(0) for w in workers))

    def flush_stages(self) -> None:
        """Offline, at the end of the film: the stages' last findings (they come as a result;
        :attr:`flushed` is set when they have)."""
        if self._worker is not None:
            self._worker.reset_stages()  # a later token than the film's start: its own flush

    def stop_lookahead(self, save: bool = True) -> None:
        measured = self.speed()
        if measured is not None and not self.offline:  # prepare keeps its whole-film figure
            keep(measured)  # for narrate doctor
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
        if save and not self.offline:
            self.save_cache()

    def cache_problem(self) -> str:
        """Why this film's analysis must not be cached ("" when it may)."""
        if self._store is None or self.from_cache or not self._path or self._duration <= 0:
            return "there is nothing new to keep"
        if self._mixed_models:  # saved under the new model's name, it would lack its answers
            return "the model changed while it ran"
        if not self._all_stages:  # a weaker analysis must not stand in for the full one
            return "not every stage could run"
        if self._damaged:  # the next viewing looks again at what can be read
            return "part of it could not be read"
        if not self._store.is_covered(min(1.0, self._duration / 2),
                                      max(0.0, self._duration - 1.0)):
            return "not all of it was looked at"
        return ""

    def save_cache(self, wait: bool = False) -> None:
        """Keep what was seen of the whole film, so the next viewing narrates at once; on a
        thread of its own unless ``wait`` (then a failure to write is raised)."""
        why = self.cache_problem()
        if why:
            log.info("not caching the analysis of %s: %s", self._path, why)
            return
        self.from_cache = True  # saved once
        if wait:
            self._store.save(self._path, self.cache_config)
            return
        threading.Thread(target=self._store.save, args=(self._path, self.cache_config),
                         name="cache-save", daemon=False).start()

    @property
    def looked_at_all(self) -> bool:
        """The look-ahead has read the film to its end (until the next seek)."""
        return self._lookahead is not None and self._lookahead.finished

    def speed(self) -> AnalysisSpeed | None:
        """How fast the look-ahead analysed its last frames (None before it has)."""
        return self.meter.speed(self._worker.device if self._worker is not None else "cpu")

    @property
    def all_stages(self) -> bool:
        """Every stage loaded, and none was switched off since."""
        return self._all_stages

    @property
    def store(self) -> Any:
        """This film's observations (an ``ObservationStore``), with the model's answers."""
        return self._store

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


__all__ = ["AnalysisSession", "ModelJob", "SessionEvents"]
