"""``narrate prepare``: analyse in advance, write a description track the player then speaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from models import read_vtt
from player.controller import find_description_track

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"


def narrate(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-m", "player.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)


def test_prepare_writes_a_track_beside_the_video_and_caches(tmp_path):
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    result = narrate("prepare", str(video), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "street.mp4: 50 percent." in result.stderr
    assert "100 percent" in result.stderr
    track = tmp_path / "street.descriptions.vtt"
    assert find_description_track(video) == track
    texts = [d.text for d in read_vtt(track).timeline.descriptions]
    assert any("Video Narrator demo" in t for t in texts), texts
    assert any("MAIN STREET" in t for t in texts), texts
    assert any(t.startswith("New shot") for t in texts), texts
    assert list((tmp_path / "cache" / "video-narrator" / "observations").glob("*.json"))
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
    assert "broken.mp4 could not be prepared" in result.stderr
    assert "no video track" in result.stderr
    assert "No file named missing.mp4" in result.stderr
