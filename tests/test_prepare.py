"""``narrate prepare``: analyse in advance, write a description track the player then speaks."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import read_vtt
from models.webvtt import find_description_track
from tests.support import run_on_a_terminal

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"


def narrate(*args: str, tmp_path: Path, terminal: bool = False) -> subprocess.CompletedProcess:
    """Run ``narrate``; with ``terminal``, its standard error is a terminal (as for a person)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cmd = [sys.executable, "-m", "player.cli", *args]
    if terminal:
        code, out, shown = run_on_a_terminal(cmd, env=env, cwd=ROOT)
        return subprocess.CompletedProcess(cmd, code, out, shown)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_prepare_writes_a_track_beside_the_video_and_caches(tmp_path):
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    result = narrate("prepare", str(video), tmp_path=tmp_path, terminal=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^street\.mp4: 50 percent \(0:16 of 0:32\), \d+\.\d times real time\.$",
                     result.stderr, re.MULTILINE), result.stderr
    assert "100 percent" in result.stderr
    track = tmp_path / "street.descriptions.vtt"
    assert find_description_track(video) == track
    texts = [d.text for d in read_vtt(track).timeline.descriptions]
    assert any("Video Narrator demo" in t for t in texts), texts
    assert any("MAIN STREET" in t for t in texts), texts
    assert any(t.startswith("New shot") for t in texts), texts
    assert list((tmp_path / "cache" / "video-narrator" / "observations").glob("*.json"))
    # Only the progress is read out on the terminal: the detector's own lines went to a log file.
    assert "XNNPACK" not in result.stderr and "W0000" not in result.stderr
    assert "XNNPACK" in (tmp_path / "cache" / "video-narrator" / "prepare-native.log").read_text()
    # A second run keeps the first track and writes beside it.
    again = narrate("prepare", str(video), tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "street.auto.descriptions.vtt").exists()


def test_prepare_reports_bad_files_and_goes_on(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    audio = tmp_path / "sound.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=2",
                    str(audio)], check=True)
    result = narrate("prepare", str(bad), str(audio), str(tmp_path / "missing.mp4"),
                     tmp_path=tmp_path)
    assert result.returncode == 1
    assert "broken.mp4 could not be read: it is not a video file, or it is damaged." \
        in result.stderr
    assert "Errno" not in result.stderr and "Invalid data" not in result.stderr
    assert "no video track" in result.stderr
    assert "No file named missing.mp4" in result.stderr


def test_a_film_whose_end_is_missing_is_called_unreadable_in_words(tmp_path):
    """An MP4 cut short before its index (at the end) cannot be opened at all: PyAV raises
    AVERROR_INVALIDDATA, which must reach the user as a sentence, not as an error number."""
    from tests.media import make_truncated

    film = make_truncated(tmp_path, "film.mp4")
    result = narrate("prepare", str(film), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "film.mp4 could not be read: it is not a video file, or it is damaged." \
        in result.stderr.splitlines(), result.stderr
    assert "Errno" not in result.stderr and "1094995529" not in result.stderr


def test_progress_comes_every_few_seconds_with_the_place_and_the_speed(tmp_path, monkeypatch):
    """On a slow machine (each frame takes 3 s of this clock) a 20 s clip is still reported at
    least every 5 s, not only at every 10 percent, with where the analysis is in the film and
    how fast it goes."""
    import itertools

    from models.perception.shots import ShotStage
    from models.pipeline.reader import clock_time
    from tests.media import make_clip
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clip = make_clip(tmp_path, seconds=20.0, audio=False)
    ticks = itertools.count(0.0, 3.0)
    said: list[str] = []
    prepare_film(clip, tmp_path / "clip.vtt", 2.0, [ShotStage()], said.append,
                 clock=lambda: next(ticks), every=5.0)
    line = re.compile(r"clip\.mp4: (\d+) percent \((\d+):(\d\d) of 0:20\), "
                      r"\d+\.\d times real time\.")
    places = [int(m[2]) * 60 + int(m[3]) for m in map(line.fullmatch, said) if m]
    assert len(places) >= 19, said  # one every two frames (a second of film), not 9
    assert places[0] <= 1 and all(b - a <= 1 for a, b in itertools.pairwise(places)), said
    assert "clip.mp4: 50 percent (0:10 of 0:20), 0.2 times real time." in said  # 10 s in 63 s
    assert said[-1].startswith("clip.mp4: 100 percent.")
    assert (clock_time(36000), clock_time(1082), clock_time(42.4)) == ("10:00:00", "18:02", "0:42")


def test_prepare_with_a_model_fills_the_pauses(tmp_path, monkeypatch):
    """With a model, each pause worth filling gets the model's description of a frame in it,
    written to the track and kept in the analysis cache with the model's name."""
    from models.pipeline.config import cache_config, default_stages
    from models.pipeline.offline import find_dialogue
    from models.pipeline.questions import GapPlanner, cached_descriptions
    from models.pipeline.store import ObservationStore
    from models.schedule import GapMap
    from tests.scripted_vlm import ScriptedVlm
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    said: list[str] = []
    engine = ScriptedVlm(["A quiet street with parked cars."])
    stages, _notes = default_stages()
    out = tmp_path / "street.descriptions.vtt"
    descs, report = prepare_film(video, out, 2.0, stages, said.append, engine=engine,
                                 model="scripted")
    assert report.ok, said
    found = find_dialogue(video, lambda _line: None)
    gaps = GapMap()
    gaps.update(found.gaps, [(0.0, found.duration)], found.has_audio, complete=True)
    min_room = GapPlanner(gaps.room_at, gaps.gap_at, gaps.next_gap).min_room
    ours = [d for d in descs if d.source == "vlm"]
    full = "A quiet street with parked cars."
    # Each answer is cut to the word budget of its pause.
    assert ours and all(full.startswith(d.text.rstrip(".")) for d in ours)
    assert any(d.text == full for d in ours)
    assert gaps.gaps, "the demo has pauses in its dialogue"
    for d in ours:
        room = gaps.room_at(d.start)
        assert room is not None and room > 0, f"{d.start} is not in a pause"
    starts = [d.start for d in ours]
    assert all(b - a >= 2.0 for a, b in zip(starts, starts[1:], strict=False)), starts
    for gap in gaps.gaps:  # every pause long enough is described
        if gap.duration >= min_room:
            assert any(gap.start <= s < gap.end for s in starts), (gap, starts)
    asked = [p for p in engine.prompts if p.startswith("Describe this video frame")]
    assert len(asked) == len(ours) and set(engine.batches) == {1}  # CPU: one at a time
    assert any("Our detectors found" in p for p in engine.prompts)
    track = [d.text for d in read_vtt(out).timeline.descriptions]
    assert sum(t in {d.text for d in ours} for t in track) >= len(ours)
    assert any("MAIN STREET" in t for t in track)  # the detectors' findings are there too
    store = ObservationStore.load(video, {**cache_config("scripted"), "fps": 2.0})
    assert store is not None
    assert [d.start for d in cached_descriptions(store)] == [d.start for d in ours]
    assert ObservationStore.load(video, {**cache_config(), "fps": 2.0}) is None


def test_prepare_with_a_real_tiny_model_and_a_missing_one(tmp_path):
    from tests.tiny_vlm import build_tiny_vlm

    model = build_tiny_vlm(tmp_path / "tiny")
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    out = tmp_path / "mine.vtt"
    result = narrate("prepare", str(video), "--model", str(model), "--vtt", str(out),
                     tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Loading the vision-language model {model}" in result.stderr
    assert read_vtt(out).timeline.descriptions
    missing = narrate("prepare", str(video), "--model", str(tmp_path / "nowhere"),
                      tmp_path=tmp_path)
    assert missing.returncode == 1
    assert "The vision-language model could not be used" in missing.stderr


class _BrokenStage:
    """A stage whose model breaks on every frame (a damaged model file does this)."""

    name = "pose"

    def process(self, t, frame):
        raise RuntimeError("the graph could not run")

    def flush(self):
        return []

    def reset(self):
        pass


def test_a_stage_that_keeps_failing_is_switched_off_and_its_weaker_analysis_not_cached(
        tmp_path, monkeypatch):
    from models.perception.shots import ShotStage
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "video-narrator" / "observations"
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    said: list[str] = []
    prepare_film(video, tmp_path / "a.vtt", 2.0, [ShotStage(), _BrokenStage()], said.append)
    stopped = [s for s in said if s.startswith("pose stopped:")]
    assert stopped == ["pose stopped: it failed on 3 frames in a row (last: RuntimeError: the "
                       "graph could not run)"], said  # said once, not every frame
    texts = [d.text for d in read_vtt(tmp_path / "a.vtt").timeline.descriptions]
    assert texts.count("New shot.") >= 2, texts  # the cuts are still said without pose
    assert not list(cache.glob("*.json"))
    assert any("not kept for the player" in s for s in said)
    # A stage that could not even be loaded makes the analysis just as partial.
    prepare_film(video, tmp_path / "b.vtt", 2.0, [ShotStage()], said.append,
                 notes=["pose is off: it is not installed."])
    assert not list(cache.glob("*.json"))
    prepare_film(video, tmp_path / "c.vtt", 2.0, [ShotStage()], said.append)
    assert list(cache.glob("*.json"))


def test_a_film_with_a_hole_in_its_timestamps_is_still_cached_whole(tmp_path, monkeypatch):
    """A variable-frame-rate film with no frame for 1.5 s (its last picture stays on screen)
    is analysed to the end: the stretch counts as looked at, so the cache is kept."""
    from models.perception.shots import ShotStage
    from models.pipeline.config import cache_config
    from models.pipeline.store import ObservationStore
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = tmp_path / "vfr.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=160x120:r=10:d=3", "-f", "lavfi", "-i",
                    "testsrc2=s=160x120:r=30:d=3", "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1[c];[c]setpts='if(gte(T,4),PTS+1.5/TB,PTS)'[v]",
                    "-map", "[v]", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(video)], check=True)
    said: list[str] = []
    prepare_film(video, tmp_path / "vfr.vtt", 2.0, [ShotStage()], said.append)
    store = ObservationStore.load(video, {**cache_config(), "fps": 2.0})
    assert store is not None, said
    assert store.is_covered(0.0, 7.0), store.covered


def test_a_prepared_film_knows_its_dialogue_from_the_first_instant(tmp_path, qapp,
                                                                   monkeypatch):
    """prepare keeps the speech it found; the player's dialogue detection then knows the
    whole film at once, instead of answering "not known yet" at its start."""
    from player.audio.dialogue_scan import DialogueScanner
    from tests.media import LINES, make_film
    from tests.support import wait_for

    film = make_film(tmp_path, LINES, duration=22.0)
    result = narrate("prepare", str(film.path), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    scanner = DialogueScanner()
    seen: list[tuple] = []
    scanner.progress.connect(lambda *args: seen.append(args))
    scanner.start(film.path, 22.0)
    try:
        first = wait_for(lambda: seen and seen[0], timeout=20)
    finally:
        scanner.stop()
    gaps, covered, _has_audio, complete = first
    assert complete and covered == [(0.0, pytest.approx(22.0, abs=0.1))]
    said_at = [a for a, _b in film.speech]
    assert all(not any(g.start <= t < g.end for g in gaps) for t in said_at)  # no pause there


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_stops_prepare_and_leaves_nothing_half_written(tmp_path, sig, code):
    from tests import media

    done = media.make_clip(tmp_path, name="done.mp4", seconds=3.0, size="64x48")
    long_film = media.make_clip(tmp_path, name="long.mp4", seconds=1200.0, size="64x48",
                                rate=5)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.Popen([sys.executable, "-m", "player.cli", "prepare", str(done),
                             str(long_film)], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("long.mp4") or line.startswith("Finding the dialogue in long"):
            break
    began = time.monotonic()
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=20) == code, rest
    assert time.monotonic() - began < 10
    assert "Stopped: long.mp4 was not finished" in rest and "Traceback" not in rest
    assert (tmp_path / "done.descriptions.vtt").exists()  # the film done before is kept
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("long", "."))) == \
        ["long.mp4"]
    again = narrate("prepare", str(done), tmp_path=tmp_path)  # and the next run is fine
    assert again.returncode == 0, again.stderr
