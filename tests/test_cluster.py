"""``narrate prepare`` on a real Ray cluster: one head started with ``ray start --head`` on
127.0.0.1 for the whole module (Ray starts slowly here), joined by this process for the runner's
own tests and by ``narrate prepare --cluster`` for the command's; one test starts the embedded
cluster of ``--workers``. Clips are made with ffmpeg, a few seconds long and small; where the
heavy detectors are not the point, the workers run the shot detector only (or a slow or hanging
copy of it, defined here, which the workers import by name)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import ray  # the [cluster] extra: these tests need it

from models import read_vtt
from models.library.cluster import RayRunner, reachable
from models.library.film import prepared_track
from models.library.films import find_films
from models.library.job import LibrarySettings
from models.library.library import LibraryRun
from models.library.progress import LibraryProgress
from models.perception.shots import ShotStage
from tests.media import make_clip, make_corrupt

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")

pytestmark = pytest.mark.timeout(150)


class SlowShots(ShotStage):
    """The shot detector, a tenth of a second a frame: a film lasts long enough to be caught
    in the middle."""

    def process(self, t: float, frame: np.ndarray) -> list:
        time.sleep(0.12)
        return super().process(t, frame)


class HangOnRed(ShotStage):
    """The shot detector, except that a red picture never comes back, as a decoder that hangs
    on a bad frame: the film's analysis stops moving while its worker lives on."""

    def process(self, t: float, frame: np.ndarray) -> list:
        red = frame[..., 0].mean() > 200 and frame[..., 1].mean() < 50
        while red:
            time.sleep(1)
        return super().process(t, frame)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Head:
    address: str
    cache: Path  # the XDG cache folder of the head's workers


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """``ray start --head`` on 127.0.0.1 with two CPUs, stopped at the end by its own process
    group (never ``ray stop``, which would stop every Ray on the machine)."""
    cache = tmp_path_factory.mktemp("cluster-cache")
    port = _free_port()
    log_file = tmp_path_factory.mktemp("ray-log") / "head.log"
    log = log_file.open("w")
    proc = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=1",  # a GPU in name only
         "--include-dashboard=false", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={_free_port()}"],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)}, cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not reachable(address):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"ray start --head did not start: {log_file.read_text()[-2000:]}")
            time.sleep(0.2)
        joined = RayRunner(2, address)
        joined.open()  # this process joins it, as the command does, with the head's token
        yield Head(address, cache)
    finally:
        ray.shutdown()
        for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def _settings(head: Head, *stages: str) -> LibrarySettings:
    return LibrarySettings(stages=stages, keep_partial=True, cache_home=str(head.cache))


def _run(folder: Path, settings: LibrarySettings, runner: RayRunner,
         on_start=None) -> tuple:
    said = io.StringIO()
    run = LibraryRun(settings, runner, LibraryProgress({}, said, every=0.0),
                     on_start=on_start)
    report = run.run(find_films([folder]))
    return report, said.getvalue()


def _by_name(report) -> dict:
    return {Path(o.video).name: o for o in report.outcomes}


def test_a_library_with_sub_folders_and_a_corrupt_film_then_a_rerun_that_skips_it_all(
        head, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(head.cache))
    library = tmp_path / "library"
    (library / "series" / "season 1").mkdir(parents=True)
    make_clip(library, "a.mp4", seconds=3.0, size="160x120", audio=False)
    make_clip(library / "series", "b.mp4", seconds=4.0, size="160x120", audio=False)
    make_clip(library / "series" / "season 1", "c.mkv", seconds=5.0, size="160x120")
    make_corrupt(library / "series", "broken.mp4")
    (library / "cover.jpg").write_bytes(b"\xff\xd8 not much of a picture")
    started: list[tuple[str, int]] = []
    settings = _settings(head, "shots")

    report, said = _run(library, settings, RayRunner(2, "attached"),
                        on_start=lambda video, pid, attempt: started.append((video, pid)))

    films = _by_name(report)
    assert [films[n].state for n in ("a.mp4", "b.mp4", "c.mkv", "broken.mp4")] == \
        ["done", "done", "done", "failed"], said
    assert films["broken.mp4"].reason == \
        "broken.mp4 could not be read: it is not a video file, or it is damaged."
    assert [round(films[n].duration) for n in ("a.mp4", "b.mp4", "c.mkv")] == [3, 4, 5]
    for name, folder in (("a", library), ("b", library / "series"),
                         ("c", library / "series" / "season 1")):
        track = folder / f"{name}.descriptions.vtt"
        assert track.read_text().startswith("WEBVTT") and not read_vtt(track).problems, name
    # Each film ran in a Ray worker process, not in this one.
    assert {Path(v).name for v, _ in started} == {"a.mp4", "b.mp4", "c.mkv", "broken.mp4"}
    assert os.getpid() not in {pid for _, pid in started}
    assert [Path(p).name for p in report.not_films] == ["cover.jpg"]
    assert "Library: 4 of 4 films, 0.2 of 0.2 minutes of film analysed" in said, said
    assert "broken.mp4 could not be read" in said
    saved = tmp_path / "report.json"
    assert report.write(saved) == ""
    data = json.loads(saved.read_text())
    assert data["counts"] == {"done": 3, "skipped": 0, "failed": 1, "stopped": 0}
    assert data["cluster"] == "attached" and data["not_videos"] == [str(library / "cover.jpg")]

    # The rerun prepares nothing again: each film's track and cache are complete.
    times = {p: p.stat().st_mtime_ns for p in library.rglob("*.vtt")}
    started.clear()
    again, said = _run(library, settings, RayRunner(2, "attached"),
                       on_start=lambda video, pid, attempt: started.append((video, pid)))
    states = {n: o.state for n, o in _by_name(again).items()}
    assert states == {"a.mp4": "skipped", "b.mp4": "skipped", "c.mkv": "skipped",
                      "broken.mp4": "failed"}, said
    assert "3 of the 4 films were prepared already" in said
    assert [Path(v).name for v, _ in started] == ["broken.mp4"]  # the only one tried again
    assert {p: p.stat().st_mtime_ns for p in library.rglob("*.vtt")} == times
    assert not list(library.rglob("*.auto.descriptions.vtt"))


def test_a_worker_killed_in_the_middle_of_a_film_is_retried_and_the_film_finished(
        head, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(head.cache))
    library = tmp_path / "films"
    library.mkdir()
    make_clip(library, "victim.mp4", seconds=10.0, size="160x120", audio=False)
    make_clip(library, "bystander.mp4", seconds=6.0, size="160x120", audio=False)
    starts: list[tuple[str, int, int]] = []
    killed: list[int] = []

    def kill_later(pid: int) -> None:
        time.sleep(0.8)  # 20 frames of 0.12 s: well inside the film
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def on_start(video: str, pid: int, attempt: int) -> None:
        starts.append((Path(video).name, pid, attempt))
        if Path(video).name == "victim.mp4" and attempt == 1:
            threading.Thread(target=kill_later, args=(pid,), daemon=True).start()

    report, said = _run(library, _settings(head, "tests.test_cluster:SlowShots"),
                        RayRunner(2, "attached", retries=2), on_start=on_start)

    films = _by_name(report)
    assert films["victim.mp4"].state == "done", said
    assert films["victim.mp4"].attempts == 2, said
    assert films["bystander.mp4"].state == "done" and films["bystander.mp4"].attempts == 1
    victim = [(pid, attempt) for name, pid, attempt in starts if name == "victim.mp4"]
    assert len(killed) == 1 and victim[0] == (killed[0], 1)
    assert victim[1][1] == 2 and victim[1][0] != killed[0]  # a new worker process
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert "victim.mp4: done (after 2 tries)" in said
    # Nothing lost: the retried film's track and cache are whole, nothing half-written lies about.
    assert prepared_track(library / "victim.mp4", _settings(head)) is not None
    assert (library / "victim.descriptions.vtt").read_text().startswith("WEBVTT")
    assert not [p.name for p in library.iterdir() if p.name.endswith(".tmp")]


def test_a_film_whose_worker_keeps_dying_is_given_up_with_its_reason(head, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(head.cache))
    library = tmp_path / "films"
    library.mkdir()
    make_clip(library, "doomed.mp4", seconds=10.0, size="160x120", audio=False)
    killed: list[int] = []

    def on_start(video: str, pid: int, attempt: int) -> None:
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)  # every try, as a film that always runs out of memory

    report, said = _run(library, _settings(head, "tests.test_cluster:SlowShots"),
                        RayRunner(1, "attached", retries=1), on_start=on_start)

    doomed = _by_name(report)["doomed.mp4"]
    assert (doomed.state, doomed.attempts, len(killed)) == ("failed", 2, 2), said
    assert doomed.reason == ("doomed.mp4 was given up: the worker preparing it stopped "
                             "unexpectedly 2 times (WorkerCrashedError)."), said
    assert not (library / "doomed.descriptions.vtt").exists()


def test_a_film_that_hangs_is_stopped_at_the_time_limit_and_the_rest_go_on(
        head, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(head.cache))
    library = tmp_path / "films"
    library.mkdir()
    make_clip(library, "hangs.mp4", seconds=3.0, size="160x120", audio=False, colour="red")
    make_clip(library, "fine.mp4", seconds=3.0, size="160x120", audio=False)
    began = time.monotonic()

    report, said = _run(library, _settings(head, "tests.test_cluster:HangOnRed"),
                        RayRunner(2, "attached", hang_limit=6.0))

    films = _by_name(report)
    assert films["fine.mp4"].state == "done", said
    assert films["hangs.mp4"].state == "failed", said
    assert films["hangs.mp4"].reason == ("hangs.mp4 made no progress for 6 seconds (its "
                                         "decoder may hang), so it was stopped."), said
    assert time.monotonic() - began < 60
    assert not (library / "hangs.descriptions.vtt").exists()


def _narrate(*args: str, cache: Path, timeout: float = 120) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "player.cli", "prepare", *args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_stops_the_run_keeping_the_finished_films_and_a_rerun_does_the_rest(
        head, tmp_path):
    """The command on the module's cluster, with every stage that can run here; Ctrl-C as soon
    as one film is finished."""
    library = tmp_path / "library"
    library.mkdir()
    for i in range(3):
        make_clip(library, f"film{i}.mp4", seconds=3.0 + i, size="160x120", audio=False)
    report = tmp_path / "report.json"
    proc = _narrate("--cluster", head.address, "--report", str(report), str(library),
                    cache=head.cache)
    lines: list[str] = []

    def read() -> None:  # Ctrl-C once the command has said that one film is done
        for line in proc.stderr:
            lines.append(line)
            if ": done" in line:
                proc.send_signal(signal.SIGINT)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc.wait(timeout=120)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Stopped: the films under way were not finished, so nothing was written for them; " \
           "the films finished before are kept." in err
    data = json.loads(report.read_text())
    assert data["stopped"] is True and data["counts"]["done"] >= 1, data
    assert data["counts"]["stopped"] >= 1, data  # three films, two workers: not all were done
    reasons = {f["reason"] for f in data["films"] if f["state"] == "stopped"}
    assert reasons <= {"It was under way, so nothing was written for it.",
                       "It had not started."}, reasons
    kept = sorted(library.glob("*.descriptions.vtt"))
    for track in kept:
        assert read_vtt(track).timeline.descriptions, track.name  # whole tracks only
    done = {Path(f["video"]).name for f in data["films"] if f["state"] == "done"}
    assert done <= {t.name.replace(".descriptions.vtt", ".mp4") for t in kept}
    assert not [p.name for p in library.iterdir() if p.name.endswith(".tmp")]
    times = {t: t.stat().st_mtime_ns for t in kept}

    again = _narrate("--cluster", head.address, "--report", str(report), str(library),
                     cache=head.cache)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    data = json.loads(report.read_text())
    assert data["counts"] == {"done": 3 - len(kept), "skipped": len(kept), "failed": 0,
                              "stopped": 0}, err
    assert f"{len(kept)} of the 3 films" in err
    assert {t: t.stat().st_mtime_ns for t in kept} == times  # never redone
    assert len(list(library.glob("*.descriptions.vtt"))) == 3
    assert not list(library.glob("*.auto.descriptions.vtt"))


def test_workers_start_a_cluster_of_this_machine_alone(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    make_clip(library, "one.mp4", seconds=3.0, size="160x120", audio=False)
    make_clip(library, "two.mp4", seconds=3.0, size="160x120", audio=False)
    (library / "readme.txt").write_text("not a film")
    proc = _narrate("--workers", "2", str(library), cache=tmp_path / "cache")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert "1 file in the folder is not a video, so it was skipped: readme.txt." in lines, err
    assert "Preparing 2 films, 2 at once, on a Ray cluster of this machine alone." in lines
    assert any(line.startswith("Finished: 2 prepared, 0 skipped as prepared already, 0 failed")
               for line in lines), err
    assert "Not videos, skipped: readme.txt." in lines
    for name in ("one", "two"):
        assert read_vtt(library / f"{name}.descriptions.vtt").timeline.descriptions


def test_with_a_model_a_film_asks_for_a_share_of_a_gpu(head):
    """The head declares one GPU (Ray's GPUs are resources it counts, so none is needed to
    see what a task asks for and gets); without a model a film asks for none."""
    runner = RayRunner(2, "attached", films_per_gpu=2)
    runner.open()
    with_model = runner.task_options(LibrarySettings(model="smolvlm-256m"))
    assert with_model["num_gpus"] == 0.5
    assert runner.task_options(LibrarySettings())["num_gpus"] == 0.0

    def granted() -> dict:
        return ray.get_runtime_context().get_assigned_resources()

    assert ray.get(ray.remote(**with_model)(granted).remote()) == {"CPU": 1.0, "GPU": 0.5}
    assert "GPU" not in ray.get(ray.remote(**runner.task_options(LibrarySettings()))(
        granted).remote())
