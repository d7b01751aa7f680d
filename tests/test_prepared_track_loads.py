"""A film's own prepared track loads in the player with no problem at all.

``narrate prepare`` writes several cues at one moment (one per verbosity level), so its cues
overlap; that is valid WebVTT and must not reach the listener as "Problem: ..." on every
viewing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from models import read_vtt

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"


def test_the_track_prepare_writes_for_the_demo_loads_without_problems(tmp_path: Path) -> None:
    video = tmp_path / "film.mp4"
    shutil.copy(DEMO, video)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "player.cli", "prepare", str(video)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = read_vtt(tmp_path / "film.descriptions.vtt")
    assert [str(p) for p in result.problems] == []
    cues = result.timeline.descriptions
    assert len(cues) >= 2
    # The track has layered cues (what used to be reported); the test would pass trivially
    # without them.
    assert any(b.start < a.end for a, b in zip(cues, cues[1:], strict=False)
               if a.end is not None), cues
