"""One film analysed in advance, without Qt: the job behind ``narrate prepare`` and the cluster.

:class:`Preparer` loads the perception stages (and a vision-language model, if asked for) once,
then prepares films one by one with :meth:`Preparer.run`: the dialogue is found (and cached),
every sampled frame goes through the stages, the composer's descriptions are written as a WebVTT
track, and the observations are cached for the player. Each film ends in a :class:`FilmReport`;
a film that fails is reported with its reason, and nothing half-written is left behind.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.files import check_path
from models.pipeline.config import LOOKAHEAD_FPS, default_stages
from models.pipeline.reader import clock_time
from models.pipeline.session import AnalysisSession, SessionEvents
from models.pipeline.speed import AnalysisSpeed, keep
from models.types import Description
from models.wording import counted

PROGRESS_EVERY = 5.0
"""Seconds of wall time between progress lines at most (a line comes at every 10 percent too)."""




def _no_stop() -> None:
    """Nothing asks the job to stop (the command line passes a check for Ctrl-C)."""


class Progress:
    """Says how far a long job has got, as plain lines: at every 10 percent, and whenever
    ``every`` seconds (of ``clock``) have passed since the last line; each gives the place in
    the film and the speed, e.g. "film.mp4: 3 percent (18:02 of 10:00:00), 4.1 times real
    time." The end is left to the caller, which says what was done."""

    def __init__(self, label: str, duration: float, say: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic,
                 every: float = PROGRESS_EVERY,
                 check_stop: Callable[[], None] = _no_stop) -> None:
        self.label, self.duration, self.say, self.clock, self.every = (
            label, duration, say, clock, every)
        self.check_stop = check_stop
        self.began = self.last = clock()
        self.tenth = 0

    def __call__(self, t: float, duration: float | None = None) -> None:
        """The job has reached ``t`` seconds into the film (``duration`` long, if now known)."""
        self.check_stop()  # called from the dialogue search's loop too
        if duration:
            self.duration = duration
        now = self.clock()
        share = t / self.duration if self.duration > 0 else 0.0
        tenth = int(share * 10)
        crossed = tenth > self.tenth
        if tenth >= 10 or not (crossed or now - self.last >= self.every):
            return
        percent = tenth * 10 if crossed else int(share * 100)
        self.tenth, self.last = max(tenth, self.tenth), now
        took = now - self.began
        speed = f", {t / took:.1f} times real time" if took > 0 else ""
        if self.duration > 0:
            self.say(f"{self.label}: {percent} percent ({clock_time(t)} of "
                     f"{clock_time(self.duration)}){speed}.")
        else:
            self.say(f"{self.label}: {clock_time(t)} done{speed}.")


def find_dialogue(video: Path, say: Callable[[str], None],
                  check_stop: Callable[[], None] = _no_stop) -> Any:
    """The film's speech and pauses (a ``GapAnalysis``), found once and cached, so the player
    knows where the dialogue is from a prepared film's first instant; its notes are said,
    except the one on damage, which is said with the pictures' damage, once for the film."""
    from models.gaps import SOUND_OUTCOME, analyse  # noqa: PLC0415
    from models.pipeline.reader import damage_message  # noqa: PLC0415

    found = analyse(video, on_progress=Progress(f"Finding the dialogue in {video.name}", 0.0,
                                                say, check_stop=check_stop))
    told = damage_message(video.name, found.damage, SOUND_OUTCOME) if found.damage else ""
    for note in found.notes:
        if note != told:
            say(note)
    return found


def track_path(video: Path) -> Path:
    plain = video.with_suffix(".descriptions.vtt")
    return plain if not plain.exists() else video.with_suffix(".auto.descriptions.vtt")


def _load_model(name: str, say: Callable[[str], None]) -> Any:
    """The model, loaded; None (after saying why) when it cannot be used."""
    from models.vlm.loader import load_vlm  # noqa: PLC0415

    say(f"Loading the vision-language model {name}.")
    try:
        engine = load_vlm(name)
    except Exception as exc:  # noqa: BLE001 - the message says what to do
        say(f"The vision-language model could not be used: {exc}")
        return None
    for note in engine.notes:
        say(note)
    return engine




@dataclass(frozen=True)
class FilmJob:
    """One film to prepare: where its track goes (None: beside the film) and how it is read."""

    video: Path
    out: Path | None = None
    fps: float = LOOKAHEAD_FPS


@dataclass(frozen=True)
class FilmReport:
    """How one film's preparation ended. ``reason`` says why it failed, in one sentence."""

    video: Path
    ok: bool
    out: Path | None = None
    descriptions: int = 0
    duration: float = 0.0
    seconds: float = 0.0  # wall time taken
    reason: str = ""


class Preparer:
    """Prepares films one after another with one analysis session: the same session, stages
    and rules as the player's live analysis, driven on the calling thread.

    ``say`` gets every progress line and note (plain sentences); ``check_stop`` is called often
    and may raise KeyboardInterrupt to stop the film under way (nothing is written for it).
    ``stages`` (the stages and the notes on those that could not be built) default to every
    stage that can be built here; ``engine`` is a model already loaded (else ``model`` names
    one to load). ``clock`` and ``every`` pace the progress lines.
    """

    def __init__(self, say: Callable[[str], None], model: str = "", verbosity: int = 2,
                 stages: tuple[list[Any], list[str]] | None = None,
                 check_stop: Callable[[], None] = _no_stop, engine: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 every: float = PROGRESS_EVERY) -> None:
        self.say, self.model, self.verbosity, self.check_stop = say, model, verbosity, check_stop
        self.clock, self.every = clock, every
        self.stages, self.notes = stages if stages is not None else default_stages()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._descriptions: list[Description] = []
        self._progress: Progress | None = None
        self.last: list[Description] = []  # the last film's descriptions, as written
        self._frames = 0  # frames analysed in the film under way
        events = SessionEvents(descriptions=self._descriptions.extend,
                               analysed=self._analysed, problem=say)
        self.session = AnalysisSession(lambda: (list(self.stages), list(self.notes)),
                                       post=self._calls.put, events=events, offline=True)
        self.session.warm_up()
        self._pump(lambda: self.session.ready)
        if engine is None and model:
            engine = _load_model(model, say)
        self.engine = engine
        if engine is not None:
            self.session.use_engine(engine, model or "model")

    @property
    def problem(self) -> str:
        """Why nothing can be prepared with this preparer ("" when it can)."""
        if not self.stages:
            return "No analysis stage works here, so nothing can be prepared."
        if self.model and self.engine is None:
            return f"The vision-language model {self.model} could not be used."
        return ""

    def _analysed(self, t: float) -> None:
        self._frames += 1
        if self._progress is not None:
            self._progress(t)

    def _pump(self, done: Callable[[], bool]) -> None:
        """Run what the session's threads hand over, here, until ``done()``."""
        while True:
            self.check_stop()
            try:
                call = self._calls.get(timeout=0.05)
            except queue.Empty:
                if done():
                    return
                continue
            call()

    def run(self, job: FilmJob) -> FilmReport:
        """Prepare one film; every failure but a stop is reported, never raised."""
        import av  # noqa: PLC0415

        from models.gaps import GapError  # noqa: PLC0415
        from models.pipeline.reader import ReaderError, why_unreadable  # noqa: PLC0415

        video = Path(job.video)
        began = self.clock()
        problem = check_path(video) or self.problem
        if problem:
            self.say(problem)
            return FilmReport(video, False, reason=problem)
        out = Path(job.out) if job.out else track_path(video)
        try:
            descs, duration = self._analyse(video, out, job.fps)
            return FilmReport(video, True, out, len(descs), duration, self.clock() - began)
        except (ReaderError, GapError) as exc:  # a whole sentence naming the film
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - go on with the next video
            media = isinstance(exc, (OSError, av.FFmpegError))  # in words, not error numbers
            reason = (f"{video.name} could not be prepared: "
                      f"{f'{why_unreadable(exc)}.' if media else exc}")
        finally:
            self.session.stop_lookahead(save=False)
            self._progress = None
        self.say(reason)
        return FilmReport(video, False, out, seconds=self.clock() - began, reason=reason)

    def _analyse(self, video: Path, out: Path, fps: float) -> tuple[list[Description], float]:
        """The film through the session, its track written, its analysis cached when whole."""
        from models.pipeline.reader import damage_message  # noqa: PLC0415
        from models.schedule import GapMap  # noqa: PLC0415
        from models.webvtt import write_vtt  # noqa: PLC0415

        session = self.session
        found = find_dialogue(video, self.say, self.check_stop)
        duration = float(found.duration or 0.0)
        session.fps = fps
        session.detail = self.verbosity
        gaps = GapMap()
        gaps.update(found.gaps, [(0.0, duration)], found.has_audio, complete=True)
        session.use_gaps(gaps.room_at, gaps.gap_at, gaps.next_gap)
        self._descriptions.clear()
        self._frames = 0
        self._progress = Progress(video.name, duration, self.say, self.clock, self.every,
                                  self.check_stop)
        began = self.clock()
        session.analyse_whole(video, duration)
        self._pump(lambda: session.idle)
        session.flush_stages()
        self._pump(lambda: session.flushed and session.idle)
        damage = [*session.damage, *found.damage]
        if damage:
            self.say(damage_message(video.name, damage))
        session.stop_lookahead(save=False)
        descriptions = sorted(self._descriptions, key=lambda d: d.start)
        write_vtt(out, descriptions)
        self.last = descriptions
        why = session.cache_problem()
        if not why:
            try:
                session.save_cache(wait=True)
            except Exception as exc:  # noqa: BLE001 - the track matters, the cache is a bonus
                self.say(f"The analysis cache could not be written: {exc}")
        elif not session.all_stages:
            self.say(f"{video.name}: not all of the analysis could run, so it is not kept for "
                     f"the player; it will look again when it plays the film.")
        took = self.clock() - began
        speed = ""
        if duration > 0.001 and took > 0:
            live = session.speed()
            device = live.device if live is not None else "cpu"
            measured = AnalysisSpeed(self._frames / took, duration / took, device, time.time())
            keep(measured)  # for narrate doctor
            where = "the processor" if device == "cpu" else device
            speed = (f", {duration / took:.1f} times real time ({measured.fps:.1f} frames a "
                     f"second on {where})")
        self.say(f"{video.name}: 100 percent. {counted(len(descriptions), 'description')} "
                 f"written to {out.name} in {took:.0f} seconds{speed}.")
        return descriptions, duration

    def close(self) -> None:
        self.session.close()  # closes the model it was given, too
        self.engine = None
