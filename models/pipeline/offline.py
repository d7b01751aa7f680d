"""One film analysed in advance, without Qt: the job behind ``narrate prepare`` and the cluster.

:class:`Preparer` loads the perception stages (and a vision-language model, if asked for) once,
then prepares films one by one with :meth:`Preparer.run`: the dialogue is found (and cached),
every sampled frame goes through the stages, the composer's descriptions are written as a WebVTT
track, and the observations are cached for the player. Each film ends in a :class:`FilmReport`;
a film that fails is reported with its reason, and nothing half-written is left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.files import check_path
from models.pipeline.composer import Composer
from models.pipeline.config import FRAME_WIDTH, LOOKAHEAD_FPS, cache_config, default_stages
from models.pipeline.reader import clock_time
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


class ModelWriter:
    """Asks the model about the frames in the pauses, in batches, and names new people."""

    def __init__(self, engine: Any, name: str, video: Path, verbosity: int,
                 say: Callable[[str], None], found: Any = None) -> None:
        from models.pipeline.questions import GapPlanner  # noqa: PLC0415
        from models.schedule import GapMap  # noqa: PLC0415

        self.engine, self.name, self.verbosity, self.say = engine, name, verbosity, say
        device = str(getattr(engine, "device", "") or "cpu")
        self.batch = 8 if device.startswith("cuda") else 1
        found = found if found is not None else find_dialogue(video, say)
        self.damage = found.damage  # said with the pictures' damage, once for the film
        self.gaps = GapMap()
        self.gaps.update(found.gaps, [(0.0, found.duration)], found.has_audio, complete=True)
        self.planner = GapPlanner(self.gaps.room_at, self.gaps.gap_at, self.gaps.next_gap,
                                  max_outstanding=1 << 30)
        self.pending: list[tuple[Any, Any]] = []
        self.recent: list[str] = []
        self.labelled: set[int] = set()
        self.answers: list[Any] = []  # the model's answers as observations, for the cache
        self.failed = False

    def frame(self, t: float, image: Any, observations: list[Any], composer: Composer,
              context: list[Any]) -> list[Description]:
        """Look at one analysed frame; returns the descriptions that are ready."""
        from models.pipeline.questions import gap_request  # noqa: PLC0415

        if self.failed:
            return []
        self._labels(image, observations, composer)
        question = self.planner.consider(t, any(o.kind == "shot" for o in observations))
        if question is None:
            return []
        seen = Composer.describe(context, t + 0.05, self.verbosity, composer.labels)
        self.pending.append((question, gap_request(image, question, self.verbosity, seen,
                                                   self.recent)))
        return self.flush() if len(self.pending) >= self.batch else []

    def flush(self) -> list[Description]:
        from models.pipeline.questions import answer_observation, gap_description  # noqa: PLC0415

        batch, self.pending = self.pending, []
        if not batch or self.failed:
            return []
        try:
            texts = self.engine.describe_batch([request for _, request in batch])
        except Exception as exc:  # noqa: BLE001 - the detectors' track is still written
            self.failed = True
            self.say(f"The vision-language model failed ({exc}); the track has the "
                     f"detectors' descriptions only from here on.")
            return []
        answered = [(q, text) for (q, _), text in zip(batch, texts, strict=True) if text]
        self.answers += [answer_observation(q, text) for q, text in answered]
        out = [gap_description(q, text) for q, text in answered]
        self.recent = [*self.recent, *(d.text for d in out)][-3:]
        return out

    def _labels(self, image: Any, observations: list[Any], composer: Composer) -> None:
        from models.pipeline.questions import label_requests  # noqa: PLC0415

        for pid, question in label_requests(image, observations, self.labelled):
            try:
                label = self.engine.describe(question)
            except Exception as exc:  # noqa: BLE001
                self.say(f"The model could not label a person: {exc}")
                continue
            if label:
                composer.name_person(pid, label)


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


def prepare(video: Path, out: Path, fps: float, stages: list,
            say: Callable[[str], None], model: ModelWriter | None = None,
            all_stages: bool = True, clock: Callable[[], float] = time.monotonic,
            every: float = PROGRESS_EVERY, sound_damage: tuple = (),
            check_stop: Callable[[], None] = _no_stop) -> list[Description]:
    """Analyse ``video`` with ``stages`` and write its description track to ``out``. The
    analysis is cached for the player only when ``all_stages`` (every stage could be loaded),
    none of them had to be switched off on the way, and the whole film could be read: a weaker
    analysis must not stand in for the full one on every later viewing. Progress is said at
    every 10 percent and at least every ``every`` seconds of ``clock``."""
    from models.pipeline.reader import FrameReader, damage_message  # noqa: PLC0415
    from models.pipeline.store import ObservationStore  # noqa: PLC0415
    from models.pipeline.worker import MAX_FAILURES_IN_A_ROW  # noqa: PLC0415
    from models.webvtt import write_vtt  # noqa: PLC0415

    reader = FrameReader(str(video), fps=fps, max_width=FRAME_WIDTH)
    duration = reader.duration or 0.0
    progress = Progress(video.name, duration, say, clock, every, check_stop)
    composer = Composer()
    store = ObservationStore()
    descriptions: list[Description] = []
    active = list(stages)
    last_t: float | None = None
    in_a_row = dict.fromkeys((s.name for s in stages), 0)
    reader.start()
    try:
        for frame in reader.frames():
            observations = []
            for stage in list(active):
                try:
                    observations += stage.process(frame.t, frame.image)
                    in_a_row[stage.name] = 0
                except Exception as exc:  # noqa: BLE001 - one stage failing must not stop us
                    in_a_row[stage.name] += 1
                    if in_a_row[stage.name] == 1:
                        say(f"{stage.name} failed at {frame.t:.1f} s: {exc}")
                    if in_a_row[stage.name] >= MAX_FAILURES_IN_A_ROW:
                        active.remove(stage)
                        say(f"{stage.name} failed {MAX_FAILURES_IN_A_ROW} times in a row, so it "
                            f"is off for the rest of {video.name}.")
            store.record(frame.t, observations, 1.0 / fps, after=last_t)
            last_t = frame.t
            if model is not None:
                recent = store.between(frame.t - 8.0, frame.t + 0.01)
                descriptions += model.frame(frame.t, frame.image, observations, composer,
                                            recent)
            descriptions += composer.feed(observations)
            progress(frame.t)
            check_stop()
    finally:
        reader.stop()
    damage = [*reader.damage, *(sound_damage or (model.damage if model is not None else ()))]
    if damage:
        say(damage_message(video.name, damage))
    for stage in stages:
        try:
            descriptions += composer.feed(stage.flush())
            stage.reset()
        except Exception:  # noqa: BLE001, S110 - flushing is best effort
            pass
    if model is not None:
        descriptions += model.flush()
        store.extend(model.answers)
    descriptions.sort(key=lambda d: d.start)
    write_vtt(out, descriptions)
    every_stage = all_stages and len(active) == len(stages)
    if every_stage and not damage:  # a damaged film's is not the whole analysis either
        try:
            store.save(video, {**cache_config(model.name if model else ""), "fps": fps})
        except Exception as exc:  # noqa: BLE001 - the track matters, the cache is a bonus
            say(f"The analysis cache could not be written: {exc}")
    elif not every_stage:
        say(f"{video.name}: not all of the analysis could run, so it is not kept for the "
            f"player; it will look again when it plays the film.")
    took = clock() - progress.began
    speed = f", {duration / took:.1f} times real time" if duration > 0.001 and took > 0 else ""
    say(f"{video.name}: 100 percent. {counted(len(descriptions), 'description')} written to {out.name} "
        f"in {took:.0f} seconds{speed}.")
    return descriptions


def _load_model(name: str, say: Callable[[str], None]) -> Any:
    """The model, loaded; None (after saying why) when it cannot be used."""
    from models.vlm.loader import load_vlm  # noqa: PLC0415

    say(f"Loading the vision-language model {name}.")
    try:
        engine = load_vlm(name)
    except Exception as exc:  # noqa: BLE001 - the message says what to do
        say(f"The vision-language model could not be used: {exc}")
        return None
    for note in getattr(engine, "notes", ()):
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
    """Prepares films one after another with one set of stages and, optionally, one model.

    ``say`` gets every progress line and note (plain sentences); ``check_stop`` is called often
    and may raise KeyboardInterrupt to stop the film under way (nothing is written for it).
    ``stages`` default to every stage that can be built here.
    """

    def __init__(self, say: Callable[[str], None], model: str = "", verbosity: int = 2,
                 stages: tuple[list[Any], list[str]] | None = None,
                 check_stop: Callable[[], None] = _no_stop) -> None:
        self.say, self.model, self.verbosity, self.check_stop = say, model, verbosity, check_stop
        self.stages, self.notes = stages if stages is not None else default_stages()
        for note in self.notes:
            say(note)
        self.engine: Any = _load_model(model, say) if model else None

    @property
    def problem(self) -> str:
        """Why nothing can be prepared with this preparer ("" when it can)."""
        if not self.stages:
            return "No analysis stage works here, so nothing can be prepared."
        if self.model and self.engine is None:
            return f"The vision-language model {self.model} could not be used."
        return ""

    def run(self, job: FilmJob) -> FilmReport:
        """Prepare one film; every failure but a stop is reported, never raised."""
        import av  # noqa: PLC0415

        from models.gaps import GapError  # noqa: PLC0415
        from models.pipeline.reader import ReaderError, why_unreadable  # noqa: PLC0415

        video = Path(job.video)
        began = time.monotonic()
        problem = check_path(video) or self.problem
        if problem:
            self.say(problem)
            return FilmReport(video, False, reason=problem)
        out = Path(job.out) if job.out else track_path(video)
        try:
            found = find_dialogue(video, self.say, self.check_stop)
            writer = (ModelWriter(self.engine, self.model, video, self.verbosity, self.say,
                                  found) if self.engine is not None else None)
            descs = prepare(video, out, job.fps, self.stages, self.say, writer,
                            all_stages=not self.notes, sound_damage=found.damage,
                            check_stop=self.check_stop)
            return FilmReport(video, True, out, len(descs), float(found.duration or 0.0),
                              time.monotonic() - began)
        except (ReaderError, GapError) as exc:  # a whole sentence naming the film
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - go on with the next video
            media = isinstance(exc, (OSError, av.FFmpegError))  # in words, not error numbers
            reason = (f"{video.name} could not be prepared: "
                      f"{f'{why_unreadable(exc)}.' if media else exc}")
        finally:
            for stage in self.stages:
                try:
                    stage.reset()
                except Exception:  # noqa: BLE001, S110 - the next film starts afresh anyway
                    pass
        self.say(reason)
        return FilmReport(video, False, out, seconds=time.monotonic() - began, reason=reason)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
