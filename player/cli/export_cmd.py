"""``narrate export``: a described copy of a video, and its description track.

The descriptions are placed into the pauses of the dialogue by the same rules the live player
follows (``models.schedule.place``), spoken with the user's voice, and mixed into a new audio
track over the ducked film sound. Messages are plain lines for a screen reader.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from models import Description, read_vtt, write_vtt
from models.schedule import GapMap, Placement, important, place
from models.webvtt import problem_lines
from models.wording import counted
from player.audio.speech import SpeechClip, SpeechEngine, Voice, choose_engine, engine_order
from player.cli.interrupt import check_stop, interrupted_code, signals_as_interrupt
from player.core import settings as settings_store
from player.media.media_check import check_path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate export",
        description="Write a copy of VIDEO with an added audio-description track (the original "
                    "tracks are kept), and or a WebVTT description track with the times the "
                    "descriptions were placed at.")
    p.add_argument("video", help="the video to describe")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the described video to write (.mp4, .m4v, .mov or .mkv)")
    p.add_argument("--vtt", metavar="FILE",
                   help="also write the placed descriptions as WebVTT: each cue starts where "
                        "it is spoken, in a pause of the dialogue, so any player can speak it "
                        "(a track from narrate prepare is not placed yet)")
    p.add_argument("--descriptions", metavar="VTT",
                   help="the description track to use (default: VIDEO.descriptions.vtt or "
                        "VIDEO.vtt)")
    p.add_argument("--verbosity", type=int, choices=[1, 2, 3],
                   help="1 brief, 2 standard, 3 detailed (default: your setting)")
    p.add_argument("--speech-engine", choices=["auto", "pyttsx3", "piper", "espeak-ng"])
    p.add_argument("--duck", type=float, metavar="DB",
                   help="how far the film is lowered under narration, in dB (default: your "
                        "setting, -11)")
    p.add_argument("--language", default="eng", help="language code of the new track")
    p.add_argument("--mode", choices=["duck", "auto", "pause"], default="duck",
                   help="duck (the default): a copy as long as the film, with descriptions "
                        "only in the pauses of the dialogue; auto or pause: an extended copy "
                        "in which the picture holds still while an important description "
                        "(auto) or any description (pause) that finds no pause is said, as "
                        "the player's modes do (needs -o)")
    return p


def synthesize_all(texts: list[str], chain: tuple[SpeechEngine, ...], voice: Voice, folder: Path,
                   say: Callable[[str], None],
                   clock: Callable[[], float] = time.monotonic) -> dict[str, SpeechClip]:
    """Every text to a WAV file, falling back down the engine chain when one fails; progress
    is said every tenth of the work or every ``PROGRESS_EVERY`` seconds."""
    engines = list(chain)
    clips: dict[str, SpeechClip] = {}
    unique = list(dict.fromkeys(texts))
    progress = Progress(len(unique), clock)
    for i, text in enumerate(unique):
        check_stop()
        line = progress.line(i)
        if line:
            say(f"Speaking: {line}")
        while engines:
            try:
                clips[text] = engines[0].synthesize(text, voice, folder / f"d{i}.wav")
                break
            except Exception as exc:  # noqa: BLE001 - any engine failure moves down the chain
                failed = engines.pop(0)
                say(f"{failed.name} failed ({exc}); "
                    + (f"now using {engines[0].name}." if engines else "no voice is left."))
        if not engines:
            break
    return clips


PROGRESS_EVERY = 5.0  # seconds between progress lines at most
SHOWN_LEFT_OUT = 20  # descriptions left out that are named one by one


class Progress:
    """When to say how far a long job has got: at each tenth, and at least every few seconds."""

    def __init__(self, total: int, clock: Callable[[], float]) -> None:
        self.total, self._clock = total, clock
        self._said_tenth, self._said_at = 0, clock()

    def line(self, done: int) -> str:
        """A progress line for ``done`` of ``total`` items done, or "" when it is too soon."""
        tenth = done * 10 // max(self.total, 1)
        now = self._clock()
        if done == 0 or (tenth <= self._said_tenth and now - self._said_at < PROGRESS_EVERY):
            return ""
        self._said_tenth, self._said_at = tenth, now
        return f"{done * 100 // self.total} percent ({done} of {self.total})."


def estimated_seconds(text: str, words_per_minute: int) -> float:
    """A spoken length that the voice is sure not to undercut: the words at a third above the
    speaking rate (voices pause less than the rate implies on short sentences)."""
    return len(text.split()) * 60.0 / (words_per_minute * 4 / 3)


def main(argv: list[str]) -> int:
    """``narrate export``; Ctrl-C or SIGTERM stop it and leave nothing half-written."""
    try:
        with signals_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt as stop:
        print("Export stopped; nothing was written.", file=sys.stderr, flush=True)
        return interrupted_code(stop)


def _main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if not args.output and not args.vtt:
        say("Say what to write: -o OUT for a described video, --vtt FILE for a track, or both.")
        return 2
    video = Path(args.video)
    problem = check_path(video)
    if problem:
        say(problem)
        return 1
    from models.webvtt import find_description_track  # noqa: PLC0415

    track = Path(args.descriptions) if args.descriptions else find_description_track(video)
    if track is None:
        say(f"No description track was found for {video.name}. Give one with --descriptions.")
        return 1
    try:
        result = read_vtt(track)
    except OSError as exc:
        say(str(exc))
        return 1
    for line in problem_lines(track.name, result.problems):
        say(line)
    settings = settings_store.load().settings
    verbosity = args.verbosity or settings.verbosity
    descs = list(result.timeline.for_level(verbosity))
    if not descs:
        say(f"{track.name} has no descriptions at verbosity {verbosity}.")
        return 1

    from models.gaps import GapError, analyse  # noqa: PLC0415

    say(f"Finding the dialogue in {video.name}...")
    try:
        analysis = analyse(video)
    except GapError as exc:
        say(str(exc))
        return 1
    for note in analysis.notes:
        say(note)
    gaps = GapMap()
    gaps.update(analysis.gaps, [(0.0, analysis.duration)], analysis.has_audio, complete=True,
                end=analysis.duration)

    choice = choose_engine(engine_order(args.speech_engine or settings.speech_engine))
    if not choice.chain:
        say("No speech engine works: " + "; ".join(choice.notes))
        return 1
    voice = Voice(settings.voice, settings.speech_rate, settings.speech_volume)
    from models.schedule import short_form  # noqa: PLC0415

    shorts = [short_form(d.text) for d in descs]
    # Only what can be placed is spoken: a first placement with lengths the voice cannot
    # undercut rules out the rest (a track of 100,000 cues on a short film took minutes).
    rate = settings.speech_rate
    if args.mode != "duck" and not args.output:
        say(f"--mode {args.mode} makes a longer copy of the film, so give -o OUT with it.")
        return 2
    rules = dict(mode=args.mode, pauses_a_minute=settings.auto_pauses,
                 important=[important(d.priority, d.level) for d in descs])
    rough = place([d.start for d in descs], [estimated_seconds(d.text, rate) for d in descs],
                  [estimated_seconds(s, rate) if s else None for s in shorts], gaps, **rules)
    left_out = [p for p in rough if not p.placed]
    chosen = [p.index for p in rough if p.placed]
    folder = Path(tempfile.mkdtemp(prefix="narrate-export-"))
    try:
        say(f"Speaking {len(chosen)} of {counted(len(descs), 'description')} with "
            f"{choice.chain[0].name}...")
        texts = [descs[i].text for i in chosen] + [shorts[i] or "" for i in chosen if shorts[i]]
        clips = synthesize_all(texts, choice.chain, voice, folder, say)
        if len(clips) < len({descs[i].text for i in chosen}):
            say("Speech failed, so nothing was written.")
            return 1
        placements = place([descs[i].start for i in chosen],
                           [clips[descs[i].text].duration for i in chosen],
                           [clips[shorts[i] or ""].duration if shorts[i] in clips else None
                            for i in chosen], gaps, mode=args.mode,
                           pauses_a_minute=settings.auto_pauses,
                           important=[rules["important"][i] for i in chosen])
        placed: list[tuple[Description, SpeechClip, float]] = []
        pauses: list[tuple[float, float]] = []  # (film time, seconds) the film is held
        for p in placements:
            index = chosen[p.index]
            d = descs[index]
            if not p.placed:
                left_out.append(replace(p, index=index))
                continue
            text = shorts[index] if p.short else d.text
            start = p.start + sum(held for _t, held in pauses)  # on the copy's clock
            if p.paused:
                pauses.append((p.start, p.duration))
            placed.append((replace(d, start=start, end=start + p.duration, text=text or
                                   d.text), clips[text or d.text], p.speed))
        _say_left_out(sorted(left_out, key=lambda p: p.index), descs, say)
        say(f"Placed {len(placed)} of {counted(len(descs), 'description')} in the pauses."
            + (f" The picture holds still {counted(len(pauses), 'time')} for the others, "
               f"{sum(d for _t, d in pauses):.1f} seconds in all." if pauses else ""))
        if args.vtt:
            write_vtt(args.vtt, [d for d, _c, _s in placed])
            say(f"Wrote the description track {args.vtt}.")
        if args.output:
            code = _export(video, Path(args.output), placed, folder,
                           args.duck if args.duck is not None else settings.duck_db,
                           args.language, say, pauses)
            if code:
                return code
    except OSError as exc:
        say(f"Could not write: {exc}")
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _say_left_out(left_out: list[Placement], descs: list[Description],
                  say: Callable[[str], None]) -> None:
    for p in left_out[:SHOWN_LEFT_OUT]:
        d = descs[p.index]
        say(f"Left out, {p.reason}: at {d.start:.1f} s, {d.text[:200]}")
    if len(left_out) > SHOWN_LEFT_OUT:
        more = len(left_out) - SHOWN_LEFT_OUT
        say(f"{counted(more, 'more description')} {'was' if more == 1 else 'were'} left out.")


def _export(video: Path, out: Path, placed: list[tuple[Description, SpeechClip, float]],
            folder: Path, duck_db: float, language: str, say: Callable[[str], None],
            pauses: list[tuple[float, float]]) -> int:
    from player.media.mux import ExportError, PlacedClip, export_described  # noqa: PLC0415

    clips = []
    for i, (desc, clip, speed) in enumerate(placed):
        path = clip.path
        if abs(speed - 1.0) > 0.01:
            path = _faster(clip.path, speed, folder / f"fast{i}.wav")
        clips.append(PlacedClip(desc.start, path, clip.duration / speed, desc.text))
    shown = [0]

    def progress(fraction: float) -> None:
        tenth = int(fraction * 10)
        if tenth > shown[0]:
            shown[0] = tenth
            say(f"Exporting: {tenth * 10} percent.")

    try:
        result = export_described(video, clips, out, duck_db=duck_db, language=language,
                                  progress=progress, pauses=pauses)
    except ExportError as exc:
        say(str(exc))
        return 1
    say(f"Wrote {result.path} with {counted(result.clips, 'description')} in a new "
        f"audio-description track ({counted(result.audio_streams, 'audio track')} in all).")
    return 0


def _faster(src: Path, speed: float, out: Path) -> Path:
    import subprocess  # noqa: PLC0415

    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
                    "-filter:a", f"atempo={speed:.4f}", str(out)], check=True, timeout=60)
    return out
