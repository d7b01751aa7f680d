"""``narrate prepare VIDEO...``: analyse films in advance and write their description tracks.

For each film: every sampled frame through the perception stages, the composer's descriptions
written as a WebVTT track beside the film (so the player finds it and narrates from the first
instant), and the observations cached for "describe now". With ``--model``, the dialogue is
found first and a vision-language model describes a frame for each pause worth filling, in
batches, and names each new person once. Progress is printed as plain lines (every 10 percent,
and at least every few seconds, with the place in the film and the speed), which a screen reader
reads well. A film that is partly unreadable is analysed as far as it can be, said once, and not
cached as if whole.

A folder stands for every video in it and its sub-folders (other files are listed and skipped).
With a folder, ``--workers``, ``--cluster`` or ``--report`` the films are a library
(models/library): films whose track and analysis are complete already are skipped, the
progress is said for the library as a whole, and a summary (and a JSON report) ends the run.
``--workers N`` prepares N films at once as Ray tasks, on a cluster of this machine alone or,
with ``--cluster`` (or RAY_ADDRESS), on one started with ``ray start --head``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.pipeline.config import LOOKAHEAD_FPS
from models.pipeline.offline import FilmJob, Preparer
from player.cli.interrupt import check_stop

if TYPE_CHECKING:
    from models.library.cluster import RayRunner


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate prepare",
        description="Analyse videos in advance: write a WebVTT description track beside each "
                    "(NAME.descriptions.vtt, or NAME.auto.descriptions.vtt when a track is "
                    "already there) and cache what was seen.")
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="video files, or folders: every video in them and their sub-folders")
    p.add_argument("--fps", type=float, default=LOOKAHEAD_FPS,
                   help=f"frames analysed per second (default {LOOKAHEAD_FPS:g})")
    p.add_argument("--vtt", metavar="FILE", help="where to write the track (one video only)")
    p.add_argument("--model", metavar="NAME",
                   help="a vision-language model to describe the pauses with: a name from "
                        "`narrate models list`, a GGUF file or a model folder")
    p.add_argument("--verbosity", type=int, choices=(1, 2, 3), default=2,
                   help="how much the model says in each pause: 1 brief, 2 standard, "
                        "3 detailed")
    lib = p.add_argument_group(
        "a library of videos", "With a folder, --workers, --cluster or --report the videos "
        "are a library: films whose track and analysis are complete already are skipped, the "
        "progress is said for the whole library, and a summary ends the run.")
    lib.add_argument("--workers", type=int, metavar="N",
                     help="prepare N films at once as Ray tasks, on a cluster of this machine "
                          "alone that the command starts and stops (pip install "
                          "'video-narrator[cluster]')")
    lib.add_argument("--cluster", metavar="ADDRESS",
                     help="use the Ray cluster at ADDRESS (host:port of `ray start --head`, or "
                          "auto); RAY_ADDRESS is used when --workers is given without it")
    lib.add_argument("--report", metavar="FILE", help="write a JSON report of every film")
    lib.add_argument("--retries", type=int, default=3, metavar="N",
                     help="times a film is tried again when its worker dies (default 3)")
    lib.add_argument("--hang-limit", type=float, default=10.0, metavar="MINUTES",
                     help="stop a film whose analysis makes no progress for this long, as when "
                          "its decoder hangs (default 10, at least 0.5; with --workers or --cluster)")
    lib.add_argument("--films-per-gpu", type=int, default=1, metavar="N",
                     help="with --model on GPUs: how many films share one GPU (default 1)")
    return p


def _library_wanted(args: argparse.Namespace) -> bool:
    return bool(args.workers or args.cluster or args.report
                or any(os.path.isdir(v) for v in args.videos))


LIBRARY = "the library"
"""What ``current`` holds while a library is under way."""


def main(argv: list[str]) -> int:
    """``narrate prepare``; Ctrl-C or SIGTERM stop it, keeping the films already done and
    leaving nothing half-written of the one under way."""
    from player.cli.interrupt import interrupted_code, signals_as_interrupt  # noqa: PLC0415

    current: list[str] = []
    try:
        with signals_as_interrupt():
            return _main(argv, current)
    except KeyboardInterrupt as stop:
        if current == [LIBRARY]:
            text = ("Stopped: the films under way were not finished, so nothing was written "
                    "for them; the films finished before are kept.")
        elif current:
            text = (f"Stopped: {current[-1]} was not finished, so nothing was written for it; "
                    f"the films finished before it are kept.")
        else:
            text = "Stopped."
        print(text, file=sys.stderr, flush=True)
        return interrupted_code(stop)


def _main(argv: list[str], current: list[str]) -> int:
    args = parser().parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.workers is not None and args.workers < 1:
        say("--workers needs a number of films at once, 1 or more.")
        return 2
    if _library_wanted(args):
        current.append(LIBRARY)
        return _library(args, say)
    if args.vtt and len(args.videos) > 1:
        say("--vtt names one file, so give one video with it.")
        return 2
    preparer = Preparer(say, args.model or "", args.verbosity, check_stop=check_stop)
    try:
        if preparer.problem:
            if not preparer.model or preparer.engine is not None:
                say(preparer.problem)  # a model that failed to load said why already
            return 1
        failed = 0
        for name in args.videos:
            current.append(Path(name).name)
            report = preparer.run(FilmJob(Path(name), Path(args.vtt) if args.vtt else None,
                                          args.fps))
            current.pop()
            failed += not report.ok
        return 1 if failed else 0
    finally:
        preparer.close()


def _library(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """The films as a library: in this process, or as Ray tasks with --workers or --cluster."""
    from models.library.cluster import ClusterError  # noqa: PLC0415 - Ray itself is not imported
    from models.library.films import find_films  # noqa: PLC0415
    from models.library.job import LibrarySettings  # noqa: PLC0415
    from models.library.library import LibraryRun  # noqa: PLC0415
    from models.library.progress import LibraryProgress  # noqa: PLC0415

    found = find_films(args.videos)
    for problem in found.problems:
        say(problem)
    if found.message():
        say(found.message())
    if not found.films:
        say("No videos were found there, so there is nothing to prepare.")
        return 1
    if args.vtt and len(found.films) > 1:
        say("--vtt names one file, so give one video with it.")
        return 2
    address = args.cluster or (os.environ.get("RAY_ADDRESS", "") if args.workers else "")
    clustered = bool(args.workers or address)
    settings = LibrarySettings(
        fps=args.fps, model=args.model or "", verbosity=args.verbosity, out=args.vtt or "",
        # a cluster of this machine alone shares this process's cache; on a cluster of
        # several, each worker's own settings say where the shared cache is
        cache_home=os.environ.get("XDG_CACHE_HOME", "") if not address else "")
    runner = _runner(args, address) if clustered else None
    if isinstance(runner, str):
        say(runner)
        return 1
    stream = sys.stderr
    progress = LibraryProgress({}, stream, terminal=stream.isatty())
    if runner is None:
        from models.library.local import LocalRunner  # noqa: PLC0415

        run = LibraryRun(settings, LocalRunner(check_stop), progress, lines=progress.say)
    else:
        runner.announce = progress.say
        run = LibraryRun(settings, runner, progress)
    try:
        report = run.run(found)
    except ClusterError as exc:
        say(str(exc))
        return 1
    finally:
        if runner is not None:
            runner.close()
        done = run.report
        if done is not None:
            for line in done.summary():
                say(line)
            if args.report:
                problem = done.write(Path(args.report))
                say(problem or f"The report is in {args.report}.")
    return 0 if report.ok else 1


def _runner(args: argparse.Namespace, address: str) -> RayRunner | str:
    """The Ray runner, opened; a sentence saying why not when it cannot be."""
    from models.library.cluster import ClusterError, RayRunner  # noqa: PLC0415

    runner = RayRunner(args.workers or 0, address, retries=max(0, args.retries),
                       hang_limit=max(30.0, args.hang_limit * 60),
                       films_per_gpu=max(1, args.films_per_gpu), check_stop=check_stop)
    try:
        runner.check()  # the cluster itself is started or joined when a film needs it
    except ClusterError as exc:
        return str(exc)
    return runner
