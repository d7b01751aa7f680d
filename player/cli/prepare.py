"""``narrate prepare VIDEO...``: analyse films in advance and write their description tracks.

For each film: every sampled frame through the perception stages, the composer's descriptions
written as a WebVTT track beside the film (so the player finds it and narrates from the first
instant), and the observations cached for "describe now". With ``--model``, the dialogue is
found first and a vision-language model describes a frame for each pause worth filling, in
batches, and names each new person once. Progress is printed as plain lines (every 10 percent,
and at least every few seconds, with the place in the film and the speed), which a screen reader
reads well. A film that is partly unreadable is analysed as far as it can be, said once, and not
cached as if whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.pipeline.config import LOOKAHEAD_FPS
from models.pipeline.offline import FilmJob, Preparer
from player.cli.interrupt import check_stop


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate prepare",
        description="Analyse videos in advance: write a WebVTT description track beside each "
                    "(NAME.descriptions.vtt, or NAME.auto.descriptions.vtt when a track is "
                    "already there) and cache what was seen.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--fps", type=float, default=LOOKAHEAD_FPS,
                   help=f"frames analysed per second (default {LOOKAHEAD_FPS:g})")
    p.add_argument("--vtt", metavar="FILE", help="where to write the track (one video only)")
    p.add_argument("--model", metavar="NAME",
                   help="a vision-language model to describe the pauses with: a name from "
                        "`narrate models list`, a GGUF file or a model folder")
    p.add_argument("--verbosity", type=int, choices=(1, 2, 3), default=2,
                   help="how much the model says in each pause: 1 brief, 2 standard, "
                        "3 detailed")
    return p


def main(argv: list[str]) -> int:
    """``narrate prepare``; Ctrl-C or SIGTERM stop it, keeping the films already done and
    leaving nothing half-written of the one under way."""
    from player.cli.interrupt import interrupted_code, signals_as_interrupt  # noqa: PLC0415

    current: list[str] = []
    try:
        with signals_as_interrupt():
            return _main(argv, current)
    except KeyboardInterrupt as stop:
        print(f"Stopped: {current[-1]} was not finished, so nothing was written for it; the "
              f"films finished before it are kept." if current else "Stopped.",
              file=sys.stderr, flush=True)
        return interrupted_code(stop)


def _main(argv: list[str], current: list[str]) -> int:
    args = parser().parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

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
