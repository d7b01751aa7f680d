"""``narrate models ...``: list, download, locate and convert the vision-language models.

Output is plain text, one item a line, so that a screen reader reads it well. Errors are one
sentence on standard error. Exit codes: 0 done, 1 failed, 2 wrong usage, 130 stopped with Ctrl+C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.catalog import (
    CATALOG,
    OPENVINO_WEIGHTS,
    ModelError,
    find,
    models_dir,
    openvino_forms,
    read_manifest,
    resolve,
)
from player.cli.interrupt import interrupted_code, signals_as_interrupt


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="narrate models",
        description="List, download and locate the vision-language models that describe scenes.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list the models: size, speed, licence, installed or not")
    pull = sub.add_parser("pull", help="download a model (an interrupted download continues)")
    pull.add_argument("name", help="model name, as shown by: narrate models list")
    path = sub.add_parser("path", help="print the models folder, or a model's files")
    path.add_argument("name", nargs="?", help="model name")
    quant = sub.add_parser(
        "quantize", help="make a smaller, faster copy of a GGUF model you converted yourself")
    quant.add_argument("source", help="the float16 or float32 GGUF language model file")
    quant.add_argument("--type", dest="kind", default="Q4_K_M",
                       help="Q4_K_M (default, about a quarter of float16), Q5_K_M, Q6_K, Q8_0 "
                            "or Q4_0")
    quant.add_argument("--output", help="the file to write (default: beside the source, named "
                                        "after the type)")
    quant.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    conv = sub.add_parser(
        "convert", help="make a faster form of a transformers model for the CPU (OpenVINO)")
    conv.add_argument("model", help="a transformers model: its catalog name or its folder")
    conv.add_argument("--to", required=True, choices=["openvino"],
                      help="the form to make: openvino")
    conv.add_argument("--weights", default="fp32", choices=sorted(OPENVINO_WEIGHTS),
                      help="fp32 (default, as trained), fp16 (half the disk space), int8 "
                           "(half the memory, as fast) or int4 (smallest)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing form")
    return p


def main(argv: list[str]) -> int:
    """Run ``narrate models`` with ``argv`` (the words after ``models``); return the exit code."""
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage or help
        return int(exc.code or 0)
    if args.command is None:
        p.print_help()
        return 2
    try:
        if args.command == "list":
            return _list()
        if args.command == "pull":
            return _pull(args.name)
        if args.command == "quantize":
            return _quantize(args.source, args.kind, args.output, args.overwrite)
        if args.command == "convert":
            return _convert(args.model, args.weights, args.overwrite)
        return _path(args.name)
    except ModelError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file problem not already put into words: still one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"Error: {exc.strerror or exc}{where}; check that the models folder "
              f"{models_dir()} can be written to.", file=sys.stderr)
        return 1


def _quantize(source: str, kind: str, output: str | None, overwrite: bool) -> int:
    from models.vlm.base import VlmError  # noqa: PLC0415
    from models.vlm.quantize import quantize_gguf  # noqa: PLC0415

    print(f"Quantizing {Path(source).name} to {kind}. This can take a few minutes.", flush=True)
    try:
        with signals_as_interrupt():  # SIGTERM stops it as Ctrl-C does
            done = quantize_gguf(source, kind.upper(), output, overwrite=overwrite)
    except VlmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print("Stopped; nothing was written.", file=sys.stderr)
        return interrupted_code(stop)
    print(f"Wrote {done.path}: {done.bytes_after // 2**20} MB, from "
          f"{done.bytes_before // 2**20} MB, in {done.seconds:.0f} seconds. Use it with: "
          f"narrate --model {done.path}")
    return 0


def _convert(name: str, weights: str, overwrite: bool) -> int:
    from models.vlm.base import VlmError  # noqa: PLC0415
    from models.vlm.openvino_convert import convert  # noqa: PLC0415

    model = resolve(name)
    if model.backend != "transformers":
        what = "a GGUF model for llama.cpp" if model.backend == "llama" else "already OpenVINO"
        others = ", ".join(e.name for e in CATALOG if e.backend == "transformers")
        print(f"Error: {model.name} is {what}; convert needs a transformers model folder, "
              f"such as {others}.", file=sys.stderr)
        return 1
    print(f"Converting {model.name} to OpenVINO, {weights} weights. This takes a minute or "
          f"more.", flush=True)
    try:
        with signals_as_interrupt():  # SIGTERM stops it as Ctrl-C does
            done = convert(model.path, weights, overwrite=overwrite,
                           say=lambda line: print(line, flush=True))
    except VlmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print("Stopped; the unfinished copy was removed and the model is as it was.",
              file=sys.stderr)
        return interrupted_code(stop)
    print(f"Wrote {done.path}: {done.bytes // 2**20} MB in {done.seconds:.0f} seconds. On a "
          f"computer without a GPU it is used by itself for {model.name}; to choose it by "
          f"hand: narrate --model {done.path}")
    return 0


def _list() -> int:
    root = models_dir()
    for e in CATALOG:
        state = "installed" if read_manifest(root / e.name) is not None else "not installed"
        form = ""
        if e.backend == "transformers":
            forms = openvino_forms(root / e.name)
            form = (f", OpenVINO form {' and '.join(forms)}" if forms else
                    ", no OpenVINO form (narrate models convert NAME --to openvino)")
        print(f"{e.name}: {state}, about {e.size_mb} MB, {e.speed} on a 2-core processor, "
              f"{e.backend}{form}, licence {e.licence}. {e.description}")
    print(f"Models folder: {root}")
    return 0


def _pull(name: str) -> int:
    from models.download import PullCancelled, pull  # noqa: PLC0415

    entry = find(name)
    if read_manifest(models_dir() / entry.name) is not None:
        print(f"{entry.name} is already installed in {models_dir() / entry.name}")
        return 0
    print(f"Downloading {entry.name} from {entry.repo_id}, about {entry.size_mb} MB.")
    reporter = _PercentReporter()
    try:
        with signals_as_interrupt():  # SIGTERM stops it as Ctrl-C does
            dest = pull(entry, progress=reporter)
    except PullCancelled as exc:
        print(str(exc), file=sys.stderr)
        return 130
    except KeyboardInterrupt as stop:
        print(f"Stopped. Run narrate models pull {entry.name} again to continue the download.",
              file=sys.stderr)
        return interrupted_code(stop)
    print(f"{entry.name} is installed in {dest}")
    return 0


class _PercentReporter:
    """Prints a line at every 10 percent."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        step = min(100, done * 100 // total) // 10 * 10
        if step > self.last:
            self.last = step
            print(f"{step} percent, {done // (1024 * 1024)} of {total // (1024 * 1024)} MB",
                  flush=True)


def _path(name: str | None) -> int:
    if name is None:
        print(models_dir())
        return 0
    folder = models_dir() / find(name).name
    model = read_manifest(folder)
    if model is None:
        raise ModelError(f"The model {name} is not installed; run: narrate models pull {name}")
    for f in model.files:
        print(Path(f))
    return 0
