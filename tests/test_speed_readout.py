"""The analysis speed (the origin's frames a second), on a key in the player, in narrate
prepare's summary and in narrate doctor."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

from models.pipeline.speed import AnalysisSpeed, SpeedMeter, keep, last_kept
from tests.support import ROOT, wait_for


def test_the_meter_measures_frames_and_film_against_the_clock() -> None:
    ticks = itertools.count(0.0, 0.25)  # a frame every quarter second of wall time
    meter = SpeedMeter(clock=lambda: next(ticks))
    assert meter.speed() is None
    for t in (0.0, 0.5, 1.0, 1.5, 2.0):  # two frames a second of film
        meter.frame(t)
    speed = meter.speed("cpu")
    assert speed is not None
    assert round(speed.fps, 2) == 4.0 and round(speed.real_time, 2) == 2.0
    meter.frame(0.5)  # a seek back: a new run
    assert meter.speed() is None
    assert speed.sentence() == ("Analysis runs at 4.0 frames a second, 2.0 times real time, "
                                "on the processor.")


def test_the_last_measurement_is_kept_for_doctor(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert last_kept() is None
    keep(AnalysisSpeed(6.5, 3.5, "cpu", 1796400000.0))
    assert last_kept() == AnalysisSpeed(6.5, 3.5, "cpu", 1796400000.0)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-m", "player.cli", "doctor"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=120)
    assert "analysis speed" in out.stdout.lower(), out.stdout
    assert "6.5 frames a second, 3.5 times real time, on the processor" in out.stdout, out.stdout


def test_prepare_says_its_speed_in_frames_a_second(tmp_path, monkeypatch) -> None:
    from models.perception.shots import ShotStage
    from tests.media import make_clip
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clip = make_clip(tmp_path, seconds=6.0, audio=False)
    said: list[str] = []
    prepare_film(clip, tmp_path / "c.vtt", 2.0, [ShotStage()], said.append)
    found = re.search(r"times real time \((\d+\.\d) frames a second on the processor\)\.$",
                      said[-1])
    assert found, said[-1]
    kept = last_kept()  # the whole film's figure, not the last frames' of the look-ahead
    assert kept is not None and f"{kept.fps:.1f}" == found[1], (kept, said[-1])


def test_the_key_says_the_speed_while_the_film_is_analysed(make_controller, tmp_path) -> None:
    c = make_controller(narration=False, live_analysis=True)
    said: list[str] = []
    c.message.connect(lambda text, kind: said.append(text))
    video = Path(shutil.copy(ROOT / "assets" / "demo.mp4", tmp_path / "street.mp4"))
    c.handlers["analysis_speed"]()  # nothing open yet
    assert said[-1] == "The analysis has not measured its speed yet.", said
    c.open(video)
    wait_for(lambda: c.perception.speed() is not None, timeout=90)
    c.handlers["analysis_speed"]()
    figures = r"at \d+\.\d frames a second, \d+\.\d times real time, on the processor\."
    assert re.fullmatch(rf"(?:Analysis runs|The whole film has been analysed\. It ran) {figures}",
                        said[-1]), said
    wait_for(lambda: c.perception.looked_at_all, timeout=120)
    c.handlers["analysis_speed"]()
    assert re.fullmatch(rf"The whole film has been analysed\. It ran {figures}", said[-1]), said
