"""The ``narrate`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from player import __version__

EPILOG = """\
Commands:
  narrate doctor      report what is installed and working, with a fix for each missing part
  narrate models list | pull NAME | path [NAME] | quantize FILE [--type Q4_K_M] |
                 convert MODEL --to openvino [--weights int8|int4]
                      the vision-language models that can be downloaded, where they go,
                      smaller copies of a GGUF model you converted yourself, and a faster
                      form for the processor (OpenVINO)
  narrate prepare VIDEO|FOLDER... [--workers N | --cluster ADDRESS] [--report FILE]
                      analyse videos in advance and write a description track beside each
                      (not yet placed: this player fits it into the pauses as it plays);
                      whole libraries on several processes or a Ray cluster
  narrate lab dataset | compare | finetune | tune | ui
                      the model lab: datasets from described films, narrators compared,
                      fine-tuning and searches, tracked with MLflow (see: narrate lab --help)
  narrate export VIDEO -o OUT [--vtt FILE]
                      write a copy of VIDEO with an added audio-description track, and/or
                      the descriptions as placed in the pauses, a track any player can speak
                      at its cues' start times (see: narrate export --help)

Keys: press F1 in the player, or run: narrate --keys

Examples:
  narrate                        play the bundled demo with narration
  narrate movie.mp4              play a film; a description track movie.vtt beside it is used
  narrate --no-gui movie.mp4     play in the terminal, printing each description
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate",
        description="Video Narrator: a video player that describes what is on screen, in the "
                    "pauses between dialogue.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="video file to play (default: the bundled demo)")
    p.add_argument("--descriptions", metavar="VTT",
                   help="a WebVTT description track to speak (default: VIDEO.descriptions.vtt "
                        "or VIDEO.vtt beside the video)")
    p.add_argument("--no-gui", action="store_true",
                   help="terminal mode: play and narrate in the terminal (automatic without a "
                        "display)")
    p.add_argument("--mode", choices=["auto", "duck", "pause"],
                   help="lower the film under narration in the pauses of the dialogue and pause "
                        "it briefly for what matters (auto, the default), only lower it (duck), "
                        "or pause it whenever a description does not fit (pause)")
    p.add_argument("--verbosity", type=int, choices=[1, 2, 3],
                   help="1 brief, 2 standard, 3 detailed")
    p.add_argument("--speech", choices=["voice", "screen_reader", "both"],
                   help="speak with the narrator's voice, send text to the screen reader, or both")
    p.add_argument("--speech-engine", choices=["auto", "pyttsx3", "piper", "espeak-ng"],
                   help="the narrator's voice: espeak-ng (auto, pyttsx3, espeak-ng) or the "
                        "natural piper voice")
    p.add_argument("--no-narration", action="store_true", help="start with narration off")
    p.add_argument("--model", metavar="NAME_OR_PATH",
                   help="a vision-language model that describes the pauses, describe now and "
                        "questions: a name from `narrate models list` or a GGUF file or model "
                        "folder")
    p.add_argument("--no-analysis", action="store_true",
                   help="no live scene analysis: speak only description tracks")
    p.add_argument("--no-wait", action="store_true",
                   help="start a film at once; otherwise, on a first viewing, it waits (at most "
                        "15 seconds) for live analysis to look at its opening")
    p.add_argument("--vo", help="mpv video output for the film (for example gpu, x11, null, tct)")
    p.add_argument("--ao", help="mpv audio output for the film (for example pulse, alsa, null)")
    p.add_argument("--speech-ao", help="mpv audio output for narration speech")
    p.add_argument("--mpv", action="append", default=[], metavar="OPTION=VALUE",
                   help="pass an option to the film's mpv, for example "
                        "--mpv input-ipc-server=/tmp/mpv.sock (repeatable)")
    p.add_argument("--quit-after", type=float, default=0.0, metavar="SECONDS",
                   help="quit after this many seconds (for demonstrations and scripts)")
    p.add_argument("--record", metavar="FILE",
                   help="on quitting, write what was spoken and when (and what was left out "
                        "and why) to FILE as JSON")
    p.add_argument("--keys", action="store_true", help="print the keyboard commands and exit")
    p.add_argument("--log-level", default=os.environ.get("NARRATE_LOG", "WARNING"),
                   help="logging level (default WARNING)")
    p.add_argument("--version", action="version", version=f"narrate {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["models"] and not Path("models").is_file():
        from player.cli import models_cmd  # noqa: PLC0415

        return models_cmd.main(argv[1:])
    if argv[:1] == ["prepare"] and not Path("prepare").exists():
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from models.cache import cache_dir  # noqa: PLC0415
        from player.cli.native_log import divert_native_stderr  # noqa: PLC0415
        from player.cli.prepare import main as prepare_main  # noqa: PLC0415

        divert_native_stderr(cache_dir() / "prepare-native.log")  # only progress is read out

        return prepare_main(argv[1:])
    if argv[:1] == ["export"] and not Path("export").exists():
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from player.cli.export_cmd import main as export_main  # noqa: PLC0415

        return export_main(argv[1:])
    if argv[:1] == ["lab"] and not Path("lab").exists():
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from player.cli.lab_cmd import main as lab_main  # noqa: PLC0415

        return lab_main(argv[1:])
    if argv[:1] == ["doctor"] and not Path("doctor").exists():
        from player.cli.doctor import main as doctor_main  # noqa: PLC0415

        return doctor_main()
    args = parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    if args.keys:
        from player.core.commands import help_text  # noqa: PLC0415

        print(help_text())
        return 0
    from player.app import LaunchOptions, demo_path, has_display, run_gui, run_terminal  # noqa: PLC0415

    video = args.video
    if video is None:
        demo = demo_path()
        if demo is None:
            print("The bundled demo clip was not found. Give a video file: narrate VIDEO",
                  file=sys.stderr)
            return 2
        video = str(demo)
    overrides: dict[str, object] = {}
    if args.mode:
        overrides["mode"] = args.mode
    if args.verbosity:
        overrides["verbosity"] = args.verbosity
    if args.speech:
        overrides["speech_output"] = args.speech
    if args.speech_engine:
        overrides["speech_engine"] = args.speech_engine
    if args.model:
        overrides["vlm_model"] = args.model
    if args.no_analysis:
        overrides["live_analysis"] = False
    if args.no_wait:
        overrides["wait_for_narrator"] = False
    if args.no_narration:
        overrides["narration"] = False
    film = {k: v for k, v in (("vo", args.vo), ("ao", args.ao)) if v}
    for item in args.mpv:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"--mpv needs OPTION=VALUE, not {item!r}", file=sys.stderr)
            return 2
        film[key.strip()] = value
    speech = {"ao": args.speech_ao} if args.speech_ao else {}
    opts = LaunchOptions(video=video, descriptions=args.descriptions, gui=not args.no_gui,
                         film_options=film, speech_options=speech, overrides=overrides,
                         quit_after=args.quit_after, record=args.record)
    if opts.gui and not has_display():
        from player.ui.display import screen_problem  # noqa: PLC0415

        problem = screen_problem() or "no display found"
        print(f"{problem[0].upper()}{problem[1:]}: starting in terminal mode.", file=sys.stderr)
        opts.gui = False
    return run_gui(opts) if opts.gui else run_terminal(opts)


if __name__ == "__main__":
    raise SystemExit(main())
