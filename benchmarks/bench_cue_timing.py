"""Cue timing: how far from its planned moment each description's sound starts.

Plays a real film (the bundled demo's pictures, 32 s, a street with people and a sign, without
its sound, so that every moment is free and a late start is the narrator's own) with real
libmpv (null outputs, which keep real time), real espeak-ng speech and live scene analysis
running (it competes for the processor, as for a user), and a description track with a short
cue every three seconds. Each cue's error is when its sound started on the film's clock minus when
the plan said it should start (its own time, or the start of the pause it waited for). The
same film is played with the narrator polling the playhead (every 50 ms and at each frame, as
before) and waking at each cue's moment (a single-shot timer, started early by the speech
player's measured start-up time), alternately, and the figures are printed side by side.

    .venv/bin/python benchmarks/bench_cue_timing.py [--rounds 2]

Target: 95% of cues within 50 ms of plan.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QCoreApplication  # noqa: E402

from benchmarks.bench_describe_now import pump_until  # noqa: E402
from models import Description, write_vtt  # noqa: E402
from player.app import LaunchOptions, build_controller, demo_path  # noqa: E402
from player.core.settings import Settings  # noqa: E402

SENTENCES = ["A person walks.", "A sign.", "Cars pass.", "The light changes.",
             "Someone crosses."]


def play(film: Path, track: Path, wake: bool) -> list[float]:
    """Errors in seconds (sound start minus plan) of the cues said in one viewing."""
    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    settings = Settings(mode="duck", verbosity=3, live_analysis=True, wait_for_narrator=False)
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, settings)
    c.narrator.wake_on_time = wake
    # mpv's playhead moves a frame at a time (40 ms here): the film's clock is read from the
    # wall clock instead, through the earliest moment each frame's time was reported.
    ticks: list[tuple[float, float]] = []
    c.playback.time_changed.connect(lambda t: ticks.append((time.monotonic(), t)))
    try:
        c.open(film, track)
        pump_until(lambda: c.media is not None and c.playback.duration > 0, 10)
        end = c.playback.duration - 0.5
        pump_until(lambda: c.playback.time_pos >= end, end + 30)
        offset = min(wall - t for wall, t in ticks if t > 0.5)
        return [(r.wall_start - offset) - r.planned for r in c.speech.records
                if r.source == "track" and r.planned is not None]
    finally:
        c.close()


def summary(errors: list[float]) -> str:
    ms = sorted(abs(e) * 1000 for e in errors)
    within = sum(1 for e in ms if e <= 50) / len(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    late = statistics.median(e * 1000 for e in errors)
    return (f"{len(ms)} cues, median error {late:+.0f} ms, 95th percentile |error| {p95:.0f} ms, "
            f"{within:.0%} within 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    demo = demo_path()
    assert demo is not None, "the demo clip is missing"
    folder = Path(tempfile.mkdtemp(prefix="bench-cues-"))
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # a first viewing every time
    try:
        film = folder / "street.mp4"  # its pictures, without its sound: every moment is free,
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(demo), "-an", "-c",
                        "copy", str(film)], check=True)  # so any error is the narrator's own
        cues = [Description(start=t, end=t + 1.5, text=SENTENCES[i % len(SENTENCES)])
                for i, t in enumerate(x * 3.0 + 1.7 for x in range(10))]
        track = folder / "cues.vtt"
        write_vtt(track, cues)
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for wake in (False, True):
                shutil.rmtree(folder / "cache", ignore_errors=True)
                results[wake] += play(film, track, wake)
        print(f"Polling the playhead:  {summary(results[False])}")
        print(f"Waking at each cue:    {summary(results[True])}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
