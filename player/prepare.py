"""``narrate prepare VIDEO...``: analyse films in advance and write their description tracks.

For each film: dialogue detection, then every sampled frame through the perception stages, the
composer's descriptions written as a WebVTT track beside the film (so the player finds it and
narrates from the first instant), and the observations cached for "describe now". Progress is
printed as plain lines, every 10 percent, which a screen reader reads well.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from models.composer import Composer
from models.types import Description
from player.media_check import check_path
from player.perception import CACHE_CONFIG as CONFIG
from player.perception import FRAME_WIDTH, LOOKAHEAD_FPS, default_stages


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
    return p


def track_path(video: Path) -> Path:
    plain = video.with_suffix(".descriptions.vtt")
    return plain if not plain.exists() else video.with_suffix(".auto.descriptions.vtt")


def prepare(video: Path, out: Path, fps: float, stages: list,
            say: Callable[[str], None]) -> list[Description]:
    from models.observations import ObservationStore  # noqa: PLC0415
    from models.reader import FrameReader  # noqa: PLC0415
    from models.webvtt import write_vtt  # noqa: PLC0415

    began = time.monotonic()
    reader = FrameReader(str(video), fps=fps, max_width=FRAME_WIDTH)
    duration = max(reader.duration or 0.0, 0.001) if hasattr(reader, "duration") else 0.0
    composer = Composer()
    store = ObservationStore()
    descriptions: list[Description] = []
    shown = 0
    reader.start()
    try:
        for frame in reader.frames():
            observations = []
            for stage in stages:
                try:
                    observations += stage.process(frame.t, frame.image)
                except Exception as exc:  # noqa: BLE001 - one stage failing must not stop us
                    say(f"{stage.name} failed at {frame.t:.1f} s: {exc}")
            store.record(frame.t, observations, 1.0 / fps)
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
    write_vtt(out, descriptions)
    try:
        store.save(video, {**CONFIG, "fps": fps})
    except Exception as exc:  # noqa: BLE001 - the track matters, the cache is a bonus
        say(f"The analysis cache could not be written: {exc}")
    took = time.monotonic() - began
    speed = f", {duration / took:.1f} times real time" if duration > 0.001 and took > 0 else ""
    say(f"{video.name}: 100 percent. {len(descriptions)} descriptions written to {out.name} "
        f"in {took:.0f} seconds{speed}.")
    return descriptions


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
            prepare(video, out, args.fps, stages, say)
        except Exception as exc:  # noqa: BLE001 - go on with the next video
            say(f"{video.name} could not be prepared: {exc}")
            failed += 1
        for stage in stages:
            stage.reset()
    return 1 if failed else 0
