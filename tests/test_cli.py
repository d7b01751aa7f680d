"""The ``narrate`` command as a user runs it: help, keys, terminal mode in a real terminal (pty),
automatic terminal mode without a display, and libmpv missing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import media
from tests.support import Pty, no_display_env, run_on_a_terminal

ROOT = Path(__file__).resolve().parent.parent


def narrate(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "player.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or os.environ.copy(), cwd=ROOT)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = media.make_clip(folder, name="clip.mp4", seconds=20.0)
    media.write_vtt(folder, [(0.5, 2.0, "Coloured bars fill the screen.", 1),
                             (3.0, 4.5, "A clock counts.", 1)])
    return path


def test_help_is_plain_text_and_names_every_way_in():
    out = narrate("--help").stdout
    for word in ("narrate doctor", "--no-gui", "--descriptions", "--verbosity", "--mode", "F1"):
        assert word in out


def test_keys_lists_the_command_table():
    out = narrate("--keys").stdout
    assert "Describe now: D." in out and "Keyboard help: F1 or ?." in out




def test_without_a_display_it_plays_in_the_terminal_and_prints_descriptions(tmp_path):
    short = media.make_clip(tmp_path, name="short.mp4", seconds=4.0)
    media.write_vtt(tmp_path, [(0.5, 2.0, "Coloured bars fill the screen.", 1)],
                    name="short.descriptions.vtt")
    result = narrate(str(short), "--ao", "null", "--speech-ao", "null", env=no_display_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "No display found: starting in terminal mode." in result.stderr
    assert "[0:00] Coloured bars fill the screen." in result.stdout
    assert "Standard input is not a terminal" in result.stdout


def test_terminal_mode_missing_file_says_so(tmp_path):
    result = narrate("--no-gui", str(tmp_path / "nothing here.mp4"), env=no_display_env(tmp_path))
    assert result.returncode == 1
    assert "No file named nothing here.mp4" in result.stdout




def ipc_get(sock_path: Path, name: str):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        s.sendall(json.dumps({"command": ["get_property", name], "request_id": 1}).encode()
                  + b"\n")
        buf = b""
        while True:
            buf += s.recv(65536)
            for line in buf.split(b"\n"):
                if line.strip():
                    msg = json.loads(line)
                    if msg.get("request_id") == 1:
                        return msg.get("data")


def test_terminal_keys_drive_mpv_and_describe_now_prints(clip, tmp_path):
    sock = tmp_path / "mpv.sock"
    env = no_display_env(tmp_path)
    term = Pty(["--no-gui", str(clip), "--ao", "null", "--speech-ao", "null", "--mpv",
                f"input-ipc-server={sock}"], env)
    term.read_until("Terminal mode. Press F1")
    term.read_until("[0:00] Coloured bars fill the screen.")
    term.send(" ")
    term.read_until("Paused.")
    assert ipc_get(sock, "pause") is True
    t0 = ipc_get(sock, "time-pos")
    term.send("\x1b[C")  # the Right arrow as a terminal sends it
    term.read_until("Forward to")
    deadline = time.monotonic() + 5
    while abs(ipc_get(sock, "time-pos") - (t0 + 5)) > 0.1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ipc_get(sock, "time-pos") == pytest.approx(t0 + 5, abs=0.1)
    term.send("d")
    term.read_until("[Now] A clock counts.")
    term.send("?")
    term.read_until("Describe now: D.")
    term.send("q")
    assert term.wait() == 0, term.out[-3000:]


def _without_libmpv(tmp_path: Path) -> dict:
    """An environment where ctypes cannot find libmpv, as on a machine without libmpv2."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import ctypes.util\n_find = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda n: None if n == 'mpv' else _find(n)\n")
    env = no_display_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return env


def test_libmpv_missing_in_terminal_mode(clip, tmp_path):
    result = narrate("--no-gui", str(clip), env=_without_libmpv(tmp_path))
    assert result.returncode == 2
    assert "libmpv is not installed" in result.stderr and "sudo apt install libmpv2" in result.stderr
    assert "Traceback" not in result.stderr


def test_libmpv_missing_in_the_window_shows_the_fix_and_keeps_running(clip, tmp_path):
    env = _without_libmpv(tmp_path)
    env["QT_QPA_PLATFORM"] = "offscreen"
    result = narrate(str(clip), "--quit-after", "1.5", "--log-level", "INFO", env=env)
    assert result.returncode == 0, result.stderr
    assert "error: libmpv is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_each_part(tmp_path):
    result = subprocess.run([sys.executable, "-m", "player.cli", "doctor"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=no_display_env(tmp_path))
    out = result.stdout
    assert "libmpv (playback): OK." in out
    assert "espeak-ng (voice): OK." in out
    assert "GPU:" in out
    assert result.returncode == 0, out


def test_doctor_names_the_fix_for_a_missing_part(tmp_path):
    env = _without_libmpv(tmp_path)
    result = subprocess.run([sys.executable, "-m", "player.cli", "doctor"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 1
    assert "libmpv (playback): MISSING." in result.stdout
    assert "sudo apt install libmpv2" in result.stdout.split("To fix")[1]


def test_record_says_what_was_spoken_and_when(tmp_path):
    short = media.make_clip(tmp_path, name="rec.mp4", seconds=4.0)
    media.write_vtt(tmp_path, [(0.5, 2.0, "Coloured bars fill the screen.", 1)],
                    name="rec.descriptions.vtt")
    record = tmp_path / "record.json"
    # No live analysis: loading its models in the film's first second competes for the two
    # cores with the cue at 0.5 s (timing under load is test_narration's end-to-end test).
    result = narrate(str(short), "--ao", "null", "--speech-ao", "null", "--record", str(record),
                     "--no-analysis", env=no_display_env(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads(record.read_text())
    spoken = data["spoken"][0]
    assert spoken["text"] == "Coloured bars fill the screen."
    assert abs(spoken["media_start"] - spoken["planned"]) <= 0.1
    assert spoken["media_end"] > spoken["media_start"] and spoken["mode"] == "duck"
    assert data["skipped"] == []


def test_doctor_reports_the_chosen_model(tmp_path):
    from dataclasses import replace

    from player.core import settings as store

    env = no_display_env(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")

    def doctor() -> str:
        return subprocess.run([sys.executable, "-m", "player.cli", "doctor"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env=env).stdout

    out = doctor()
    assert "vision-language model: not available. none chosen; none downloaded" in out
    assert "narrate models pull smolvlm-256m" in out.split("To fix")[1]
    path = tmp_path / "config" / "video-narrator" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    missing = tmp_path / "nowhere.gguf"
    store.save(replace(store.load(path).settings, vlm_model=str(missing)), path)
    out = doctor()
    assert f"vision-language model: not available. {missing} cannot be used" in out, out


def test_native_library_lines_go_to_a_log_file_not_the_terminal(tmp_path):
    """In terminal mode a screen reader reads every line: what native libraries write straight
    to file descriptor 2 goes to a log file, while the player's own messages still show. A
    second call changes nothing; the run before's log is kept beside it."""
    log_file = tmp_path / "native.log"
    log_file.write_text("the run before\n")
    code = (
        "import logging, os, sys\n"
        "from pathlib import Path\n"
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "from player.cli.native_log import divert_native_stderr\n"
        f"assert divert_native_stderr(Path({str(log_file)!r})) is not None\n"
        f"assert divert_native_stderr(Path({str(tmp_path / 'other.log')!r})) is not None\n"
        "os.write(2, b'W0000 native chatter\\n')\n"
        "print('Problem: from the player', file=sys.stderr)\n"
        "logging.warning('a logged warning')\n"
    )
    status, _out, shown = run_on_a_terminal([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert status == 0, shown
    assert "native chatter" not in shown
    assert "Problem: from the player" in shown and "a logged warning" in shown
    assert "W0000 native chatter" in log_file.read_text()
    assert (tmp_path / "native.log.1").read_text() == "the run before\n"
    assert not (tmp_path / "other.log").exists()


def test_native_library_lines_stay_where_stderr_was_sent_when_not_a_terminal(tmp_path):
    """Standard error sent to a file or a pipe keeps everything (a crash's last words too); a
    closed standard error is no reason to fail."""
    log_file = tmp_path / "native.log"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from player.cli.native_log import divert_native_stderr\n"
        f"assert divert_native_stderr(Path({str(log_file)!r})) is None\n"
        "os.write(2, b'W0000 native chatter\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "W0000 native chatter" in result.stderr and not log_file.exists()
    code = code.replace("os.write(2, b'W0000 native chatter\\n')\n", "assert sys.stderr is None\n")
    closed = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, timeout=60, cwd=ROOT,
                            preexec_fn=lambda: os.close(2))
    assert closed.returncode == 0 and not log_file.exists()


def test_terminal_mode_keeps_the_keyboard_when_qt_is_set_to_offscreen(tmp_path):
    """QT_QPA_PLATFORM=offscreen is not a screen: the film's mpv gets no video output, so it
    does not probe the console (which closed the keyboard's file descriptor)."""
    env = no_display_env(tmp_path)
    env["QT_QPA_PLATFORM"] = "offscreen"
    term = Pty(["--no-gui", str(ROOT / "assets" / "demo.mp4"), "--ao", "null", "--speech-ao",
                "null", "--no-analysis", "--quit-after", "8", "--log-level", "INFO"], env)
    term.read_until("Terminal mode. Press F1")
    term.read_until("Playing demo.mp4")
    time.sleep(1.0)
    term.send(" ")
    term.read_until("Paused.")
    assert term.wait(20) == 0
    assert "Traceback" not in term.out
    assert "could not be restored" not in term.out  # the keyboard was still there at the end


def test_an_unreachable_display_plays_in_the_terminal(tmp_path):
    """DISPLAY naming an X server that is gone: Qt would abort (exit 134) blaming a missing
    library; the player says what is wrong and plays in the terminal instead."""
    short = media.make_clip(tmp_path, name="short.mp4", seconds=3.0)
    media.write_vtt(tmp_path, [(0.5, 2.0, "Coloured bars fill the screen.", 1)],
                    name="short.descriptions.vtt")
    env = no_display_env(tmp_path)
    n = next(n for n in range(150, 300) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    env["DISPLAY"] = f":{n}"  # no X server has this number here
    result = narrate(str(short), "--ao", "null", "--speech-ao", "null", "--no-analysis", env=env)
    assert result.returncode == 0, result.stderr
    assert f"The display :{n} cannot be reached: starting in terminal mode." in result.stderr
    assert "[0:00] Coloured bars fill the screen." in result.stdout
    doctor = subprocess.run([sys.executable, "-m", "player.cli", "doctor"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=env)
    assert f"the display :{n} cannot be reached: narrate will use terminal mode" in doctor.stdout


def test_a_live_display_is_used(xvfb, monkeypatch):
    from player.ui.display import screen_problem

    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert screen_problem() == ""


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_end_terminal_mode_cleanly(clip, tmp_path, how):
    """Ctrl-C typed in the terminal, or SIGTERM: narrate stops at once, as Q does: the record
    is written, the terminal is given back as it was, and the exit status says why."""
    import termios

    record = tmp_path / "record.json"
    term = Pty(["--no-gui", str(clip), "--ao", "null", "--speech-ao", "null", "--no-analysis",
                "--record", str(record)], no_display_env(tmp_path))
    term.read_until("Terminal mode. Press F1")
    term.read_until("[0:00] Coloured bars fill the screen.")
    assert not termios.tcgetattr(term.fd)[3] & termios.ICANON  # keys are read one by one
    began = time.monotonic()
    if how == "ctrl-c":
        term.send("\x03")
    else:
        os.kill(term.pid, signal.SIGTERM)
    assert term.wait(timeout=10) == (130 if how == "ctrl-c" else 143)
    assert time.monotonic() - began < 5
    lflag = termios.tcgetattr(term.fd)[3]
    assert lflag & termios.ICANON and lflag & termios.ECHO  # the terminal is as it was
    assert set(json.loads(record.read_text())) == {"spoken", "skipped"}  # written on the way out
    assert "Traceback" not in term.out


def test_the_window_keeps_native_library_lines_off_its_terminal(clip, tmp_path):
    """About 35 lines from ALSA, PipeWire and mediapipe reached the terminal that started the
    window; they go to a log file, as in terminal mode."""
    env = no_display_env(tmp_path)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(tmp_path / "cache"))
    code, _out, shown = run_on_a_terminal(
        [sys.executable, "-m", "player.cli", str(clip), "--ao", "null", "--speech-ao", "null",
         "--quit-after", "12"], env=env, cwd=ROOT, timeout=120)
    assert code == 0, shown
    native = (tmp_path / "cache" / "video-narrator" / "window-native.log").read_text()
    assert "XNNPACK" in native  # mediapipe's line, written below Python
    assert "XNNPACK" not in shown and "W0000" not in shown, shown
