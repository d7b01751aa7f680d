"""The runner on Ray: each film one Ray task, on a cluster of this machine alone (started and
stopped here) or on one started with ``ray start --head``.

- A task asks for one CPU, and for a share of a GPU (``1 / films_per_gpu``) when a model is
  used and the cluster has GPUs; its worker process keeps the stages and the model loaded for
  the next film it gets.
- A worker process that dies (killed, out of memory, its machine gone) is retried by Ray, up
  to ``retries`` times; the retry finds nothing half-written (tracks and caches are written
  whole or not at all) and a film finished before its worker died is not prepared again.
- A film whose analysis makes no progress for ``hang_limit`` seconds (a decoder that hangs)
  is stopped (its worker is killed) and reported; the rest go on.
- Only ``workers`` films are under way at once, so the time limit counts from a film's start.
- Ctrl-C cancels the films under way and leaves every finished one as it is.

Ray is imported here only, when a runner is opened; it is the [cluster] extra.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.library.job import FilmOutcome, LibrarySettings
from models.library.library import RunSink

INSTALL_HINT = "pip install 'video-narrator[cluster]'"
POLL = 0.5
"""Seconds between looks at the films under way."""
BEAT_EVERY = 1.0
"""Seconds between a worker's signs of life for one film."""
HANG_LIMIT = 600.0
RETRIES = 3


class ClusterError(Exception):
    """The cluster cannot be used; the message is one sentence for people."""


class _Beats:
    """An actor the tasks tell how their films go: attempts, worker, position, last sign of
    life. Times are this actor's clock, so the driver never compares two machines' clocks."""

    def __init__(self) -> None:
        self.films: dict[str, dict[str, Any]] = {}

    def enter(self, video: str) -> None:
        film = self.films.setdefault(video, {"attempts": 0})
        film.update(attempts=film["attempts"] + 1, pid=0, host="", position=0.0,
                    duration=0.0, beat=time.monotonic())

    def started(self, video: str, pid: int, host: str) -> None:
        self.films[video].update(pid=pid, host=host, beat=time.monotonic())

    def beat(self, video: str) -> None:
        self.films[video]["beat"] = time.monotonic()

    def position(self, video: str, seconds: float, duration: float) -> None:
        self.films[video].update(position=seconds, duration=duration, beat=time.monotonic())

    def snapshot(self) -> tuple[float, dict[str, dict[str, Any]]]:
        return time.monotonic(), {k: dict(v) for k, v in self.films.items()}


class _RayEvents:
    """A task's FilmEvents, sent to the beats actor (signs of life at most once a second)."""

    def __init__(self, beats: Any, video: str) -> None:
        self.beats, self.video, self.last = beats, video, 0.0

    def started(self, pid: int, host: str) -> None:
        import ray  # noqa: PLC0415

        # Waited for: the driver hears of the start before the film's result, however quick.
        ray.get(self.beats.started.remote(self.video, pid, host))

    def position(self, seconds: float, duration: float) -> None:
        self.beats.position.remote(self.video, seconds, duration)
        self.last = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last >= BEAT_EVERY:  # a burst of lines is one sign of life
            self.last = now
            self.beats.beat.remote(self.video)

    def line(self, text: str) -> None:
        pass  # kept in the worker's log and, for notes, in the film's report


def film_task(video: str, settings: LibrarySettings, beats: Any) -> FilmOutcome:
    """The Ray task: one film, in a worker process."""
    import ray  # noqa: PLC0415

    from models.library.film import prepare_film  # noqa: PLC0415

    ray.get(beats.enter.remote(video))  # counted before anything else can happen
    return prepare_film(Path(video), settings, _RayEvents(beats, video))


def reachable(address: str, timeout: float = 3.0) -> bool:
    """Whether anything answers at ``host:port`` (or ``ray://host:port``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def use_token_if_there() -> None:
    """A cluster started with ``ray start --head`` asks for a token (Ray 2.5x and later) that
    ``ray start`` keeps in ~/.ray/auth_token; a driver joining it sends the token only in token
    mode, so that mode is chosen when a token is at hand and no mode was set."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray" in sys.modules:  # Ray read its settings when imported: read them again
            try:
                from ray._raylet import Config  # type: ignore[attr-defined]  # noqa: PLC0415

                Config.initialize("")
            except (ImportError, AttributeError):
                pass


def import_ray() -> Any:
    try:
        use_token_if_there()  # before Ray reads its settings
        import ray  # noqa: PLC0415
    except ImportError as exc:
        raise ClusterError(f"Ray is not installed, so --workers and --cluster cannot be used "
                           f"({INSTALL_HINT}).") from exc
    return ray


class RayRunner:
    """Prepares films as Ray tasks. ``address``: "" to start a cluster of this machine alone
    with ``workers`` CPUs (stopped again by :meth:`close`), "attached" to use the one this
    process is already connected to (tests), else a cluster's address, or "auto"."""

    def __init__(self, workers: int = 0, address: str = "", retries: int = RETRIES,
                 hang_limit: float = HANG_LIMIT, films_per_gpu: int = 1,
                 check_stop: Callable[[], None] = lambda: None) -> None:
        self.check_stop = check_stop  # raises the stop again that Ray turned into Ctrl-C
        self.workers, self.address = workers, address
        self.retries, self.hang_limit, self.films_per_gpu = retries, hang_limit, films_per_gpu
        self.where = address or "local"
        self.ray: Any = None
        self.announce: Callable[[str], None] | None = None  # hears the run's first line
        self.owned = False  # this runner connected, so it disconnects (and stops a local one)

    def check(self) -> None:
        """Whether the cluster could be used, without starting or joining it yet (a run
        whose films are all prepared already needs none); ClusterError says why not."""
        import_ray()
        if self.address not in ("", "auto", "attached") and not reachable(self.address):
            raise ClusterError(
                f"No Ray cluster answers at {self.address}: start one there with "
                f"`ray start --head`, or leave out --cluster to use this machine alone.")

    def open(self) -> None:
        """Start or join the cluster; ClusterError (one sentence) when it cannot be used."""
        ray = import_ray()
        self.check()
        kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "logging_level": logging.ERROR}
        try:
            if self.address == "attached":
                if not ray.is_initialized():
                    raise ClusterError("No Ray cluster is connected.")
            elif not self.address:
                try:
                    ray.init(address="local", num_cpus=max(1, self.workers), **quiet)
                except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
                    raise ClusterError(f"Ray could not start a cluster on this machine "
                                       f"({str(exc).splitlines()[0]}).") from exc
                self.owned = True
            else:
                use_token_if_there()
                try:
                    ray.init(address=self.address, **quiet)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise ClusterError(
                        f"The Ray cluster at {self.address} could not be joined "
                        f"({str(exc).splitlines()[0]}); if it uses token authentication, this "
                        f"machine needs its token: RAY_AUTH_TOKEN, or the head's "
                        f"~/.ray/auth_token copied here.") from exc
                self.owned = True
        finally:
            for sig, handler in kept.items():  # Ctrl-C and SIGTERM stop the run, as before
                if handler is not None:
                    signal.signal(sig, handler)
        self.ray = ray
        if not self.workers:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self.ray is not None and self.owned:
            self.ray.shutdown()
        self.ray, self.owned = None, False

    def gpus_per_film(self, settings: LibrarySettings) -> float:
        """A share of a GPU when the model can run on one, else none."""
        if not settings.model or not self.ray.cluster_resources().get("GPU", 0):
            return 0.0
        return 1.0 / max(1, self.films_per_gpu)

    def task_options(self, settings: LibrarySettings) -> dict[str, Any]:
        """What each film's task asks Ray for. ``max_calls=0``: a worker keeps its stages and
        model for the next film (Ray's default for a GPU task is a new process each time)."""
        return {"num_cpus": 1, "num_gpus": self.gpus_per_film(settings),
                "max_retries": self.retries, "retry_exceptions": False, "max_calls": 0}

    def run(self, films: list[Path], settings: LibrarySettings, sink: RunSink) -> None:
        ray = self.ray
        if ray is None:
            self.open()
            ray = self.ray
        gpus = self.gpus_per_film(settings)
        if self.announce is not None:
            where = "a Ray cluster of this machine alone" if not self.address else \
                f"the Ray cluster at {self.address}"
            self.announce(f"Preparing {len(films)} film{'s' if len(films) != 1 else ''}, "
                          f"{self.workers} at once, on {where}"
                          + (f", with {gpus:g} of a GPU each." if gpus else "."))
        task = ray.remote(**self.task_options(settings))(film_task)
        from ray.util.scheduling_strategies import (  # noqa: PLC0415
            NodeAffinitySchedulingStrategy,
        )

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        beats = ray.remote(num_cpus=0, scheduling_strategy=here)(_Beats).remote()  # beside us
        waiting = deque(str(f) for f in films)
        running: dict[Any, str] = {}
        seen: dict[str, tuple[int, int]] = {}  # film: (attempt, pid) last told
        hung: set[str] = set()
        try:
            while waiting or running:
                self.check_stop()
                while waiting and len(running) < self.workers:
                    video = waiting.popleft()
                    running[task.remote(video, settings, beats)] = video
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL)
                now, films_now = ray.get(beats.snapshot.remote())
                for video, state in films_now.items():
                    told = (state["attempts"], state["pid"])
                    if state["pid"] and seen.get(video) != told:
                        seen[video] = told
                        sink.started(video, state["pid"], state["host"], state["attempts"])
                    if state["duration"] and video in running.values():
                        sink.position(video, state["position"], state["duration"])
                for ref in ready:
                    video = running.pop(ref)
                    state = films_now.get(video, {})
                    sink.outcome(self._outcome(ref, video, state, video in hung))
                for ref, video in running.items():
                    state = films_now.get(video, {})
                    if (state.get("pid") and video not in hung
                            and now - state["beat"] > self.hang_limit):
                        hung.add(video)
                        ray.cancel(ref, force=True)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            self.check_stop()  # Ray's calls raise a plain KeyboardInterrupt even for SIGTERM
            raise
        except (ray.exceptions.RaySystemError, ray.exceptions.RayActorError,
                ConnectionError) as exc:
            raise ClusterError(f"The Ray cluster stopped answering ({str(exc).splitlines()[0]}); "
                               f"the films finished before are kept.") from exc
        finally:
            try:
                ray.kill(beats)
            except Exception:  # noqa: BLE001, S110 - a cluster that is gone took it along
                pass

    def _outcome(self, ref: Any, video: str, state: dict[str, Any], hung: bool) -> FilmOutcome:
        ray = self.ray
        name = Path(video).name
        attempts = int(state.get("attempts", 1) or 1)
        try:
            outcome = ray.get(ref)
            return dataclasses.replace(outcome, attempts=attempts)
        except ray.exceptions.TaskCancelledError:
            limit = f"{self.hang_limit / 60:g} minutes" if self.hang_limit >= 60 else \
                f"{self.hang_limit:g} seconds"
            reason = (f"{name} made no progress for {limit} (its decoder may hang), so it "
                      f"was stopped." if hung else f"{name} was cancelled.")
        except ray.exceptions.OutOfMemoryError:
            reason = (f"{name} was given up: its worker ran out of memory {attempts} "
                      f"time{'s' if attempts != 1 else ''} (fewer --workers leave each more).")
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.LocalRayletDiedError) as exc:
            reason = (f"{name} was given up: the worker preparing it stopped unexpectedly "
                      f"{attempts} time{'s' if attempts != 1 else ''} "
                      f"({type(exc).__name__}).")
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            reason = f"{name} could not be prepared: {str(cause).splitlines()[0]}"
        except ray.exceptions.RayError as exc:
            reason = f"{name} could not be prepared: {str(exc).splitlines()[0]}"
        return FilmOutcome(video, "failed", reason, attempts=attempts,
                           worker=str(state.get("host", "")))
