"""``narrate prepare VIDEO...``: analyse films in advance and write their description tracks.

For each film: every sampled frame through the perception stages, the composer's descriptions
written as a WebVTT track beside the film (so the player finds it and narrates from the first
instant), and the observations cached for "describe now". With ``--model``, the dialogue is
found first and a vision-language model describes a frame for each pause worth filling, in
batches, and names each new person once. Progress is printed as plain lines, every 10 percent,
which a screen reader reads well.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.composer import Composer
from models.types import Description
from player.media_check import check_path
from player.perception import FRAME_WIDTH, LOOKAHEAD_FPS, cache_config, default_stages


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate prepare",
        description="Analyse videos in advance: write a WebVTT description track beside each "
                    "(NAME.descriptions.vtt, or NAME.auto.descriptions.vtt when a track is "
                    "already there) and cache what was seen.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--fps", type=float, default=LOOKAHEAD_FPS,
                   help=f"frames analysed per second (default {LOOKAHEAD_FPS:g})")
    p.add_argument("--vtt", metavar="FILE", help="where to write the track (one video only)")
    p.add_argument("--model", metavar="NAME",
                   help="a vision-language model to describe the pauses with: a name from "
                        "`narrate models list`, a GGUF file or a model folder")
    p.add_argument("--verbosity", type=int, choices=(1, 2, 3), default=2,
                   help="how much the model says in each pause: 1 brief, 2 standard, "
                        "3 detailed")
    return p


class ModelWriter:
    """Asks the model about the frames in the pauses, in batches, and names new people."""

    def __init__(self, engine: Any, name: str, video: Path, verbosity: int,
                 say: Callable[[str], None]) -> None:
        from models.gaps import analyse  # noqa: PLC0415
        from models.schedule import GapMap  # noqa: PLC0415
        from models.vlm.lookahead import GapPlanner  # noqa: PLC0415

        self.engine, self.name, self.verbosity, self.say = engine, name, verbosity, say
        device = str(getattr(engine, "device", "") or "cpu")
        self.batch = 8 if device.startswith("cuda") else 1
        found = analyse(video)
        for note in found.notes:
            say(note)
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
        from models.vlm.lookahead import gap_request  # noqa: PLC0415

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
        from models.vlm.lookahead import answer_observation, gap_description  # noqa: PLC0415

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
        from models.vlm.lookahead import label_requests  # noqa: PLC0415

        for pid, question in label_requests(image, observations, self.labelled):
            try:
                label = self.engine.describe(question)
            except Exception as exc:  # noqa: BLE001
                self.say(f"The model could not label a person: {exc}")
                continue
            if label:
                composer.name_person(pid, label)


def track_path(video: Path) -> Path:
    plain = video.with_suffix(".descriptions.vtt")
    return plain if not plain.exists() else video.with_suffix(".auto.descriptions.vtt")


def prepare(video: Path, out: Path, fps: float, stages: list,
            say: Callable[[str], None], model: ModelWriter | None = None,
            all_stages: bool = True) -> list[Description]:
    """Analyse ``video`` with ``stages`` and write its description track to ``out``. The
    analysis is cached for the player only when ``all_stages`` (every stage could be loaded)
    and none of them had to be switched off on the way: a weaker analysis must not stand in
    for the full one on every later viewing."""
    from models.observations import ObservationStore  # noqa: PLC0415
    from models.reader import FrameReader  # noqa: PLC0415
    from models.webvtt import write_vtt  # noqa: PLC0415
    from models.worker import MAX_FAILURES_IN_A_ROW  # noqa: PLC0415

    began = time.monotonic()
    reader = FrameReader(str(video), fps=fps, max_width=FRAME_WIDTH)
    duration = max(reader.duration or 0.0, 0.001) if hasattr(reader, "duration") else 0.0
    composer = Composer()
    store = ObservationStore()
    descriptions: list[Description] = []
    shown = 0
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
            if duration > 0:
                tenth = int(frame.t / duration * 10)
                if tenth > shown and tenth < 10:
                    shown = tenth
                    say(f"{video.name}: {tenth * 10} percent.")
    finally:
        reader.stop()
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
    if all_stages and len(active) == len(stages):
        try:
            store.save(video, {**cache_config(model.name if model else ""), "fps": fps})
        except Exception as exc:  # noqa: BLE001 - the track matters, the cache is a bonus
            say(f"The analysis cache could not be written: {exc}")
    else:
        say(f"{video.name}: not all of the analysis could run, so it is not kept for the "
            f"player; it will look again when it plays the film.")
    took = time.monotonic() - began
    speed = f", {duration / took:.1f} times real time" if duration > 0.001 and took > 0 else ""
    say(f"{video.name}: 100 percent. {len(descriptions)} descriptions written to {out.name} "
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


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.vtt and len(args.videos) > 1:
        say("--vtt names one file, so give one video with it.")
        return 2
    stages, notes = default_stages()
    for note in notes:
        say(note)
    if not stages:
        say("No analysis stage works here, so nothing can be prepared.")
        return 1
    engine = _load_model(args.model, say) if args.model else None
    if args.model and engine is None:
        return 1
    failed = 0
    for name in args.videos:
        video = Path(name)
        problem = check_path(video)
        if problem:
            say(problem)
            failed += 1
            continue
        out = Path(args.vtt) if args.vtt else track_path(video)
        try:
            writer = (ModelWriter(engine, args.model, video, args.verbosity, say)
                      if engine is not None else None)
            prepare(video, out, args.fps, stages, say, writer, all_stages=not notes)
        except Exception as exc:  # noqa: BLE001 - go on with the next video
            say(f"{video.name} could not be prepared: {exc}")
            failed += 1
        for stage in stages:
            stage.reset()
    if engine is not None:
        engine.close()
    return 1 if failed else 0
