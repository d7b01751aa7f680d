"""Shared fixtures: offscreen Qt, a private config folder, Xvfb, and Qt-aware waiting."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import ffmpeg, make_clip, x264_args

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-gpu", action="store_true", help="run tests that need an NVIDIA GPU")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-gpu"):
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU: run with --run-gpu")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own settings folder, so nothing leaks between tests or to the user."""
    cfg = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    return cfg


@pytest.fixture(scope="session")
def qapp():
    from PySide6.QtWidgets import QApplication

    from player.ui.a11y import ShortcutGate

    app = QApplication.instance() or QApplication(["narrate-tests"])
    gate = ShortcutGate(app)
    app.installEventFilter(gate)
    yield app






@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A virtual X screen for tests that need a real window; yields its DISPLAY."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: run `make test`, which installs it (package xvfb)")
    for n in range(77, 120):
        if not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("Xvfb did not start")
        time.sleep(0.05)
    yield display
    proc.terminate()
    proc.wait(timeout=5)






@pytest.fixture
def make_controller(qapp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Build players (real libmpv with null outputs, real speech) with the given settings;
    each gets a private cache folder and is closed after the test."""
    from player.app import LaunchOptions, build_controller
    from player.core.settings import Settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    made = []

    def factory(**settings: object):
        opts = LaunchOptions(film_options={"vo": "null", "ao": "null"},
                             speech_options={"ao": "null"})
        controller = build_controller(None, opts, Settings(**settings))  # type: ignore[arg-type]
        made.append(controller)
        return controller

    yield factory
    for controller in made:
        controller.close()


# Clips shared by the reader, feeder, worker and store tests (made once a module).
@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reader-media")


@pytest.fixture(scope="module")
def hd_clip(clip_dir: Path) -> Path:
    return make_clip(clip_dir, "hd.mp4", seconds=10, size="1280x720", audio=False)


@pytest.fixture(scope="module")
def small_clip(clip_dir: Path) -> Path:
    return make_clip(clip_dir, "small.mp4", seconds=10, size="320x240", audio=False)


@pytest.fixture(scope="module")
def vfr_clip(clip_dir: Path) -> Path:
    """10 fps for 3 s, then 30 fps, with a 1.5 s hole in the timestamps at 4 s."""
    out = clip_dir / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3",
            "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30:d=3",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[c];[c]setpts='if(gte(T,4),PTS+1.5/TB,PTS)'[v]",
            "-map", "[v]", "-fps_mode", "vfr", *x264_args(), str(out))
    return out


@pytest.fixture(scope="module")
def black_white(clip_dir: Path) -> Path:
    """Black from 0 to 2 s, white from 2 to 4 s."""
    out = clip_dir / "black-white.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=160x120:r=25:d=2",
            "-f", "lavfi", "-i", "color=c=white:s=160x120:r=25:d=2",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
            *x264_args("-g", "25"), str(out))
    return out


@pytest.fixture(scope="session")
def tuning_lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model lab's tests: a trainable tiny model and a dataset of four training examples
    and one test example."""
    from models.lab.dataset import film_examples, write_dataset
    from tests.lab_media import FIVE_CUES, build_trainable_tiny_vlm, make_coloured_film
    from tests.media import write_vtt

    folder = tmp_path_factory.mktemp("tuning")
    film = make_coloured_film(folder)
    track = write_vtt(folder, FIVE_CUES, name="film.descriptions.vtt")
    write_dataset(folder / "dataset", film_examples(film, track, 1, Path("images")),
                  [film.name], test_share=0.2)
    return {"dataset": folder / "dataset", "model": build_trainable_tiny_vlm(folder / "tiny")}
