"""What the narration says of real pictures: the objects found (with scores) and the sentences.

For each picture or film given, runs the objects stage (NanoDet) and, for a film, the stream of
frames at the player's sampling (2 a second, 640 pixels wide) through the composer, and prints
what the detector found, the composer's sentences with their levels, the describe-now answer
and the detector's time per frame. With no arguments it uses the pictures installed here:
matplotlib's sample photograph and the bundled demo clip.

    .venv/bin/python benchmarks/eval_descriptions.py [PICTURE_OR_FILM ...]
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from models.perception.frames import shrink  # noqa: E402
from models.perception.objects import ObjectStage  # noqa: E402
from models.pipeline.composer import Composer  # noqa: E402
from models.types import Observation  # noqa: E402

FPS = 2.0
WIDTH = 640


def default_inputs() -> list[Path]:
    found = [ROOT / "assets" / "demo.mp4"]
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        sample = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data"
        found.insert(0, sample / "grace_hopper.jpg")
    return found


def frames(path: Path) -> list[tuple[float, np.ndarray]]:
    """(time, RGB frame) at ``FPS`` a second; a picture is one frame at 0."""
    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        following = 0.0
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t + 1e-3 >= following:
                out.append((t, frame.to_ndarray(format="rgb24")))
                following = t + 1 / FPS
    return out


def evaluate(path: Path, stage: ObjectStage) -> list[float]:
    stage.reset()
    composer = Composer()
    seen: list[Observation] = []
    times: list[float] = []
    pictures = frames(path)
    print(f"\n{path.name}: {len(pictures)} frame(s)")
    for t, rgb in pictures:
        small = shrink(rgb, WIDTH, stage._cv2) if len(pictures) > 1 else rgb
        start = time.perf_counter()
        observations = stage.process(t, small)
        times.append(time.perf_counter() - start)
        for obs in observations:
            if obs.data["objects"]:
                found = ", ".join(f"{o['label']} {o['score']:.2f}" for o in obs.data["objects"])
                print(f"  {t:6.1f}s found: {found}")
        batch = observations if seen else [Observation(t, "shot", "shot change"), *observations]
        seen += observations
        for d in composer.feed(batch):
            print(f"  {d.start:6.1f}s says (level {d.level}): {d.text}")
    if seen:
        print(f"  describe now at the end: {Composer.describe(seen, seen[-1].t)!r}")
    return times


def main(argv: list[str]) -> None:
    stage = ObjectStage()
    if stage.problem():
        sys.exit(stage.problem())
    times: list[float] = []
    for path in [Path(a) for a in argv] or default_inputs():
        times += evaluate(path, stage)
    rgb = np.zeros((720, 1280, 3), dtype=np.uint8)
    rgb[200:500, 300:900] = (200, 40, 40)
    hd = []
    for _ in range(20):
        start = time.perf_counter()
        stage.look(0.0, rgb)
        hd.append(time.perf_counter() - start)
    print(f"\ndetector time per frame: median {statistics.median(times) * 1e3:.1f} ms over "
          f"{len(times)} frames; 1280x720: median {statistics.median(hd) * 1e3:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
