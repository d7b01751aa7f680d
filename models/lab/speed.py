"""Speed figures of a narrator: time to the first sentence, total time, tokens a second and the
peak memory (the process's resident memory, sampled while it works, and the GPU's allocator
peak when torch uses one)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """The process's resident memory now (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        try:
            import resource  # noqa: PLC0415

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except (ImportError, OSError):
            return 0


class MemoryWatch:
    """Samples the resident memory on a thread while in a ``with`` block; ``peak_mb`` after."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.peak = 0
        self.gpu_peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MemoryWatch:
        self.peak = rss_bytes()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._run, name="lab-memory", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            self.gpu_peak = int(torch.cuda.max_memory_allocated())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2 ** 20

    @property
    def gpu_peak_mb(self) -> float:
        return self.gpu_peak / 2 ** 20


@dataclass(frozen=True)
class Timed:
    """One answer and how long it took: ``first`` seconds to its first whole sentence,
    ``total`` seconds in all, ``tokens`` pieces the model streamed."""

    text: str
    first: float
    total: float
    tokens: int


def timed_stream(pieces: Iterable[str]) -> Timed:
    """Read a stream of text pieces, noting when its first sentence was complete."""
    from models.vlm.base import first_sentence  # noqa: PLC0415

    now = time.perf_counter
    began = now()
    count = [0]
    parts: list[str] = []

    def counted() -> Iterator[str]:
        for piece in pieces:
            count[0] += 1
            parts.append(piece)
            yield piece

    first = None
    for _ in first_sentence(counted()):
        if first is None:
            first = now() - began
    total = now() - began
    return Timed("".join(parts), total if first is None else first, total, count[0])


@dataclass(frozen=True)
class SpeedStats:
    """A narrator's speed over a dataset: mean seconds to the first sentence and in all per
    example, tokens a second over all, the load time, the peak memory and the device."""

    first_sentence_s: float
    total_s: float
    tokens_per_s: float
    load_s: float
    peak_memory_mb: float
    gpu_peak_memory_mb: float
    device: str


def summarise(times: list[Timed], load_s: float, watch: MemoryWatch, device: str) -> SpeedStats:
    n = max(len(times), 1)
    spent = sum(t.total for t in times)
    tokens = sum(t.tokens for t in times)
    return SpeedStats(sum(t.first for t in times) / n, spent / n,
                      tokens / spent if spent > 0 else 0.0, load_s, watch.peak_mb,
                      watch.gpu_peak_mb, device)
