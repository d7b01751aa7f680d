"""The window as a screen reader sees it: the AT-SPI tree on a session bus under Xvfb.

Every control is found by role and name, and "Describe now" is pressed through AT-SPI, the way
Orca does; the spoken description must reach the transcript and the screen reader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import media
from tests.support import stop_process

pytestmark = pytest.mark.xvfb

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"
BUS_LAUNCHER = "/usr/libexec/at-spi-bus-launcher"

CONTROLS = [
    ("push button", "Pause"),
    ("slider", "Seek"),
    ("label", "Time"),
    ("slider", "Volume"),
    ("spin button", "Playback speed"),
    ("check box", "Narration"),
    ("combo box", "Narration mode"),
    ("combo box", "Verbosity"),
    ("push button", "Describe now"),
    ("push button", "Repeat last description"),
    ("text", "Question about this frame"),
    ("push button", "Ask"),
    ("text", "Descriptions transcript"),
    ("label", "Status"),
]


def _need(path: str, package: str) -> None:
    if not (shutil.which(path) or Path(path).exists()):
        pytest.fail(f"{path} is missing: run `make test`, which installs {package}")


@pytest.fixture
def session_bus(xvfb):
    _need("dbus-launch", "dbus-x11")
    _need(BUS_LAUNCHER, "at-spi2-core")
    _need(SYSTEM_PYTHON, "python3")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True).returncode:
        pytest.fail("pyatspi is missing: run `make test`, which installs python3-pyatspi")
    env = {**os.environ, "DISPLAY": xvfb}
    out = subprocess.run(["dbus-launch", "--sh-syntax"], env=env, capture_output=True, text=True,
                         check=True).stdout
    bus = {}
    for line in out.splitlines():
        if "=" in line and line.startswith("DBUS_SESSION_BUS"):
            key, value = line.split("=", 1)
            bus[key] = value.rstrip(";").strip("'")
    env.update(bus)
    launcher = subprocess.Popen([BUS_LAUNCHER, "--launch-immediately"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield env
    launcher.terminate()
    launcher.wait(timeout=5)
    pid = bus.get("DBUS_SESSION_BUS_PID")
    if pid:
        subprocess.run(["kill", pid], check=False)


def probe(env: dict, *args: str, timeout: float = 60) -> dict:
    proc = subprocess.run([SYSTEM_PYTHON, str(HERE / "atspi_probe.py"), "Video Narrator", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_screen_reader_finds_every_control_and_presses_describe_now(session_bus, tmp_path):
    clip = media.make_clip(tmp_path, seconds=60.0)
    # The cue lasts: "describe now" repeats a track's cue while it is still current, and the
    # probes take a few seconds (with a 1.5 s cue, a slow start made the press too late).
    media.write_vtt(tmp_path, [(0.5, 40.0, "A test card with coloured bars.", 1)])
    env = {**session_bus, "QT_QPA_PLATFORM": "xcb", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
           "QT_ACCESSIBILITY": "1", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    log = open(tmp_path / "narrate.log", "w")  # noqa: SIM115 - closed below
    app = subprocess.Popen([sys.executable, "-m", "player.cli", str(clip), "--vo", "x11",
                            "--ao", "null", "--speech-ao", "null", "--speech", "both"],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(3.0)  # let the first cue be said, so the state is "playing"
        first = probe(env)
        assert "error" not in first, first
        # On Linux, Qt names a combo box by its current item and points to its label with a
        # labelled-by relation (Orca reads "Verbosity, Standard, combo box"): count both.
        found = {(n["role"], n["name"]) for n in first["tree"]}
        found |= {(n["role"], label) for n in first["tree"] for label in n["labelled_by"]}
        missing = [c for c in CONTROLS if c not in found]
        assert not missing, f"not in the accessibility tree: {missing}\nfound: {sorted(found)}"
        described = {(n["role"], n["name"]): n["description"] for n in first["tree"]}
        for control in [("push button", "Describe now"), ("slider", "Seek"),
                        ("text", "Descriptions transcript")]:
            assert described[control], f"{control} has no accessible description"
        menus = {n["name"] for n in first["tree"] if n["role"] == "menu item"}
        assert {"Playback", "Narration", "File", "Describe now", "Keyboard help"} <= menus, menus

        pressed = probe(env, "--press", "Describe now", "--listen", "3")
        assert pressed["press"] == "Press"
        after = {(n["role"], n["name"]): n.get("text", "") for n in pressed["tree_after"]}
        transcript = after[("text", "Descriptions transcript")]
        assert "Now: A test card with coloured bars." in transcript
        # The screen reader was told, as announcements: the state, then the description.
        announced = [e["data"] for e in pressed["events"]
                     if e["type"].startswith("object:announcement")]
        assert "Describing..." in announced, pressed["events"]
        assert any(a.startswith("A test card with coloured bars.") for a in announced), \
            pressed["events"]
    finally:
        stop_process(app)
        log.close()
