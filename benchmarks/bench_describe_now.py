"""Describe-now latency: from the key press to the first audio sample of the answer.

Plays the bundled demo with real libmpv (null video and audio outputs, which keep real time)
and real espeak-ng speech, presses "describe now" 20 times at different moments, and prints the
median and spread. "Cold" clears the speech cache before each press, so every answer is
synthesized from scratch; "warm" is what a user gets when the sentence was prepared ahead.

    .venv/bin/python benchmarks/bench_describe_now.py [--presses 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QCoreApplication  # noqa: E402

from player.app import LaunchOptions, build_controller, demo_path  # noqa: E402
from player.core.settings import Settings  # noqa: E402


def pump_until(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        if cond():
            return True
        time.sleep(0.001)
    return False


def measure(c, presses: int, cold: bool) -> list[float]:
    out = []
    for _ in range(presses):
        if cold:
            c.speech._cache.clear()  # noqa: SLF001 - the benchmark wants every answer cold
        before = len(c.speech.records)
        pressed = time.monotonic()
        c.run("describe_now")
        if not pump_until(lambda b=before: len(c.speech.records) > b, 5.0):
            raise SystemExit("no speech started within 5 s")
        out.append(c.speech.records[-1].wall_start - pressed)
        pump_until(lambda: False, 0.4)  # let the film move on a little
    return out


def run(label: str, settings: Settings, presses: int, cold: bool) -> list[float]:
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, settings)
    demo = demo_path()
    assert demo is not None, "the demo clip is missing"
    c.open(demo)
    pump_until(lambda: c.media is not None and c.playback.time_pos > 1.0, 10)
    if settings.live_analysis:
        if not pump_until(lambda: c.perception.available, 60):
            raise SystemExit("live analysis did not start: " + "; ".join(c.perception.stage_names))
        print(f"{label}: stages {', '.join(c.perception.stage_names)}")
    c.playback.seek_absolute(4.5)
    pump_until(lambda: False, 0.5)
    values = measure(c, presses, cold)
    c.close()
    return values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presses", type=int, default=20)
    args = ap.parse_args()
    app = QCoreApplication([])  # noqa: F841 - the event loop the player runs in
    print(f"CPU cores: {os.cpu_count()}")
    results = {
        "perception (people, faces, text, scene on the frame on screen)": run(
            "perception", Settings(narration=False), args.presses, cold=True),
        "description track only, speech synthesized cold": run(
            "track", Settings(narration=False, live_analysis=False), args.presses, cold=True),
    }
    for label, values in results.items():
        ms = sorted(v * 1000 for v in values)
        print(f"describe now, {label}: median {statistics.median(ms):.0f} ms, "
              f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms over {len(ms)} presses")
    print("target: under 1000 ms on 2 CPU cores")


if __name__ == "__main__":
    main()
