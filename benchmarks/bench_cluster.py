"""Minutes of film analysed per minute by ``narrate prepare`` on Ray, with 1 and 2 workers side
by side in one run, and what to expect on a cluster of N machines.

One cluster of this machine alone (Ray's start is not what is measured) prepares the same
generated library again and again, 1 worker and 2 workers in turn (the order swapped every
round, so neither always runs on a warmer machine), each time from nothing: tracks removed,
a fresh analysis cache. A first round warms both worker processes up (stages loaded), as on a
long run where loading is paid once per worker. Printed: each run, the medians, their ratio,
the measured per-film costs, and a simulation of a library of ``--library`` films of 20 to 120
minutes spread over N machines of this kind (list scheduling, in Ray's first come first served
order, of the measured cost per second of film, the fixed cost per film and the driver's own
cost per film, all three measured here), with the read rate the shared storage must give.

    .venv/bin/python benchmarks/bench_cluster.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/bench_cluster.py --stages shots --seconds 20
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.library.cluster import RayRunner  # noqa: E402
from models.library.films import find_films  # noqa: E402
from models.library.job import LibrarySettings  # noqa: E402
from models.library.library import LibraryRun  # noqa: E402
from models.library.progress import LibraryProgress  # noqa: E402
from models.library.report import LibraryReport  # noqa: E402
from tests.media import make_clip  # noqa: E402


def one_run(folder: Path, workers: int, stages: tuple[str, ...], cache: Path,
            ) -> tuple[float, LibraryReport]:
    for track in folder.glob("*.vtt"):
        track.unlink()
    settings = LibrarySettings(stages=stages, keep_partial=True, cache_home=str(cache))
    run = LibraryRun(settings, RayRunner(workers, "attached"), LibraryProgress({}, io.StringIO()))
    began = time.perf_counter()
    report = run.run(find_films([folder]))
    took = time.perf_counter() - began
    failed = [o.reason for o in report.outcomes if o.state != "done"]
    if failed:
        raise SystemExit(f"a film was not prepared: {failed}")
    return took, report


def simulate(lengths: list[float], rate: float, fixed: float, driver: float,
             machines: int, workers: int) -> float:
    """Seconds to prepare films of ``lengths`` (seconds of film) on ``machines`` x ``workers``
    slots, first come first served as Ray does: each film costs ``rate`` seconds per second of
    film plus ``fixed`` seconds (Ray and the worker between films) on its slot, and the driver
    spends ``driver`` seconds of its own on each film, one after another."""
    slots = [0.0] * (machines * workers)
    clock = 0.0
    for length in lengths:
        clock += driver
        i = min(range(len(slots)), key=slots.__getitem__)
        slots[i] = max(slots[i], clock) + fixed + rate * length
    return max(max(slots), clock)


def driver_cost(folder: Path, settings: LibrarySettings, tasks: int = 200) -> float:
    """Seconds of the driver's own work per film: the length and prepared checks of a film,
    plus submitting a task and taking its result (measured on ``tasks`` empty tasks)."""
    import ray

    from models.library.film import prepared_track
    from models.library.films import film_seconds

    films = sorted(folder.glob("*.mp4"))
    began = time.perf_counter()
    for film in films:
        film_seconds(film)
        prepared_track(film, settings)
    checks = (time.perf_counter() - began) / len(films)

    @ray.remote(num_cpus=0)
    def nothing(x: int) -> int:
        return x

    ray.get([nothing.remote(i) for i in range(10)])  # workers up
    began = time.perf_counter()
    ray.get([nothing.remote(i) for i in range(tasks)])
    return checks + (time.perf_counter() - began) / tasks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--films", type=int, default=6, help="films in the library (default 6)")
    p.add_argument("--seconds", type=float, default=6.0, help="length of each (default 6)")
    p.add_argument("--size", default="320x240", help="frame size (default 320x240)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    p.add_argument("--stages", default="", help="comma-separated stage names (default: all)")
    p.add_argument("--library", type=int, default=1000,
                   help="films in the simulated library (default 1000)")
    p.add_argument("--film-minutes", default="20,120",
                   help="the simulated films' lengths, least and most (default 20,120)")
    p.add_argument("--bitrate", type=float, default=5.0,
                   help="the simulated films' bit rate in Mbit/s, for the storage's load "
                        "(default 5, a typical HD film)")
    args = p.parse_args()
    stages = tuple(s for s in args.stages.split(",") if s)

    import ray

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    folder = work / "library"
    folder.mkdir()
    for i in range(args.films):  # different lengths: different content, different keys
        make_clip(folder, f"film{i}.mp4", seconds=args.seconds + 0.5 * i, size=args.size)
    film_seconds = sum(args.seconds + 0.5 * i for i in range(args.films))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    print(f"{args.films} films, {film_seconds / 60:.2f} minutes of film, {args.size}, stages: "
          f"{', '.join(stages) or 'all'}; a Ray cluster of this machine alone, 2 CPUs "
          f"({os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start).")
    try:
        one_run(folder, 2, stages, work / "warm")  # both worker processes load the stages
        driver = driver_cost(folder, LibrarySettings(stages=stages, keep_partial=True,
                                                     cache_home=str(work / "warm")))
        rates: dict[int, list[float]] = {1: [], 2: []}
        rate_per_film_second: list[float] = []
        overhead: list[float] = []
        for r in range(args.repeats):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                took, report = one_run(folder, workers, stages, work / f"cache-{r}-{workers}")
                rate = film_seconds / took  # minutes of film per minute
                rates[workers].append(rate)
                print(f"round {r + 1}, {workers} worker{'s' if workers > 1 else ''}: "
                      f"{took:.1f} s, {rate:.2f} minutes of film a minute")
                if workers == 1:
                    tasks = [o.seconds for o in report.outcomes]
                    rate_per_film_second += [o.seconds / o.duration for o in report.outcomes]
                    overhead.append((took - sum(tasks)) / len(tasks))
    finally:
        ray.shutdown()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print()
    print(f"median, 1 worker: {one:.2f} minutes of film a minute")
    print(f"median, 2 workers: {two:.2f} minutes of film a minute")
    print(f"2 workers / 1 worker: {two / one:.2f}")
    fixed = max(0.0, statistics.median(overhead))
    rate = statistics.median(rate_per_film_second)
    contended = rate * 2 / (two / one)  # a film's cost with 2 workers sharing a machine
    print(f"per film, 1 worker: {rate:.2f} s of worker time per second of film (median); "
          f"Ray and the worker between films: {fixed:.3f} s; the driver's own work: "
          f"{driver * 1000:.1f} ms")
    low, high = (float(x) for x in args.film_minutes.split(","))
    rng = random.Random(1)
    lengths = [rng.uniform(low, high) * 60 for _ in range(args.library)]
    print()
    print(f"Simulated: {args.library} films of {low:g} to {high:g} minutes, on machines like "
          f"this one with 2 workers each (a film costs {contended:.2f} s per second of film "
          f"there, from the speed-up measured above), first come first served:")
    base = simulate(lengths, contended, fixed, driver, 1, 2)
    speed = 1 / contended  # times real time, per worker
    for machines in (1, 2, 4, 8, 16, 32, 64):
        took = simulate(lengths, contended, fixed, driver, machines, 2)
        storage = machines * 2 * speed * args.bitrate
        print(f"  {machines:2d} machine{'s' if machines > 1 else ' '}: {took / 3600:8.1f} hours, "
              f"speed-up {base / took:5.2f}, efficiency {base / took / machines:.2f}; shared "
              f"storage reads {storage:.0f} Mbit/s at {args.bitrate:g} Mbit/s a film")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
