"""Describe-now latency of a vision-language model on this CPU, for the SmolVLM-256M-size
architecture with random weights (the compute cost of the trained model, none of its sense).

Builds the model in a temporary folder (nothing is kept), in both backends, and times
"image in, 30 tokens out" on a 640x360 frame of the bundled demo: time to the first text and
in total, median of 5 runs after a warm-up, the variants of each backend side by side (each run
times every variant once, in turn): llama.cpp f32, Q8_0 and Q4_K_M, and f32 with the projector's own tiling;
transformers float32, 8-bit (torchao), and float32 with SmolVLM's own tiling of large frames.
On the CPU both engines show the model one tile per frame by default (llama.cpp through a
one-tile copy of the projector, models/vlm/projector.py); the projector here is written as
real SmolVLM files ship it (longest edge 2048 pixels: a 16:9 frame is 12 tiles and an
overview when tiled).

    .venv/bin/python benchmarks/bench_vlm_cpu.py [--runs 5] [--backend llama|hf|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import av  # noqa: E402
import numpy as np  # noqa: E402

from models.vlm import VlmRequest  # noqa: E402


def demo_frame(t: float = 6.0) -> np.ndarray:
    with av.open(str(ROOT / "assets" / "demo.mp4")) as container:
        for frame in container.decode(video=0):
            if frame.time >= t:
                return frame.to_ndarray(width=640, height=360, format="rgb24")
    raise SystemExit("no frame")


def time_engine(engine, image: np.ndarray, runs: int,
                warmup: int = 1) -> tuple[list[float], list[float]]:
    """Time ``runs`` answers after ``warmup`` untimed ones."""
    request = VlmRequest(image, "Describe this picture in one short sentence.",
                         max_new_tokens=30)
    firsts, totals = [], []
    for i in range(runs + warmup):
        began = time.perf_counter()
        first = None
        for _piece in engine.stream(request):
            if first is None:
                first = time.perf_counter() - began
        total = time.perf_counter() - began
        if i >= warmup:
            firsts.append(first if first is not None else total)
            totals.append(total)
    return firsts, totals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", choices=["llama", "hf", "both"], default="both")
    args = ap.parse_args()
    image = demo_frame()
    print(f"CPU cores: {os.cpu_count()}; SmolVLM-256M-size architecture, random weights, "
          f"640x360 frame, 30 tokens, median of {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("llama", "both"):
            from tiny_gguf import build_tiny_gguf  # noqa: PLC0415

            from models.vlm.llama import LlamaVlm  # noqa: PLC0415
            from models.vlm.quantize import quantize_gguf  # noqa: PLC0415

            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # the one-tile copy
            model, mmproj = build_tiny_gguf(Path(tmp) / "gguf", size="smolvlm-256m",
                                            preproc=2048)
            files = {"f32": model}
            for kind in ("Q8_0", "Q4_K_M"):
                files[kind] = quantize_gguf(model, kind).path
            engines = {name: LlamaVlm(path, mmproj) for name, path in files.items()}
            engines["f32 tiled"] = LlamaVlm(model, mmproj, image_splitting=True)
            sizes = {name: f"{path.stat().st_size / 2**20:.0f} MB" for name, path in files.items()}
            report("llama.cpp (GGUF, ", engines, sizes, image, args.runs)
        if args.backend in ("hf", "both"):
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_vlm import build_tiny_vlm  # noqa: PLC0415

            from models.vlm.hf import HfVlm  # noqa: PLC0415

            # SmolVLM's own processor settings: large frames are cut into 512-pixel tiles.
            folder = build_tiny_vlm(Path(tmp) / "hf", size="smolvlm-256m", splitting=True)
            engines = {"float32": HfVlm(folder)}
            if HfVlm(folder, quantize="8bit").problem() == "":
                engines["8bit, torchao"] = HfVlm(folder, quantize="8bit")
            engines["float32 tiled"] = HfVlm(folder, image_splitting=True)
            for engine in engines.values():
                engine.generate_options = {"min_new_tokens": 30}  # random weights may stop early
            report("transformers (", engines, {}, image, args.runs)


def report(label: str, engines: dict, sizes: dict[str, str], image: np.ndarray,
           runs: int) -> None:
    """Load every engine, then time them side by side (each run times every engine once, in
    turn) and print medians, and the speed of each relative to the first."""
    for engine in engines.values():
        engine.load()
    times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in engines}
    for i in range(runs + 1):
        for name, engine in engines.items():
            firsts, totals = time_engine(engine, image, 1 if i else 0, warmup=0 if i else 1)
            times[name][0].extend(firsts)
            times[name][1].extend(totals)
    base = statistics.median(next(iter(times.values()))[1])
    for name, (firsts, totals) in times.items():
        size = f", {sizes[name]}" if name in sizes else ""
        total = statistics.median(totals)
        print(f"{label}{name}{size}): first text {statistics.median(firsts):.2f} s, all 30 "
              f"tokens {total:.2f} s ({base / total:.2f}x the speed of the first)")
    for engine in engines.values():
        engine.close()


if __name__ == "__main__":
    main()
