"""Describe-now latency of a vision-language model on this CPU, for the SmolVLM-256M-size
architecture with random weights (the compute cost of the trained model, none of its sense),
with the three engines side by side: llama.cpp, transformers and OpenVINO.

Builds the model in a temporary folder (nothing is kept): the GGUF pair for llama.cpp (f32,
Q8_0, Q4_K_M), the transformers folder (float32, 8-bit with torchao) and its OpenVINO forms
converted with ``narrate models convert`` (fp32, int8, int4). Every engine is loaded, then each
run asks every engine in turn about the same frame of the bundled demo (640x360, a different
frame each run), so the engines share whatever else the machine is doing:

- first sentence: a 10-token answer from the frame, start to end (a short first sentence such
  as "A man walks across the street." is about 10 tokens; this is the time from the key to the
  first sound, less the speech engine's start-up);
- first text and whole answer: the first streamed piece and the end of a 30-token answer.

It prints medians of ``--runs`` runs after a warm-up, each engine's speed against transformers
float32 (what the CPU ran before OpenVINO), the OpenVINO image encoder's own median time (so the
first sentence can be compared with what the encoder alone costs), and the peak memory of each
engine, measured in a process of its own (load and one answer).

On the CPU all engines show the model one tile per frame by default (llama.cpp through a
one-tile copy of the projector, models/vlm/projector.py); ``--tiled`` adds the variants that
cut the frame into SmolVLM's tiles (12 and an overview for a 16:9 frame, much slower).

    .venv/bin/python benchmarks/bench_vlm_cpu.py [--runs 5] [--backend all|llama|hf|openvino]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import av  # noqa: E402
import numpy as np  # noqa: E402

from models.vlm import VlmRequest  # noqa: E402

PROMPT = "Describe this picture in one short sentence."
SENTENCE_TOKENS = 10
ANSWER_TOKENS = 30
BASELINE = "transformers float32"


def demo_frames(times: tuple[float, ...] = (2.0, 6.0, 10.0, 14.0)) -> list[np.ndarray]:
    """Frames of the bundled demo at ``times`` seconds, 640x360 RGB."""
    frames: list[np.ndarray] = []
    with av.open(str(ROOT / "assets" / "demo.mp4")) as container:
        for frame in container.decode(video=0):
            if frame.time >= times[len(frames)]:
                frames.append(frame.to_ndarray(width=640, height=360, format="rgb24"))
                if len(frames) == len(times):
                    break
    if not frames:
        raise SystemExit("no frame in the demo clip")
    return frames


def demo_frame(t: float = 6.0) -> np.ndarray:
    return demo_frames((t,))[0]


@dataclass
class Times:
    """One engine's timings, a list entry per run."""

    sentence: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    encoder: list[float] = field(default_factory=list)


def answer_time(engine, image: np.ndarray, tokens: int) -> tuple[float, float]:
    """Seconds to the first streamed piece and to the end of a ``tokens``-token answer."""
    request = VlmRequest(image, PROMPT, max_new_tokens=tokens)
    began = time.perf_counter()
    first = None
    for _piece in engine.stream(request):
        if first is None:
            first = time.perf_counter() - began
    total = time.perf_counter() - began
    return (first if first is not None else total), total


def keep_writing(engine) -> None:
    """Random weights may pick the end token early; make every engine write its full count."""
    if hasattr(engine, "generate_options"):
        engine.generate_options = {"min_new_tokens": ANSWER_TOKENS}
    if hasattr(engine, "min_new_tokens"):
        engine.min_new_tokens = ANSWER_TOKENS


def time_side_by_side(engines: dict, frames: list[np.ndarray], runs: int) -> dict[str, Times]:
    """Each run asks every engine in turn about the same frame; the first run warms up."""
    times = {name: Times() for name in engines}
    for run in range(runs + 1):
        image = frames[run % len(frames)]
        for name, engine in engines.items():
            _, sentence = answer_time(engine, image, SENTENCE_TOKENS)
            first, total = answer_time(engine, image, ANSWER_TOKENS)
            if run == 0:
                continue
            times[name].sentence.append(sentence)
            times[name].first.append(first)
            times[name].total.append(total)
            timing = getattr(engine, "timing", None)
            if timing is not None:
                times[name].encoder.append(timing.encoder)
        print(f"run {run} of {runs} done{' (warm-up)' if run == 0 else ''}", flush=True)
    return times


def build(tmp: Path, backends: set[str], tiled: bool) -> dict[str, tuple[str, list[str]]]:
    """The engines to time, by name: (kind, arguments) for :func:`make_engine`."""
    specs: dict[str, tuple[str, list[str]]] = {}
    # The one-tile projector copy and OpenVINO's compiled models go to a cache left behind.
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    if "llama" in backends:
        from tiny_gguf import build_tiny_gguf  # noqa: PLC0415

        from models.vlm.quantize import quantize_gguf  # noqa: PLC0415

        model, mmproj = build_tiny_gguf(tmp / "gguf", size="smolvlm-256m", preproc=2048)
        files = {"f32": model}
        for kind in ("Q8_0", "Q4_K_M"):
            files[kind] = quantize_gguf(model, kind).path
        for name, path in files.items():
            specs[f"llama.cpp {name}"] = ("llama", [str(path), str(mmproj)])
        if tiled:
            specs["llama.cpp f32 tiled"] = ("llama-tiled", [str(model), str(mmproj)])
    if backends & {"hf", "openvino"}:
        from tiny_vlm import build_tiny_vlm  # noqa: PLC0415

        from models.vlm.hf import HfVlm  # noqa: PLC0415

        # SmolVLM's own processor settings: large frames are cut into 512-pixel tiles.
        folder = build_tiny_vlm(tmp / "hf", size="smolvlm-256m", splitting=True)
        specs[BASELINE] = ("hf", [str(folder)])
        if "hf" in backends:
            if HfVlm(folder, quantize="8bit").problem() == "":
                specs["transformers 8bit, torchao"] = ("hf-8bit", [str(folder)])
            if tiled:
                specs["transformers float32 tiled"] = ("hf-tiled", [str(folder)])
        if "openvino" in backends:
            from models.vlm.openvino_convert import convert  # noqa: PLC0415

            for weights in ("fp32", "int8", "int4"):
                began = time.monotonic()
                done = convert(folder, weights, say=lambda _line: None)
                print(f"converted to OpenVINO {weights} in {time.monotonic() - began:.0f} s, "
                      f"{done.bytes / 2**20:.0f} MB", flush=True)
                specs[f"OpenVINO {weights}"] = ("openvino", [str(done.path)])
    return specs


def make_engine(kind: str, args: list[str]):
    """An engine of ``kind`` (see :func:`build`), not loaded yet."""
    if kind.startswith("llama"):
        from models.vlm.llama import LlamaVlm  # noqa: PLC0415

        return LlamaVlm(args[0], args[1], image_splitting=kind == "llama-tiled" or None)
    if kind.startswith("hf"):
        from models.vlm.hf import HfVlm  # noqa: PLC0415

        return HfVlm(args[0], quantize="8bit" if kind == "hf-8bit" else None,
                     image_splitting=True if kind == "hf-tiled" else None)
    from models.vlm.openvino import OvVlm  # noqa: PLC0415

    return OvVlm(args[0])


def peak_memory(kind: str, args: list[str]) -> int | None:
    """The peak resident memory, in bytes, of a process that loads the engine and answers
    once (None when it fails)."""
    done = subprocess.run([sys.executable, __file__, "--memory-of", json.dumps([kind, args])],
                          capture_output=True, text=True, env=dict(os.environ), timeout=900)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"the memory of {kind} could not be measured: {done.stderr.strip()[-300:]}")
        return None
    return int(lines[-1])


def _measure_memory(spec: str) -> None:
    kind, args = json.loads(spec)
    engine = make_engine(kind, args)
    engine.load()
    keep_writing(engine)
    answer_time(engine, demo_frame(), ANSWER_TOKENS)
    with open("/proc/self/status", encoding="ascii") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(peak * 1024)


def report(times: dict[str, Times], memory: dict[str, int | None], runs: int) -> None:
    med = statistics.median
    base = times.get(BASELINE)
    print()
    print(f"CPU cores: {os.cpu_count()}; SmolVLM-256M-size architecture, random weights, "
          f"640x360 frames, medians of {runs} runs, side by side")
    print(f"first sentence: a {SENTENCE_TOKENS}-token answer; whole answer: {ANSWER_TOKENS} "
          f"tokens; speed: against {BASELINE}")
    for name, t in times.items():
        sentence, total = med(t.sentence), med(t.total)
        speed = (f", {med(base.sentence) / sentence:.2f}x the speed to the first sentence"
                 if base and name != BASELINE else "")
        mem = memory.get(name)
        peak = f", peak memory {mem / 2**20:.0f} MB" if mem else ""
        print(f"{name}: first sentence {sentence:.2f} s, first text {med(t.first):.2f} s, "
              f"whole answer {total:.2f} s{speed}{peak}")
        if t.encoder:
            encoder = med(t.encoder)
            print(f"  {name}: the image encoder alone {encoder:.2f} s, the rest of the first "
                  f"sentence {sentence - encoder:.2f} s ({encoder / sentence:.0%} is the "
                  f"encoder)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", choices=["all", "llama", "hf", "openvino", "both"],
                    default="all", help="both: llama.cpp and transformers")
    ap.add_argument("--tiled", action="store_true", help="also time SmolVLM's own tiling")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak memory")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        _measure_memory(args.memory_of)
        return
    backends = {"all": {"llama", "hf", "openvino"}, "both": {"llama", "hf"}}.get(
        args.backend, {args.backend})
    frames = demo_frames()
    with tempfile.TemporaryDirectory() as tmp:
        specs = build(Path(tmp), backends, args.tiled)
        engines = {name: make_engine(kind, a) for name, (kind, a) in specs.items()}
        for engine in engines.values():
            engine.load()
            keep_writing(engine)
        times = time_side_by_side(engines, frames, args.runs)
        for engine in engines.values():
            engine.close()
        engines.clear()
        memory = {} if args.no_memory else {name: peak_memory(kind, a)
                                             for name, (kind, a) in specs.items()}
        report(times, memory, args.runs)


if __name__ == "__main__":
    main()
