"""Helpers shared by the tests (test files never import from one another): waiting, driving
the offline analysis as ``narrate prepare`` does, running a stage over frames, the player on a
pseudo-terminal, and the tiny GGUF builder."""

from __future__ import annotations

import importlib.util
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.perception import Stage
from models.pipeline.offline import FilmJob, FilmReport, Preparer
from models.pipeline.worker import Result
from models.types import Description, Observation

ROOT = Path(__file__).resolve().parent.parent


def prepare_film(video: Path, out: Path, fps: float, stages: Sequence[Any],
                 say: Callable[[str], None], *, notes: Sequence[str] = (), engine: Any = None,
                 model: str = "", clock: Callable[[], float] = time.monotonic,
                 every: float = 5.0) -> tuple[list[Description], FilmReport]:
    """Prepare one film with these stages (and ``notes`` on stages that could not be built),
    as ``narrate prepare`` does; returns its descriptions and its report."""
    preparer = Preparer(say, model, stages=(list(stages), list(notes)), engine=engine,
                        clock=clock, every=every)
    try:
        report = preparer.run(FilmJob(Path(video), Path(out), fps))
        return preparer.last, report
    finally:
        preparer.close()


def wait_until(cond: Callable[[], object], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def run(stage, frames) -> list[Observation]:
    out: list[Observation] = []
    for t, frame in frames:
        out += stage.process(t, frame)
    return out + stage.flush()


def no_display_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


class Pty:
    """``narrate --no-gui`` in a real pseudo-terminal, as a terminal user runs it."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "player.cli", *args], env)
        self.out = ""

    def read_until(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.out}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    self.out += os.read(self.fd, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        return self.out

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                self.out += os.read(self.fd, 4096).decode("utf-8", "replace")
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("narrate did not quit")


def gguf_builder():
    spec = importlib.util.spec_from_file_location("tiny_gguf", ROOT / "scripts" / "tiny_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_for(cond: Callable[[], object], timeout: float = 5.0, step: float = 0.01) -> object:
    """Process Qt events until ``cond()`` is truthy; fail the test with a clear message if not."""
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + timeout
    while True:
        QCoreApplication.processEvents()
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def pump(seconds: float) -> None:
    """Let the Qt event loop run for ``seconds``."""
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.005)


def stop_process(proc: subprocess.Popen) -> None:
    """End a program a test started: politely, then firmly."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_on_a_terminal(args: list[str], *, env: dict[str, str] | None = None,
                      cwd: Path | None = None, timeout: float = 300) -> tuple[int, str, str]:
    """Run ``args`` with standard error on a pseudo-terminal, as when a person runs it (a
    screen reader reads that terminal); standard output is piped. Returns (exit status,
    standard output, what appeared on the terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal is closed: the process and its children are gone
                    data = b""
                if not data:
                    break
                shown += data
        else:
            proc.kill()
        out = proc.stdout.read() if proc.stdout else b""
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    text = shown.decode(errors="replace").replace("\r\n", "\n")
    return code, out.decode(errors="replace"), text


# Small real stages of the perception contract, for the worker's tests.
class Brightness(Stage):
    """Mean brightness of the frame, 0..1."""

    name = "brightness"

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        value = float(frame.mean()) / 255
        return [Observation(t, "scene", f"brightness {value:.2f}", data={"brightness": value})]

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Gate(Stage):
    """Holds the first frame until released: keeps the worker busy on demand."""

    name = "gate"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        self.calls.append(f"process {t}")
        self.entered.set()
        self.release.wait(10)
        return []

    def flush(self) -> list[Observation]:
        self.calls.append("flush")
        return [Observation(99.0, "held", "held back")]

    def reset(self) -> None:
        self.calls.append("reset")


class Slow(Stage):
    name = "slow"

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        time.sleep(self.seconds)
        return []

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Failing(Stage):
    """Raises on the frames whose time is in ``bad`` (every frame when ``bad`` is None)."""

    name = "failing"

    def __init__(self, bad: set[float] | None = None) -> None:
        self.bad = bad
        self.seen = 0

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        self.seen += 1
        if self.bad is None or t in self.bad:
            raise RuntimeError(f"cannot look at {t}")
        return [Observation(t, "ok", "fine")]

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Unavailable(Slow):
    name = "unavailable"

    def problem(self) -> str:
        return "needs the fancy-model package: pip install fancy-model"

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        raise AssertionError("a stage with a problem must never be used")


IMAGE = np.full((24, 32, 3), 128, np.uint8)


class Collector:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.problems: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def result(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)

    def problem(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    @property
    def times(self) -> list[float]:
        return [r.request.t for r in self.results if r.request.kind != "flush"]
