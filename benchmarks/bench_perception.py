"""Analysis speed: pose + faces + on-screen text + shots + scene + dialogue detection together.

Makes a 720p clip from the bundled demo (real people, signs, titles, speech), or from the film
given with ``--clip``, runs the look-ahead analysis over it at the default sampling (2 frames a
second), and prints: the speed as a multiple of real time (target: at least 2x on 2 CPU
cores), the peak memory of the process (target: under 1.5 GB), and the median time per frame
of each stage. The object detector and the pose stage share one detector run a frame: the
stage that asks first pays for it.

``--compare`` also times, side by side in the same run and alternating, the pose stage finding
people with mediapipe's own person detector (as before the object detector proposed them), and
prints the median seconds of frames per round for each.

    .venv/bin/python benchmarks/bench_perception.py [--clip FILM] [--compare ROUNDS]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.gaps import analyse  # noqa: E402
from models.pipeline.config import FRAME_WIDTH, LOOKAHEAD_FPS, default_stages  # noqa: E402
from models.pipeline.reader import FrameReader  # noqa: E402


def make_720p(folder: Path, source: Path = ROOT / "assets" / "demo.mp4") -> Path:
    out = folder / "clip-720p.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source),
                    "-vf", "scale=1280:720,fps=25", "-c:v", "libx264", "-preset", "veryfast",
                    "-c:a", "aac", str(out)], check=True)
    return out


def frames_seconds(clip: Path, stages: list) -> float:
    """Seconds to read the clip's frames and run ``stages`` on each."""
    reader = FrameReader(str(clip), fps=LOOKAHEAD_FPS, max_width=FRAME_WIDTH)
    reader.start()
    began = time.monotonic()
    for frame in reader.frames():
        for stage in stages:
            stage.process(frame.t, frame.image)
    reader.stop()
    return time.monotonic() - began


def compare(clip: Path, rounds: int) -> None:
    """The pose stage with the object detector's proposals against mediapipe's, alternating."""
    from models.perception.pose import PoseStage  # noqa: PLC0415

    stages, _ = default_stages()
    pose = next(s for s in stages if s.name == "pose")
    alone = [s if s is not pose else PoseStage(cuts=pose._cuts) for s in stages]
    times: dict[str, list[float]] = {"detector proposes": [], "mediapipe proposes": []}
    for _ in range(rounds):
        for name, chosen in (("detector proposes", stages), ("mediapipe proposes", alone)):
            for stage in chosen:
                stage.reset()
            times[name].append(frames_seconds(clip, chosen))
    for name, values in times.items():
        print(f"  {name}: median {statistics.median(values):.2f} s of frames over {rounds} "
              f"rounds ({', '.join(f'{v:.2f}' for v in values)})")
    a, b = (statistics.median(v) for v in times.values())
    print(f"  ratio detector/mediapipe: {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, help="a film to scale to 720p (default: the demo)")
    parser.add_argument("--compare", type=int, default=0, metavar="ROUNDS",
                        help="also time the pose stage with mediapipe's proposals, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_720p(Path(tmp), args.clip) if args.clip else make_720p(Path(tmp))
        stages, notes = default_stages()
        for note in notes:
            print("note:", note)
        print("stages:", ", ".join(s.name for s in stages))
        for stage in stages:  # where a detector with a choice of device runs, and why
            if getattr(stage, "device", ""):
                print(f"{stage.name} runs on: {stage.device}")
            for note in stage.notes() if callable(getattr(stage, "notes", None)) else []:
                print("note:", note)
        per_stage: dict[str, list[float]] = defaultdict(list)
        began = time.monotonic()
        gaps = analyse(clip, use_cache=False)
        vad_seconds = time.monotonic() - began
        reader = FrameReader(str(clip), fps=LOOKAHEAD_FPS, max_width=FRAME_WIDTH)
        reader.start()
        frames = 0
        frames_began = time.monotonic()
        for frame in reader.frames():
            frames += 1
            for stage in stages:
                t0 = time.perf_counter()
                stage.process(frame.t, frame.image)
                per_stage[stage.name].append(time.perf_counter() - t0)
        reader.stop()
        vision_seconds = time.monotonic() - frames_began
        total = vad_seconds + vision_seconds
        duration = gaps.duration
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"clip: {duration:.1f} s of 1280x720 video, {frames} frames analysed "
              f"({LOOKAHEAD_FPS:g} per second, scaled to {FRAME_WIDTH} wide)")
        print(f"dialogue detection: {vad_seconds:.2f} s ({duration / vad_seconds:.0f}x real time)")
        print(f"frames (decode + all stages): {vision_seconds:.2f} s")
        print(f"all together: {total:.2f} s = {duration / total:.2f}x real time "
              f"(target: at least 2x)")
        print(f"peak memory: {peak_mb:.0f} MB (target: under 1500 MB)")
        for name, values in per_stage.items():
            ms = [v * 1000 for v in values]
            print(f"  {name}: median {statistics.median(ms):.1f} ms per frame, "
                  f"max {max(ms):.1f} ms")
        if args.compare:
            print("side by side (frames and stages only):")
            compare(clip, args.compare)


if __name__ == "__main__":
    main()
