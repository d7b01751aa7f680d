"""The real player in a real X window (Xvfb), libmpv drawing into the Qt widget.

The test starts ``narrate`` as a user would, presses keys with xdotool, and asks mpv itself for
its properties over mpv's JSON IPC socket. A screenshot of the screen must show the video.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import media
from tests.support import stop_process

pytestmark = pytest.mark.xvfb


class MpvIpc:
    """A tiny client for mpv's JSON IPC (one request at a time)."""

    def __init__(self, path: Path, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise AssertionError("mpv's IPC socket never appeared") from None
                time.sleep(0.1)
        self.sock.settimeout(5)
        self.buf = b""
        self.n = 0

    def get(self, name: str):
        self.n += 1
        req = {"command": ["get_property", name], "request_id": self.n}
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                self.buf += self.sock.recv(65536)
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("request_id") == self.n:
                return msg.get("data")

    def wait(self, name: str, cond, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.get(name)
            if value is not None and cond(value):
                return value
            time.sleep(0.05)
        raise AssertionError(f"mpv {name} stayed {value!r}")


def xdotool(display: str, *args: str) -> str:
    proc = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DISPLAY": display})
    if proc.returncode != 0:
        raise AssertionError(f"xdotool {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


NO_OPENGL = {"LIBGL_DRIVERS_PATH": "/nonexistent", "__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent.json"}
"""A machine whose OpenGL cannot start (a virtual machine, a remote desktop)."""


def start_player(xvfb: str, tmp_path: Path, env_extra: dict | None = None):
    """``narrate`` on a red clip, with the video output it chooses itself."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed: run `make test` (package xdotool)")
    clip = media.make_clip(tmp_path, name="red clip.mp4", seconds=60.0, colour="red")
    sock = tmp_path / "mpv.sock"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), **(env_extra or {})}
    log = open(tmp_path / "narrate.log", "w")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(
        [sys.executable, "-m", "player.cli", str(clip), "--ao", "null",
         "--speech-ao", "null", "--mpv", f"input-ipc-server={sock}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ipc = MpvIpc(sock)
        wid = xdotool(xvfb, "search", "--sync", "--onlyvisible", "--name", "red clip.mp4")
        wid = wid.split()[0]
        xdotool(xvfb, "windowfocus", "--sync", wid)
        ipc.wait("time-pos", lambda t: t > 0.5)
    except BaseException:
        stop_process(proc)
        log.close()
        raise
    return wid, ipc, proc, log


@pytest.fixture
def player(xvfb, tmp_path):
    wid, ipc, proc, log = start_player(xvfb, tmp_path)
    try:
        yield xvfb, wid, ipc, proc, tmp_path
    finally:
        stop_process(proc)
        log.close()


def key(display: str, wid: str, name: str) -> None:
    xdotool(display, "key", "--clearmodifiers", name)
    time.sleep(0.3)


def test_keys_in_the_real_window_drive_mpv(player):
    display, wid, ipc, proc, _ = player
    assert ipc.get("pause") is False and ipc.get("vo-configured") is True
    key(display, wid, "space")
    ipc.wait("pause", lambda v: v is True)
    t0 = ipc.get("time-pos")
    key(display, wid, "Right")
    ipc.wait("time-pos", lambda t: abs(t - (t0 + 5)) < 0.1)
    key(display, wid, "shift+Right")
    ipc.wait("time-pos", lambda t: abs(t - (t0 + 35)) < 0.1)
    key(display, wid, "Left")
    ipc.wait("time-pos", lambda t: abs(t - (t0 + 30)) < 0.1)
    key(display, wid, "Down")
    ipc.wait("volume", lambda v: abs(v - 95) < 0.01)
    key(display, wid, "bracketright")
    ipc.wait("speed", lambda v: abs(v - 1.1) < 0.001)
    key(display, wid, "BackSpace")
    ipc.wait("speed", lambda v: abs(v - 1.0) < 0.001)
    key(display, wid, "ctrl+m")
    ipc.wait("mute", lambda v: v is True)
    key(display, wid, "space")
    ipc.wait("pause", lambda v: v is False)
    # "?" is Shift+slash on the keyboard: it opens the help; Escape closes it.
    key(display, wid, "question")
    xdotool(display, "search", "--sync", "--onlyvisible", "--name", "Keyboard commands")
    key(display, wid, "Escape")
    gone = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "Keyboard commands"],
                          capture_output=True, env={**os.environ, "DISPLAY": display})
    assert gone.returncode != 0, "the help window did not close on Escape"
    # Xvfb has no window manager to give focus back to the main window after a dialog.
    xdotool(display, "windowfocus", "--sync", wid)
    key(display, wid, "ctrl+q")
    assert proc.wait(timeout=10) == 0


def assert_film_inside_the_window(display: str, wid: str, tmp_path: Path) -> None:
    """A screenshot shows the red film filling the window's video area (letterboxed at its
    sides), and mpv opened no window of its own."""
    shot = tmp_path / "screen.png"
    ppm = tmp_path / "screen.ppm"
    geometry = xdotool(display, "getwindowgeometry", "--shell", wid)
    geo = dict(line.split("=") for line in geometry.splitlines())
    x, y, w, h = (int(geo[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    for out in (shot, ppm):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "x11grab",
                        "-video_size", "1280x720", "-i", display, "-frames:v", "1", str(out)],
                       check=True, timeout=30)
    keep = os.environ.get("NARRATE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "xvfb-window.png")
    data = ppm.read_bytes()
    header_end = data.index(b"255\n") + 4
    pixels = data[header_end:]

    def px(px_x: int, px_y: int) -> tuple[int, int, int]:
        i = (px_y * 1280 + px_x) * 3
        return pixels[i], pixels[i + 1], pixels[i + 2]

    def is_red(p: tuple[int, int, int]) -> bool:
        return p[0] > 180 and p[1] < 80 and p[2] < 80

    # The video occupies the top of the window, below the menu bar, letterboxed at its sides:
    # a grid over the middle of that area, from its top to its bottom, must be red (a film
    # drawn at its own size, 320x240, in a window of mpv's own covers only its centre).
    top, bottom = y + 30, y + int(h * 0.62)
    samples = [px(x + w * i // 20, top + (bottom - top) * j // 10)
               for i in range(8, 13) for j in range(11)]
    red = [p for p in samples if is_red(p)]
    assert len(red) >= 0.95 * len(samples), samples
    # ...and the controls below it are not red (the window, not just the video, is drawn).
    below = [px(x + w * i // 10, y + h - 10) for i in range(1, 10)]
    assert not all(is_red(p) for p in below)
    own = subprocess.run(["xdotool", "search", "--name", " - mpv$"], capture_output=True,
                         text=True, env={**os.environ, "DISPLAY": display})
    assert own.returncode != 0, "mpv opened a window of its own"


def test_screenshot_shows_the_video_frame(player):
    display, wid, ipc, _proc, tmp_path = player
    assert_film_inside_the_window(display, wid, tmp_path)


def test_without_opengl_the_film_is_still_inside_the_window(xvfb, tmp_path):
    """mpv's own choice of output falls back, without OpenGL, to one that opens a window of
    its own ("NAME - mpv") and leaves the player's video area empty."""
    wid, ipc, proc, log = start_player(xvfb, tmp_path, NO_OPENGL)
    try:
        assert ipc.get("current-vo") in ("xv", "x11")
        assert_film_inside_the_window(xvfb, wid, tmp_path)
    finally:
        stop_process(proc)
        log.close()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_close_the_window(xvfb, tmp_path, sig, code):
    """The window used to ignore both (only SIGKILL ended it)."""
    wid, ipc, proc, log = start_player(xvfb, tmp_path)
    try:
        began = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == code
        assert time.monotonic() - began < 5
    finally:
        stop_process(proc)
        log.close()
    assert "Traceback" not in (tmp_path / "narrate.log").read_text()
