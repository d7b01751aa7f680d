"""What the perception stages saw in one video, by time, with a cache on disk.

:class:`ObservationStore` keeps :class:`~models.types.Observation` values sorted by time, answers
"what was seen between a and b" and "what was the latest of this kind at t", and remembers which
stretches of the video have been analysed (:attr:`ObservationStore.covered`). It is safe to add
from the analysis worker's thread while another thread reads.

The cache file lives under ``models.cache.cache_path(video, "observations", "-<config hash>.json")``:
keyed by the video's content (a renamed copy hits it) and by the analysis settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.cache import cache_path
from models.types import Observation

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # 2: people carry the colour of their clothes; 3: objects; 4: layout
JOIN_WITHIN = 0.1
"""Seconds: analysed stretches closer than this are joined (a frame sampled a frame or two
after its sample time leaves no hole)."""
MAX_HOLE = 2.0
"""The longest stretch without frames, between two frames of one run, that counts as analysed."""


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable short hash of analysis settings (the same settings give the same hash)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """JSON's ``default`` hook: numpy values, tuples and sets become plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} values cannot be stored in an observation")


class _Line:
    """Observations sorted by time, with their times alongside for bisecting."""

    __slots__ = ("times", "items")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.items: list[Observation] = []

    def add(self, obs: Observation) -> None:
        i = bisect_right(self.times, obs.t)
        self.times.insert(i, obs.t)
        self.items.insert(i, obs)

    def between(self, a: float, b: float) -> list[Observation]:
        return self.items[bisect_left(self.times, a):bisect_left(self.times, b)]

    def latest(self, t: float) -> Observation | None:
        i = bisect_right(self.times, t)
        return self.items[i - 1] if i else None


class ObservationStore:
    """Observations of one video, sorted by time, and the stretches of it already analysed."""

    def __init__(self, observations: Iterable[Observation] = (),
                 covered: Iterable[tuple[float, float]] = (),
                 join_within: float = JOIN_WITHIN) -> None:
        self.join_within = max(0.0, float(join_within))
        self._lock = threading.RLock()
        self._all = _Line()
        self._kinds: dict[str, _Line] = {}
        self._covered: list[tuple[float, float]] = []
        for obs in observations:
            self.add(obs)
        for start, end in covered:
            self.cover(start, end)

    def __len__(self) -> int:
        return len(self._all.items)

    def __iter__(self) -> Iterator[Observation]:
        with self._lock:
            return iter(list(self._all.items))

    @property
    def kinds(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._kinds))

    def add(self, obs: Observation) -> None:
        if not math.isfinite(obs.t):
            raise ValueError(f"An observation needs a finite time, not {obs.t}.")
        with self._lock:
            self._all.add(obs)
            self._kinds.setdefault(obs.kind, _Line()).add(obs)

    def extend(self, observations: Iterable[Observation]) -> None:
        for obs in observations:
            self.add(obs)

    def record(self, t: float, observations: Iterable[Observation], span: float,
               after: float | None = None) -> None:
        """Add what was seen in the frame at ``t`` and mark ``[t, t + span)`` analysed
        (``span`` is usually the sampling interval). ``after``: the time of the frame read just
        before this one in the same run, when there was one; the stretch between them (a
        variable-frame-rate file's hole, where the last picture stays on screen) is analysed too,
        if it is at most ``MAX_HOLE`` seconds."""
        with self._lock:
            self.extend(observations)
            start = after if after is not None and 0.0 < t - after <= MAX_HOLE else t
            self.cover(start, t + max(0.0, span))

    def between(self, a: float, b: float, kinds: Iterable[str] | None = None,
                ) -> list[Observation]:
        """Observations with ``a <= t < b`` (of ``kinds`` only, when given), by time."""
        with self._lock:
            if kinds is None:
                return list(self._all.between(a, b))
            found: list[Observation] = []
            for kind in set(kinds):
                line = self._kinds.get(kind)
                if line is not None:
                    found.extend(line.between(a, b))
        found.sort(key=lambda o: o.t)
        return found

    def latest(self, t: float, kind: str) -> Observation | None:
        """The last observation of ``kind`` at or before ``t``."""
        with self._lock:
            line = self._kinds.get(kind)
            return line.latest(t) if line is not None else None

    # -- what has been analysed ----------------------------------------------------------------

    @property
    def covered(self) -> tuple[tuple[float, float], ...]:
        """The analysed stretches as (start, end) seconds, sorted and not overlapping."""
        with self._lock:
            return tuple(self._covered)

    def cover(self, start: float, end: float) -> None:
        """Mark ``[start, end)`` analysed, joining it with stretches within ``join_within``."""
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"An analysed stretch needs finite times in order, "
                             f"not {start} to {end}.")
        with self._lock:
            spans = self._covered
            i = bisect_left(spans, (start - self.join_within, -math.inf))
            if i and spans[i - 1][1] >= start - self.join_within:
                i -= 1
            j = i
            while j < len(spans) and spans[j][0] <= end + self.join_within:
                start, end = min(start, spans[j][0]), max(end, spans[j][1])
                j += 1
            spans[i:j] = [(start, end)]

    def is_covered(self, start: float, end: float) -> bool:
        """True when all of ``[start, end]`` has been analysed."""
        with self._lock:
            i = bisect_right(self._covered, (start + self.join_within, math.inf)) - 1
            return i >= 0 and self._covered[i][0] <= start + self.join_within \
                and self._covered[i][1] >= end - self.join_within

    def drop_kind(self, kind: str) -> int:
        """Forget the observations of ``kind`` (what stretches were analysed stays); returns
        how many were dropped."""
        with self._lock:
            line = self._kinds.pop(kind, None)
            if line is None:
                return 0
            rest = _Line()
            for obs in self._all.items:
                if obs.kind != kind:
                    rest.times.append(obs.t)
                    rest.items.append(obs)
            self._all = rest
            return len(line.items)

    def clear(self) -> None:
        with self._lock:
            self._all = _Line()
            self._kinds.clear()
            self._covered.clear()

    # -- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready value (numpy numbers in ``data`` become plain numbers)."""
        with self._lock:
            items = [{"t": o.t, "kind": o.kind, "text": o.text, "confidence": o.confidence,
                      "data": o.data} for o in self._all.items]
            return {"version": CACHE_VERSION, "observations": items,
                    "covered": [list(span) for span in self._covered]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=_plain, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservationStore:
        """The inverse of :meth:`to_dict`; raises ValueError on anything malformed."""
        try:
            if data["version"] != CACHE_VERSION:
                raise ValueError(f"cache version {data['version']!r}, not {CACHE_VERSION}")
            observations = []
            for item in data["observations"]:
                extra = item.get("data", {})
                if not isinstance(extra, dict):
                    raise ValueError("an observation's data is not a mapping")
                observations.append(Observation(
                    t=float(item["t"]), kind=str(item["kind"]), text=str(item["text"]),
                    confidence=float(item.get("confidence", 1.0)), data=extra))
            covered = [(float(a), float(b)) for a, b in data.get("covered", [])]
            return cls(observations, covered)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an observation list ({exc!r})") from exc

    @classmethod
    def from_json(cls, text: str) -> ObservationStore:
        return cls.from_dict(json.loads(text))

    # -- cache ---------------------------------------------------------------------------------

    @staticmethod
    def cache_file(video: str | os.PathLike[str], config: Mapping[str, Any]) -> Path:
        """Where the observations of ``video`` under ``config`` are cached (reads the video)."""
        return cache_path(video, "observations", f"-{config_hash(config)}.json")

    def save(self, video: str | os.PathLike[str], config: Mapping[str, Any]) -> Path | None:
        """Write the cache for ``video`` and ``config`` atomically; None (logged) on failure,
        such as a full disk or an unreadable video."""
        tmp = ""
        try:
            file = self.cache_file(video, config)
            text = json.dumps({"config": config, **self.to_dict()}, default=_plain,
                              ensure_ascii=False)
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".observations-", suffix=".tmp", dir=file.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, file)
            return file
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not save the observations of %s (%s); continuing without a "
                        "cache", Path(video).name, exc)
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            return None

    @classmethod
    def load(cls, video: str | os.PathLike[str], config: Mapping[str, Any],
             ) -> ObservationStore | None:
        """The cached observations of ``video`` under ``config``; None when there are none, or
        when the cache is unreadable (logged and ignored)."""
        try:
            file = cls.cache_file(video, config)
        except OSError as exc:
            log.info("no observation cache for %s (%s)", Path(video).name, exc)
            return None
        try:
            expected = json.loads(json.dumps(config, default=_plain))
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("config") != expected:
                return None
            return cls.from_dict(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring the unreadable observation cache %s (%s)", file, exc)
            return None
