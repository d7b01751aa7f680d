"""A library of films without a cluster: finding the films in folders, the progress line, the
report, a read-only track folder, a folder prepared in this process (no Ray), a cluster address
with nothing behind it, and ``narrate doctor`` on Ray."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.library.film import output_problem, place_in, prepared_track
from models.library.films import find_films
from models.library.job import FilmOutcome, LibrarySettings
from models.library.library import LibraryRun
from models.library.local import LocalRunner
from models.library.progress import LibraryProgress, time_left
from models.library.report import LibraryReport
from tests.media import make_clip

ROOT = Path(__file__).resolve().parent.parent


def _narrate(*args: str, tmp_path: Path, code: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    cmd = ([sys.executable, "-c", code, *args] if code else
           [sys.executable, "-m", "player.cli", *args])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_films_are_found_in_folders_and_sub_folders_and_the_rest_is_listed(tmp_path):
    top = tmp_path / "library"
    (top / "b-series" / "season 2").mkdir(parents=True)
    (top / ".hidden").mkdir()
    for path in ("z.mp4", "A.MKV", "b-series/e1.webm", "b-series/season 2/e2.mov",
                 "notes.txt", "b-series/poster.jpg", "z.descriptions.vtt", ".DS_Store",
                 ".hidden/secret.mp4"):
        (top / path).write_bytes(b"x")
    single = tmp_path / "single.bin"  # named on its own: taken as a film, checked later
    single.write_bytes(b"x")

    found = find_films([top, single, top / "z.mp4"])

    assert [p.relative_to(tmp_path).as_posix() for p in found.films] == [
        "library/A.MKV", "library/z.mp4", "library/b-series/e1.webm",
        "library/b-series/season 2/e2.mov", "single.bin"]
    assert sorted(p.name for p in found.not_films) == ["notes.txt", "poster.jpg"]
    assert found.message() == ("2 files in the folder are not videos, so they were skipped: "
                               "notes.txt, poster.jpg.")


def test_the_progress_line_counts_films_minutes_speed_and_time_left():
    now = [0.0]
    out = io.StringIO()
    progress = LibraryProgress({"/a.mp4": 600.0, "/b.mp4": 1200.0, "/c.mp4": 300.0}, out,
                               every=15.0, clock=lambda: now[0])
    now[0] = 60.0
    progress.position("/a.mp4", 300.0, 600.0)  # 5 minutes of film in 1 minute
    assert out.getvalue().splitlines() == [
        "Library: 0 of 3 films, 5.0 of 35 minutes of film analysed, 5.0 minutes of film a "
        "minute, about 6 minutes left."]
    now[0] = 70.0
    progress.position("/a.mp4", 350.0, 600.0)  # under 15 s since the last line: nothing said
    assert len(out.getvalue().splitlines()) == 1
    now[0] = 120.0
    progress.film_done(FilmOutcome("/a.mp4", "done", descriptions=12, duration=600.0,
                                   seconds=110.0))
    progress.film_done(FilmOutcome("/c.mp4", "failed", "c.mp4 could not be read: it is "
                                                        "damaged."))
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "a.mp4: done, 12 descriptions, 10 minutes of film in 110 seconds.",
        "Library: 1 of 3 films, 10 of 35 minutes of film analysed, 5.0 minutes of film a "
        "minute, about 5 minutes left.",
        "c.mp4 could not be read: it is damaged.",
        # the failed film's minutes are no longer to do
        "Library: 2 of 3 films, 10 of 30 minutes of film analysed, 5.0 minutes of film a "
        "minute, about 4 minutes left."]
    assert "\r" not in out.getvalue()  # plain lines when it is not a terminal
    assert (time_left(30), time_left(3 * 3600 + 60)) == ("less than a minute left",
                                                        "about 3 hours 1 minute left")
    assert place_in("film.mp4: 30 percent (1:02:03 of 2:00:00), 4.0 times real time.",
                    "film.mp4") == (3723.0, 7200.0)
    assert place_in("Finding the dialogue in film.mp4: 30 percent (0:03 of 0:10).",
                    "film.mp4") is None


def test_on_a_terminal_the_bar_is_redrawn_in_place():
    now = [0.0]
    out = io.StringIO()
    progress = LibraryProgress({"/a.mp4": 60.0, "/b.mp4": 60.0}, out, terminal=True,
                               clock=lambda: now[0])
    now[0] = 30.0
    progress.position("/a.mp4", 30.0, 60.0)
    progress.film_done(FilmOutcome("/a.mp4", "done", duration=60.0, seconds=30.0))
    progress.close()
    text = out.getvalue()
    assert text.startswith("[#####---------------] Library: 0 of 2 films")
    assert "\r\033[Ka.mp4: done, 0 descriptions, 1.0 minutes of film in 30 seconds.\n" in text
    assert "[##########----------] Library: 1 of 2 films" in text and text.endswith("\n")


def test_the_report_summary_and_json():
    report = LibraryReport(
        (FilmOutcome("/l/a.mp4", "done", track="/l/a.descriptions.vtt", descriptions=3,
                     duration=90.0, seconds=30.0, attempts=2, worker="node1"),
         FilmOutcome("/l/b.mp4", "skipped", "it was prepared already"),
         FilmOutcome("/l/c.mp4", "failed", "c.mp4 could not be read: it is damaged."),
         FilmOutcome("/l/d.mp4", "stopped", "It was under way, so nothing was written "
                                            "for it.")),
        ("/l/notes.txt",), seconds=120.0, workers=2, cluster="local", stopped=True)
    assert report.summary() == [
        "Stopped: 1 prepared, 1 skipped as prepared already, 1 failed, 1 stopped; 1.5 minutes "
        "of film analysed in 2.0 minutes.",
        "Failed: c.mp4 could not be read: it is damaged.",
        "Stopped: d.mp4. It was under way, so nothing was written for it.",
        "Not videos, skipped: notes.txt."]
    data = report.to_dict()
    assert data["counts"] == {"done": 1, "skipped": 1, "failed": 1, "stopped": 1}
    assert data["films"][0]["attempts"] == 2 and data["films"][0]["worker"] == "node1"
    assert not report.ok


def _read_only(folder: Path) -> None:
    """Make ``folder`` read-only for this process: by its mode, or (as root, whom modes do not
    stop) by a read-only bind mount of it over itself."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    done = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    done = done.returncode == 0 and subprocess.run(
        ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode == 0
    if not done:
        pytest.skip("running as root without mount: no folder can be made read-only here")


def test_a_folder_without_workers_is_prepared_here_without_ray_and_a_read_only_folder_reported(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    library = tmp_path / "library"
    locked = library / "locked"
    locked.mkdir(parents=True)
    make_clip(library, "open.mp4", seconds=3.0, size="160x120", audio=False)
    make_clip(locked, "shut.mp4", seconds=2.0, size="160x120", audio=False)
    settings = LibrarySettings(stages=("shots",), keep_partial=True)
    lines: list[str] = []
    _read_only(locked)
    try:
        assert output_problem(locked / "shut.mp4", settings) == \
            f"The folder {locked} is read-only, so the track of shut.mp4 cannot be written."
        out = io.StringIO()
        run = LibraryRun(settings, LocalRunner(), LibraryProgress({}, out), lines=lines.append)
        report = run.run(find_films([library]))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(locked)], capture_output=True)
        locked.chmod(0o755)
    states = {Path(o.video).name: (o.state, o.reason) for o in report.outcomes}
    assert states == {"open.mp4": ("done", ""), "shut.mp4": (
        "failed", f"The folder {locked} is read-only, so the track of shut.mp4 cannot be "
                  f"written.")}
    assert "open.mp4: 100 percent." in " ".join(lines)  # the film's own lines, as before
    assert prepared_track(library / "open.mp4", settings) == library / "open.descriptions.vtt"


def test_plain_prepare_and_a_folder_need_no_ray_and_workers_without_it_say_how_to_get_it(
        tmp_path):
    """Ray hidden from the import system, as on a machine without the [cluster] extra."""
    films = tmp_path / "films"
    films.mkdir()
    make_clip(films, "one.mp4", seconds=2.0, size="160x120", audio=False)
    (films / "notes.txt").write_text("no film")
    no_ray = ("import sys; sys.modules['ray'] = None; from player.cli.prepare import main; "
              "code = main(sys.argv[1:]); assert 'ray' not in [m.split('.')[0] for m in "
              "sys.modules if sys.modules[m] is not None], 'Ray was imported'; sys.exit(code)")
    plain = _narrate(str(films), "--report", str(tmp_path / "r.json"), tmp_path=tmp_path,
                     code=no_ray)
    assert plain.returncode == 0, plain.stderr
    assert "1 file in the folder is not a video, so it was skipped: notes.txt." in plain.stderr
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["done"] == 1
    assert (films / "one.descriptions.vtt").exists()
    clustered = _narrate("--workers", "2", str(films), tmp_path=tmp_path, code=no_ray)
    assert clustered.returncode == 1
    assert clustered.stderr.strip().splitlines()[-1] == (
        "Ray is not installed, so --workers and --cluster cannot be used "
        "(pip install 'video-narrator[cluster]').")


def test_a_cluster_address_with_nothing_behind_it_is_one_sentence(tmp_path):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clip = make_clip(tmp_path, "one.mp4", seconds=2.0, size="160x120", audio=False)
    result = _narrate("prepare", "--cluster", f"127.0.0.1:{port}", str(clip),
                      tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"No Ray cluster answers at 127.0.0.1:{port}: start one there with `ray start "
        f"--head`, or leave out --cluster to use this machine alone."]
    assert not (tmp_path / "one.descriptions.vtt").exists()


def test_doctor_says_whether_ray_is_installed():
    from player.cli.doctor import CHECKS, _ray_check

    check = _ray_check()
    assert _ray_check in CHECKS
    import ray

    assert check.ok and check.detail == f"version {ray.__version__}" and not check.required
