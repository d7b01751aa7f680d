"""``narrate export``: placing a track's descriptions into the dialogue pauses and writing a
described copy of the video, end to end with real VAD, espeak-ng and ffmpeg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models import read_vtt
from tests import media
from tests.test_narration_e2e import LINES, make_film

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
