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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from models import Description, read_vtt, write_vtt
from models.schedule import GapMap, place
from player import settings as settings_store
from player.media_check import check_path
from player.speech import SpeechClip, SpeechEngine, Voice, choose_engine, engine_order


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate export",
        description="Write a copy of VIDEO with an added audio-description track (the original "
                    "tracks are kept), and or a WebVTT description track with the times the "
                    "descriptions were placed at.")
    p.add_argument("video", help="the video to describe")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the described video to write (.mp4, .m4v, .mov or .mkv)")
    p.add_argument("--vtt", metavar="FILE", help="also write the placed descriptions as WebVTT")
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
    return p


def synthesize_all(texts: list[str], chain: tuple[SpeechEngine, ...], voice: Voice, folder: Path,
                   say: Callable[[str], None]) -> dict[str, SpeechClip]:
    """Every text to a WAV file, falling back down the engine chain when one fails."""
    engines = list(chain)
    clips: dict[str, SpeechClip] = {}
    for i, text in enumerate(dict.fromkeys(texts)):
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


def main(argv: list[str]) -> int:
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
    from player.controller import find_description_track  # noqa: PLC0415

    track = Path(args.descriptions) if args.descriptions else find_description_track(video)
    if track is None:
        say(f"No description track was found for {video.name}. Give one with --descriptions.")
        return 1
    try:
        result = read_vtt(track)
    except OSError as exc:
        say(str(exc))
        return 1
    for p in result.problems:
        say(f"{track.name}, {p}")
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
    gaps.update(analysis.gaps, [(0.0, analysis.duration)], analysis.has_audio, complete=True)

    choice = choose_engine(engine_order(args.speech_engine or settings.speech_engine))
    if not choice.chain:
        say("No speech engine works: " + "; ".join(choice.notes))
        return 1
    voice = Voice(settings.voice, settings.speech_rate, settings.speech_volume)
    from player.narration import Narrator  # noqa: PLC0415

    shorts = [Narrator.short_text(d.text) for d in descs]
    folder = Path(tempfile.mkdtemp(prefix="narrate-export-"))
    try:
        say(f"Speaking {len(descs)} descriptions with {choice.chain[0].name}...")
        clips = synthesize_all([d.text for d in descs] + [s for s in shorts if s], choice.chain,
                               voice, folder, say)
        if len(clips) < len({d.text for d in descs}):
            say("Speech failed, so nothing was written.")
            return 1
        placements = place([d.start for d in descs], [clips[d.text].duration for d in descs],
                           [clips[s].duration if s and s in clips else None for s in shorts],
                           gaps)
        placed: list[tuple[Description, SpeechClip, float]] = []
        for p in placements:
            d = descs[p.index]
            if not p.placed:
                say(f"Left out, {p.reason}: at {d.start:.1f} s, {d.text}")
                continue
            text = shorts[p.index] if p.short else d.text
            placed.append((replace(d, start=p.start, end=p.start + p.duration, text=text or
                                   d.text), clips[text or d.text], p.speed))
        say(f"Placed {len(placed)} of {len(descs)} descriptions in the pauses.")
        if args.vtt:
            write_vtt(args.vtt, [d for d, _c, _s in placed])
            say(f"Wrote the description track {args.vtt}.")
        if args.output:
            code = _export(video, Path(args.output), placed, folder,
                           args.duck if args.duck is not None else settings.duck_db,
                           args.language, say)
            if code:
                return code
    except OSError as exc:
        say(f"Could not write: {exc}")
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _export(video: Path, out: Path, placed: list[tuple[Description, SpeechClip, float]],
            folder: Path, duck_db: float, language: str, say: Callable[[str], None]) -> int:
    from player.export import ExportError, PlacedClip, export_described  # noqa: PLC0415

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
                                  progress=progress)
    except ExportError as exc:
        say(str(exc))
        return 1
    say(f"Wrote {result.path} with {result.clips} descriptions in a new audio-description "
        f"track ({result.audio_streams} audio tracks in all).")
    return 0


def _faster(src: Path, speed: float, out: Path) -> Path:
    import subprocess  # noqa: PLC0415

    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
                    "-filter:a", f"atempo={speed:.4f}", str(out)], check=True, timeout=60)
    return out
