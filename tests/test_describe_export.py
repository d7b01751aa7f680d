"""``narrate export``: placing a track's descriptions into the dialogue pauses and writing a
described copy of the video, end to end with real VAD, espeak-ng and ffmpeg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import read_vtt
from models.wording import counted
from tests import media
from tests.media import LINES, make_film

ROOT = Path(__file__).resolve().parent.parent


def narrate(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-m", "player.cli", *args], capture_output=True,
                          text=True, timeout=180, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_film(tmp_path_factory.mktemp("exp"), LINES, duration=22.0)


def test_export_writes_a_described_copy_and_the_placed_track(film, tmp_path):
    first_end = film.speech[0][1]
    track = media.write_vtt(tmp_path, [
        (1.0, 3.0, "Two people stand in a kitchen.", 1),
        (first_end + 2.0, first_end + 4.0, "The man looks at his watch.", 1),
        (film.speech[1][1] + 0.2, film.speech[1][1] + 1.0,
         "The man sets his bag on the table, takes off his coat, and sits down slowly while "
         "she watches him from the doorway.", 1),
    ], name="track.vtt")
    out = tmp_path / "described.mp4"
    vtt = tmp_path / "placed.vtt"
    result = narrate("export", str(film.path), "-o", str(out), "--vtt", str(vtt),
                     "--descriptions", str(track), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Placed 2 of 3 descriptions" in result.stderr or \
        "Placed 3 of 3 descriptions" in result.stderr, result.stderr
    placed = read_vtt(vtt).timeline.descriptions
    assert placed[0].text == "Two people stand in a kitchen."
    assert placed[0].start == pytest.approx(first_end + 0.15, abs=0.15)
    for d in placed:
        for a, b in film.speech:
            assert min(d.end, b) - max(d.start, a) < 0.05, (d, (a, b))
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
        capture_output=True, text=True, check=True).stdout)
    kinds = [s["codec_type"] for s in info["streams"]]
    assert kinds == ["video", "audio", "audio"]
    assert info["streams"][2]["disposition"]["visual_impaired"] == 1


def test_export_needs_a_track_and_an_output(film, tmp_path):
    result = narrate("export", str(film.path), tmp_path=tmp_path)
    assert result.returncode == 2 and "-o OUT" in result.stderr
    result = narrate("export", str(film.path), "-o", str(tmp_path / "x.mp4"), tmp_path=tmp_path)
    assert result.returncode == 1 and "No description track was found" in result.stderr
    result = narrate("export", str(tmp_path / "missing.mp4"), "--vtt", "x.vtt", tmp_path=tmp_path)
    assert result.returncode == 1 and "No file named missing.mp4" in result.stderr


def test_nothing_is_placed_after_the_film_ends(tmp_path):
    """On a 20 s clip, cues near the end were placed at 20.0, 25.6 and 28.4 s."""
    clip = media.make_clip(tmp_path, name="short.mp4", seconds=20.0)
    track = media.write_vtt(tmp_path, [
        (17.0, 18.0, "A clock counts the seconds.", 1),
        (18.5, 19.0, "Coloured bars fill the screen from one side to the other.", 1),
        (19.5, 20.0, "The picture fades slowly to black as the music ends.", 1),
    ], name="end.vtt")
    vtt = tmp_path / "placed.vtt"
    result = narrate("export", str(clip), "--vtt", str(vtt), "--descriptions", str(track),
                     tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    placed = read_vtt(vtt).timeline.descriptions
    assert placed and all(d.end <= 20.0 + 0.05 for d in placed), placed
    assert "Left out, no room before the film ends: at 19.5 s" in result.stderr
    # The described copy holds the same descriptions as the placed track (they disagreed).
    video = narrate("export", str(clip), "-o", str(tmp_path / "out.mp4"), "--descriptions",
                    str(track), tmp_path=tmp_path)
    assert video.returncode == 0, video.stderr
    assert f"Placed {len(placed)} of 3 descriptions" in video.stderr
    assert f"with {counted(len(placed), 'description')} in a new audio-description track" \
        in video.stderr


def test_a_huge_track_speaks_only_what_can_be_placed(tmp_path):
    """100,000 cues on a 20 s film took more than five minutes of speech synthesis for cues
    that could never be placed; only those that can be placed are spoken now."""
    clip = media.make_clip(tmp_path, name="short.mp4", seconds=20.0)
    lines = ["WEBVTT", ""]
    for i in range(20_000):
        t = i * 0.001
        lines += [f"c{i}", f"00:00:{t:06.3f} --> 00:00:{t + 1:06.3f}",
                  f"Description number {i} of a very busy track.", ""]
    track = tmp_path / "huge.vtt"
    track.write_text("\n".join(lines), encoding="utf-8")
    vtt = tmp_path / "placed.vtt"
    result = narrate("export", str(clip), "--vtt", str(vtt), "--descriptions", str(track),
                     tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    spoken = int(result.stderr.split("Speaking ")[1].split(" of ")[0])
    assert 0 < spoken <= 20  # a 20 s film holds a handful of 3 s sentences
    placed = read_vtt(vtt).timeline.descriptions
    assert 0 < len(placed) <= spoken
    assert "more descriptions were left out." in result.stderr
    assert len(result.stderr.splitlines()) < 60  # not 20,000 lines for a screen reader


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopping_an_export_leaves_nothing_behind(tmp_path, sig, code):
    long_film = media.make_clip(tmp_path, name="long.mp4", seconds=900.0, size="64x48", rate=5)
    track = media.write_vtt(tmp_path, [(t, t + 2.0, f"Scene {t // 30:.0f} begins.", 1)
                                       for t in range(10, 890, 30)], name="long.vtt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "described.mp4"
    out.write_bytes(b"the good copy")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.Popen([sys.executable, "-m", "player.cli", "export", str(long_film),
                             "-o", str(out), "--descriptions", str(track)],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("Placed "):
            break
    # ffmpeg is writing the copy now
    deadline = time.monotonic() + 20
    while not any(p.name.endswith(".partial.mp4") for p in out_dir.iterdir()):
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.02)
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=15) == code
    assert "Export stopped; nothing was written." in rest and "Traceback" not in rest
    assert sorted(p.name for p in out_dir.iterdir()) == ["described.mp4"]
    assert out.read_bytes() == b"the good copy"
    ffmpeg = subprocess.run(["pgrep", "-f", str(out_dir)], capture_output=True, text=True)
    assert ffmpeg.stdout.strip() == "", "ffmpeg is still running"


def test_automatic_mode_makes_an_extended_copy_for_what_matters(tmp_path):
    """Export follows the player's rules: in automatic mode an important description that
    finds no pause holds the picture while it is said (a longer copy); minor ones are left out;
    the default is a copy as long as the film."""
    from tests.media import DENSE, make_film

    dense = make_film(tmp_path, DENSE, duration=18.0)
    track = media.write_vtt(tmp_path, [
        (1.0, 2.0, "Two people sit at a restaurant table.", 1),
        (5.0, 6.0, "Candles flicker on the table between them.", 3),
    ], name="dense.vtt")

    def duration(path: Path) -> float:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                              "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                             check=True).stdout
        return float(out)

    same = narrate("export", str(dense.path), "-o", str(tmp_path / "same.mp4"),
                   "--descriptions", str(track), "--verbosity", "3", tmp_path=tmp_path)
    assert same.returncode == 0, same.stderr
    assert duration(tmp_path / "same.mp4") == pytest.approx(duration(dense.path), abs=0.1)
    assert "Placed 0 of 2 descriptions" in same.stderr

    vtt = tmp_path / "extended.vtt"
    longer = narrate("export", str(dense.path), "-o", str(tmp_path / "extended.mp4"),
                     "--vtt", str(vtt), "--descriptions", str(track), "--verbosity", "3",
                     "--mode", "auto", tmp_path=tmp_path)
    assert longer.returncode == 0, longer.stderr
    assert "The picture holds still 1 time" in longer.stderr
    assert "Left out, no room" in longer.stderr and "at 5.0 s, Candles flicker" in longer.stderr
    [said] = read_vtt(vtt).timeline.descriptions
    assert said.text == "Two people sit at a restaurant table."
    held = said.end - said.start
    assert duration(tmp_path / "extended.mp4") == pytest.approx(duration(dense.path) + held,
                                                                abs=0.15)
    streams = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json",
         str(tmp_path / "extended.mp4")], capture_output=True, text=True, check=True).stdout)
    assert [s["codec_type"] for s in streams["streams"]] == ["video", "audio", "audio"]
    only_vtt = narrate("export", str(dense.path), "--vtt", str(vtt), "--descriptions",
                       str(track), "--mode", "auto", tmp_path=tmp_path)
    assert only_vtt.returncode == 2 and "give -o OUT" in only_vtt.stderr
