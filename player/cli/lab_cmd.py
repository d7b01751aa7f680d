"""``narrate lab ...``: the model lab (datasets, comparisons, fine-tuning, searches, MLflow).

Output is plain text, one item a line, for screen readers; progress bars go to standard error.
Errors are one sentence. Exit codes: 0 done, 1 failed, 2 wrong usage, 130 stopped with Ctrl+C
(what was finished is kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from player.cli.interrupt import interrupted_code, signals_as_interrupt

EPILOG = """\
Narrators for compare are MODEL[@key=value,...]: "detector" (the perception stages and the
composer; detector@stages=objects+shots for some stages only), a name from `narrate models
list`, a GGUF file or a model folder. Settings: prompt=standard|brief|detailed|no-context,
max_new_tokens=N, quantize=8bit|4bit (transformers), repetition_penalty=X,
no_repeat_ngram_size=N, stages=A+B (detector).

Runs are kept in MLflow: a local store in your data folder unless MLFLOW_TRACKING_URI names
another store or a server. See them with: narrate lab ui
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate lab", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The model lab: make datasets from described films, compare narrators, "
                    "fine-tune a model and search its settings.")
    tracked = argparse.ArgumentParser(add_help=False)
    tracked.add_argument("--experiment", default=None,
                         help="the MLflow experiment runs go to (default video-narrator-lab)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("dataset", help="make a dataset from described films or captioned "
                                       "pictures")
    d.add_argument("out", help="the new dataset folder")
    d.add_argument("videos", nargs="*", metavar="VIDEO",
                   help="films whose description track (VIDEO.descriptions.vtt or VIDEO.vtt) "
                        "is beside them")
    d.add_argument("--pair", nargs=2, action="append", default=[], metavar=("VIDEO", "TRACK"),
                   help="a film and its WebVTT description track (repeatable)")
    d.add_argument("--coco", metavar="JSON", help="a COCO-style caption file")
    d.add_argument("--images", metavar="FOLDER", help="the pictures the COCO file names")
    d.add_argument("--frames", type=int, default=1, help="frames per cue (default 1)")
    d.add_argument("--pauses", choices=["dialogue", "cue"], default="dialogue",
                   help="a cue's pause: from its start until the dialogue resumes, found as the "
                        "player finds it (dialogue, the default), or the cue's own length (cue)")
    d.add_argument("--test-share", type=float, default=0.2,
                   help="share of the examples kept for testing (default 0.2)")
    d.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")

    c = sub.add_parser("compare", parents=[tracked],
                       help="run several narrators on a dataset and compare them")
    c.add_argument("dataset", help="a dataset folder from narrate lab dataset")
    c.add_argument("narrators", nargs="*", metavar="NARRATOR", help="MODEL[@key=value,...]")
    c.add_argument("--installed", action="store_true",
                   help="also every model installed with narrate models pull")
    c.add_argument("-o", "--out", default="comparison",
                   help="folder for the table and picture (default ./comparison)")
    c.add_argument("--split", default="test", choices=["train", "test"])

    f = sub.add_parser("finetune", parents=[tracked],
                       help="train a LoRA adapter and merge it into a copy")
    f.add_argument("model", help="a transformers model folder or catalog name (SmolVLM, "
                                 "Idefics3)")
    f.add_argument("dataset", help="a dataset folder")
    f.add_argument("-o", "--out", default=None,
                   help="output folder (default: the lab folder, named after the model)")
    f.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    f.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default 16)")
    f.add_argument("--learning-rate", type=float, default=2e-4,
                   help="learning rate (default 0.0002)")
    f.add_argument("--epochs", type=int, default=3, help="passes over the training examples "
                                                         "(default 3)")
    f.add_argument("--prompt", default="standard",
                   choices=["standard", "brief", "detailed", "no-context"],
                   help="the prompt variant trained on (default standard)")
    f.add_argument("--qlora", action="store_true", help="4-bit base model (needs a GPU)")
    f.add_argument("--no-merge", action="store_true", help="keep only the adapter")
    f.add_argument("--no-eval", action="store_true", help="no metrics after each epoch")

    t = sub.add_parser("tune", parents=[tracked],
                       help="search LoRA and decoding settings with Optuna")
    t.add_argument("model", help="a transformers model folder or catalog name")
    t.add_argument("dataset", help="a dataset folder")
    t.add_argument("-o", "--out", default=None, help="folder for the study (default: the lab "
                                                      "folder)")
    t.add_argument("--study", default="narrate-lab", help="study name; run again to resume it")
    t.add_argument("--trials", type=int, default=10,
                   help="trials in all, counting those of an earlier run (default 10)")
    t.add_argument("--latency-budget", type=float, default=3.0, metavar="SECONDS",
                   help="seconds an example a narrator may take without losing score")
    t.add_argument("--max-epochs", type=int, default=3,
                   help="most epochs a trial trains (default 3)")

    u = sub.add_parser("ui", help="start the MLflow interface on 127.0.0.1")
    u.add_argument("--port", type=int, default=5000)
    return p


def main(argv: list[str]) -> int:
    """Run ``narrate lab`` with ``argv`` (the words after ``lab``); return the exit code."""
    from models.lab import LabError  # noqa: PLC0415

    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None:
        p.print_help()
        return 2
    try:
        with signals_as_interrupt():
            return COMMANDS[args.command](args)
    except LabError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print("Stopped; what was finished is kept.", file=sys.stderr)
        return interrupted_code(stop)


def _say(text: str) -> None:
    print(text, flush=True)


def _tracker(args: argparse.Namespace):  # noqa: ANN202
    from models.lab.tracking import DEFAULT_EXPERIMENT, Tracker  # noqa: PLC0415

    return Tracker(getattr(args, "experiment", None) or DEFAULT_EXPERIMENT)


def _dataset(args: argparse.Namespace) -> int:
    from models.lab import LabError  # noqa: PLC0415
    from models.lab.dataset import (  # noqa: PLC0415
        coco_examples,
        track_beside,
        write_dataset,
    )
    from models.lab.progress import bar  # noqa: PLC0415

    out = Path(args.out)
    pairs = [(Path(v), Path(t)) for v, t in args.pair]
    for name in args.videos:
        video = Path(name)
        track = track_beside(video)
        if track is None:
            raise LabError(f"{video.name} has no description track beside it (looked for "
                           f"{video.with_suffix('.descriptions.vtt').name} and "
                           f"{video.with_suffix('.vtt').name}); give one with --pair.")
        pairs.append((video, track))
    if not pairs and not args.coco:
        raise LabError("Give films with description tracks, --pair VIDEO TRACK, or --coco "
                       "with --images.")
    if args.frames < 1:
        raise LabError("--frames must be at least 1.")
    items: list = []
    sources = []
    for video, track in pairs:
        _say(f"Taking frames from {video.name} at the cues of {track.name}.")
        items += _film(video, track, args)
        sources.append(f"{video.name} + {track.name}")
    if args.coco:
        if not args.images:
            raise LabError("--coco needs --images, the folder of its pictures.")
        items += coco_examples(Path(args.coco), Path(args.images), Path("images"))
        sources.append(Path(args.coco).name)
    with bar(len(items), "writing examples") as tick:
        info = write_dataset(out, items, sources, args.test_share, args.seed, tick)
    _say(f"Wrote {out}: {info.counts.get('train', 0)} training and "
         f"{info.counts.get('test', 0)} test examples.")
    return 0


def _film(video: Path, track: Path, args: argparse.Namespace) -> list:
    from models.lab.dataset import film_examples  # noqa: PLC0415
    from models.lab.progress import Bar  # noqa: PLC0415

    with Bar(f"frames of {video.name}") as progress:
        return film_examples(video, track, args.frames, Path("images"), _say, args.pauses,
                             progress)


def _compare(args: argparse.Namespace) -> int:
    from models.lab import LabError  # noqa: PLC0415
    from models.lab.compare import compare  # noqa: PLC0415
    from models.lab.narrators import parse_spec  # noqa: PLC0415

    names = list(args.narrators)
    if args.installed:
        from models.catalog import installed  # noqa: PLC0415

        models = [str(m.model_file or m.path) for m in installed()]  # by path: any model
        names += [n for n in models if n not in names]
    if not names:
        raise LabError("Name the narrators to compare, or give --installed.")
    specs = [parse_spec(s) for s in names]
    tracker = _tracker(args)
    out = Path(args.out)
    compare(Path(args.dataset), specs, out, args.split, tracker, _say)
    _say(f"The table is in {out / 'comparison.md'} and {out / 'comparison.csv'}; the picture "
         f"of quality against latency in {out / 'comparison.png'}. Runs are in MLflow at "
         f"{tracker.uri}.")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from models.lab.finetune import FinetuneOptions, default_out, finetune  # noqa: PLC0415

    options = FinetuneOptions(rank=args.rank, alpha=args.alpha,
                              learning_rate=args.learning_rate, epochs=args.epochs,
                              prompt=args.prompt, qlora=args.qlora, merge=not args.no_merge,
                              evaluate=not args.no_eval)
    out = Path(args.out) if args.out else default_out(args.model)
    result = finetune(args.model, Path(args.dataset), out, options, _tracker(args), say=_say)
    _say(f"The adapter is in {result.adapter}.")
    if result.merged:
        _say(f"The merged model is in {result.merged}; play with it: narrate --model "
             f"{result.merged} VIDEO")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from models.lab.tune import TuneOptions, default_folder, tune  # noqa: PLC0415

    options = TuneOptions(trials=args.trials, study=args.study,
                          latency_budget_s=args.latency_budget, max_epochs=args.max_epochs)
    folder = Path(args.out) if args.out else default_folder()
    result = tune(args.model, Path(args.dataset), folder, options, _tracker(args), say=_say)
    from models.wording import counted  # noqa: PLC0415

    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in result.best_params.items())
    _say(f"Study {args.study}: {counted(result.complete, 'trial')} complete, {result.pruned} "
         f"pruned. Best score {result.best_value:.3f}, with {params}.")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from models.lab.ui import serve  # noqa: PLC0415

    return serve(args.port, _say)


COMMANDS = {"dataset": _dataset, "compare": _compare, "finetune": _finetune, "tune": _tune,
            "ui": _ui}
