"""Speech and the gaps between it, on the media clock: where narration can be spoken.

:func:`scan_speech` decodes a file's first sound track with PyAV a chunk at a time (memory stays
flat for a film of any length), runs a voice activity detector over it and yields speech
segments as it finds them; the player runs it on a worker thread ahead of the playhead.
:func:`gaps_from_speech` turns speech into :class:`~models.types.Gap` values, and
:func:`analyse` does both for a whole file, with a cache on disk.

Times are seconds on the media clock: the container's start time is zero, as in the player.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from models.cache import cache_path
from models.pipeline.reader import (
    EARLY_END,
    Damage,
    damage_message,
    declared_end,
    merge_damage,
    unreadable_message,
    why_unreadable,
)
from models.types import Gap
from models.vad import SAMPLE_RATE, WINDOW, WINDOW_SECONDS, EnergyVad, VadEngine, choose_vad

log = logging.getLogger(__name__)

CACHE_VERSION = 1
NO_SOUND_NOTE = "no sound track: every moment is free for narration"
NO_SPEECH_NOTE = "no speech found: every moment is free for narration"
MAX_BAD_PACKETS = 200
"""Undecodable packets in a row before the rest of the sound is called unreadable."""
HOLE = 0.1
"""Seconds missing between two pieces of sound that are filled with silence, to keep time."""
DAMAGED_HOLE = 1.0
"""Seconds missing between two pieces of sound that count as damage."""
SOUND_OUTCOME = "pauses in the dialogue there are a guess"

ProgressCallback = Callable[[float, float], None]


class GapError(Exception):
    """A file whose sound could not be read; the message names the file and says why."""


class GapCancelled(Exception):
    """:func:`analyse` was stopped through its ``cancel`` event; nothing was cached."""


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech, in seconds on the media clock."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
            raise ValueError(f"A speech segment needs finite times in order, "
                             f"not {self.start} to {self.end}.")

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class VadOptions:
    """How speech probabilities become segments (the rules of Silero's get_speech_timestamps).

    Speech starts at a window with probability >= ``threshold`` and ends once it stays below
    ``neg_threshold`` for ``min_silence`` seconds; segments shorter than ``min_speech`` are
    dropped, and each kept one is widened by ``speech_pad`` on both sides.
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech: float = 0.25
    min_silence: float = 0.3
    speech_pad: float = 0.03


@dataclass(frozen=True)
class GapAnalysis:
    """The speech and gaps of one file.

    ``duration`` is the programme's length in seconds; ``has_audio`` is False for a file with
    no sound track; ``engine`` names the voice detector; ``notes`` are messages for the user;
    ``elapsed`` is the seconds this call took; ``from_cache`` is True when read from disk;
    ``damage`` is where the sound could not be read (such an analysis is never cached).
    """

    gaps: tuple[Gap, ...]
    speech: tuple[SpeechSegment, ...]
    duration: float
    has_audio: bool
    engine: str
    notes: tuple[str, ...] = ()
    elapsed: float = 0.0
    from_cache: bool = False
    damage: tuple[Damage, ...] = ()


@dataclass
class ScanInfo:
    """Facts learnt while scanning, filled in by :func:`scan_speech` as it goes."""

    has_audio: bool = False
    duration: float | None = None
    """The length the container (or the sound track) declares, if any."""
    end: float = 0.0
    """Media time just after the last sample processed."""
    cancelled: bool = False
    bad_packets: int = 0
    damage: list[Damage] = field(default_factory=list)
    """Where the sound could not be read: undecodable data, a hole in its timestamps, or an
    end well before the declared one."""

    def damaged(self, span: Damage) -> None:
        self.damage = merge_damage([*self.damage, span])


class _Segmenter:
    """Probabilities in, closed speech segments out, one window at a time (hysteresis)."""

    def __init__(self, options: VadOptions, origin: float) -> None:
        self.o = options
        self.origin = origin
        self.index = 0
        self.start: int | None = None
        self.temp_end: int | None = None
        self.last_end = origin
        self.min_silence = options.min_silence / WINDOW_SECONDS
        self.min_speech = options.min_speech / WINDOW_SECONDS

    def _emit(self, start: float, end: float, limit: float) -> SpeechSegment:
        pad = self.o.speech_pad
        seg = SpeechSegment(round(max(start - pad, self.last_end), 4),
                            round(min(end + pad, limit), 4))
        self.last_end = seg.end
        return seg

    def push(self, probs: np.ndarray) -> list[SpeechSegment]:
        found: list[SpeechSegment] = []
        o = self.o
        for p in probs.tolist():
            i = self.index
            self.index += 1
            if p >= o.threshold:
                self.temp_end = None
                if self.start is None:
                    self.start = i
                continue
            if self.start is None or p >= o.neg_threshold:
                continue
            if self.temp_end is None:
                self.temp_end = i
            if i - self.temp_end < self.min_silence:
                continue
            if self.temp_end - self.start > self.min_speech:
                found.append(self._emit(self._time(self.start), self._time(self.temp_end),
                                        self._time(i)))
            self.start = self.temp_end = None
        return found

    def finish(self, end: float) -> list[SpeechSegment]:
        """Close the open segment, if any, at media time ``end``."""
        if self.start is None:
            return []
        start, self.start, self.temp_end = self.start, None, None
        if end - self._time(start) <= self.o.min_speech:
            return []
        return [self._emit(self._time(start), end, end)]

    def _time(self, index: int) -> float:
        return self.origin + index * WINDOW_SECONDS


def _check_file(path: Path) -> None:
    if not path.exists():
        raise GapError(f"Cannot find the file {path}.")
    if not path.is_file():
        raise GapError(f"{path} is not a file.")


def _open(path: Path) -> Any:
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise GapError(unreadable_message(path.name, exc)) from exc


def _declared_duration(container: Any, stream: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _samples(container: Any, stream: Any, path: Path, start: float, info: ScanInfo,
             ) -> Iterator[tuple[float, np.ndarray]]:
    """16 kHz mono float32 blocks from ``start``; each with the media time of its first sample.

    Only the first block's time is read from the file: later blocks follow on without gaps, and
    a hole in the sound's timestamps (damage) is filled with silence so they stay in time.
    Unreadable parts are skipped and kept in ``info.damage``.
    """
    offset = container.start_time / 1_000_000 if container.start_time is not None else 0.0
    if start > 0:
        try:
            container.seek(int((start + offset) * 1_000_000), backward=True, any_frame=False)
        except av.FFmpegError as exc:
            log.info("seek in %s failed (%s); decoding from the start", path.name, exc)
            container.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    clock: float | None = None
    drop = 0
    given = 0  # samples yielded: the sound reaches clock + given / SAMPLE_RATE
    broken_since: float | None = None
    bad_in_a_row = 0

    def reached() -> float:
        return start if clock is None else clock + given / SAMPLE_RATE

    def convert(frames: Iterable[Any]) -> Iterator[tuple[float, np.ndarray]]:
        nonlocal drop, given
        for out in frames:
            block = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            if drop:
                cut = min(drop, block.size)
                block, drop = block[cut:], drop - cut
            if block.size:
                given += block.size
                yield clock, block  # type: ignore[misc]

    def silence(seconds: float) -> Iterator[tuple[float, np.ndarray]]:
        nonlocal given
        left = round(seconds * SAMPLE_RATE)
        while left > 0:
            block = np.zeros(min(left, SAMPLE_RATE), np.float32)
            left -= block.size
            given += block.size
            yield clock, block  # type: ignore[misc]

    def bad(exc: Exception) -> bool:
        """Count an unreadable packet; True when the rest of the sound is to be skipped."""
        nonlocal broken_since, bad_in_a_row
        info.bad_packets += 1
        bad_in_a_row += 1
        broken_since = reached() if broken_since is None else broken_since
        log.info("%s: unreadable sound near %.2f s (%r)", path.name, reached(), exc)
        if bad_in_a_row <= MAX_BAD_PACKETS:
            return False
        if clock is None:
            raise GapError(f"The sound of {path.name} could not be read: "
                           f"{why_unreadable(exc)}.") from exc
        return True

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:
            if bad(exc):
                break
            packets = container.demux(stream)
            continue
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            if bad(exc):
                break
            continue
        bad_in_a_row = 0
        for frame in frames:
            at = (float(frame.pts * frame.time_base) - offset
                  if frame.pts is not None and frame.time_base is not None else None)
            if clock is None:
                first = at if at is not None else start
                clock = max(first, start)
                drop = max(0, round((start - first) * SAMPLE_RATE))
            elif at is not None and at - reached() > HOLE:
                if at - reached() > DAMAGED_HOLE and broken_since is None:
                    broken_since = reached()
                yield from silence(at - reached())
            if broken_since is not None:  # sound again: the damage ends here
                info.damaged(Damage(broken_since, max(broken_since, reached())))
                broken_since = None
            yield from convert(resampler.resample(frame))
    if clock is not None:
        yield from convert(resampler.resample(None))
    end = declared_end(container, stream)
    if broken_since is not None:
        info.damaged(Damage(broken_since))
    elif end is not None and reached() < end - EARLY_END:
        info.damaged(Damage(reached()))


def scan_speech(path: str | os.PathLike[str], engine: VadEngine | None = None,
                start: float = 0.0, stop: float | None = None, chunk_seconds: float = 20.0,
                cancel: threading.Event | None = None, *, options: VadOptions | None = None,
                on_progress: ProgressCallback | None = None,
                info: ScanInfo | None = None) -> Iterator[SpeechSegment]:
    """Yield the speech in ``path`` between ``start`` and ``stop`` seconds, as it is found.

    Audio is decoded and judged ``chunk_seconds`` at a time; between chunks ``cancel`` is
    checked (the generator then ends early) and ``on_progress(done_seconds, duration)`` is
    called (``duration`` is 0.0 when the file does not declare one). ``engine`` defaults to the
    best available (:func:`~models.vad.choose_vad`); it is reset first, and must not be used by
    another scan at the same time. A file with no sound track yields nothing. ``info``, when
    given, is filled in with what the scan learnt. Raises :class:`GapError` for a missing or
    unreadable file.
    """
    info = info if info is not None else ScanInfo()
    options = options or VadOptions()
    if engine is None:
        engine = choose_vad()[0]
    file = Path(path)
    start = max(0.0, float(start))
    chunk = max(WINDOW, int(chunk_seconds * SAMPLE_RATE))
    container = _open(file)
    try:
        stream = next(iter(container.streams.audio), None)
        info.has_audio = stream is not None
        info.duration = _declared_duration(container, stream)
        info.end = start
        if stream is None:
            return
        if cancel is not None and cancel.is_set():
            info.cancelled = True
            return
        total = info.duration or 0.0
        engine.reset()
        segmenter: _Segmenter | None = None
        blocks: list[np.ndarray] = []
        held = fed = 0
        done = start

        def judge(final: bool) -> list[SpeechSegment]:
            nonlocal blocks, held, fed, done
            audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
            blocks, held = [], 0
            done += audio.size / SAMPLE_RATE
            fed += audio.size
            if final and fed % WINDOW:  # complete the last window with silence
                audio = np.concatenate([audio, np.zeros(WINDOW - fed % WINDOW, np.float32)])
            assert segmenter is not None
            found = segmenter.push(engine.probabilities(audio))
            return found + segmenter.finish(done) if final else found

        try:
            for clock, block in _samples(container, stream, file, start, info):
                if segmenter is None:
                    segmenter = _Segmenter(options, clock)
                    done = clock
                if stop is not None:
                    room = round((stop - done) * SAMPLE_RATE) - held
                    if room <= 0:
                        break
                    block = block[:room]
                blocks.append(block)
                held += block.size
                if held >= chunk:
                    yield from judge(final=False)
                    info.end = done
                    if on_progress is not None:
                        on_progress(done, total)
                    if cancel is not None and cancel.is_set():
                        info.cancelled = True
                        return
        except av.FFmpegError as exc:
            raise GapError(f"The sound of {file.name} could not be read: "
                           f"{why_unreadable(exc)}.") from exc
        if segmenter is not None:
            yield from judge(final=True)
            info.end = done
            if on_progress is not None:
                on_progress(done, total)
    finally:
        container.close()


def gaps_from_speech(speech: Iterable[SpeechSegment], duration: float, min_gap: float = 1.2,
                     pad: float = 0.15, start: float = 0.0) -> list[Gap]:
    """The stretches of ``[start, duration]`` with no speech, as gaps of at least ``min_gap``.

    Each gap is shrunk by ``pad`` where it meets speech, so narration neither clips the end of
    a line nor runs into the next; ``start`` and ``duration`` themselves are not padded.
    Everything that is not speech (music, effects, silence) is a gap.
    """
    gaps: list[Gap] = []

    def add(begin: float, end: float) -> None:
        if end - begin >= min_gap and end - begin > 0:
            gaps.append(Gap(round(begin, 4), round(end, 4)))

    cursor, after_speech = start, False
    for seg in sorted(speech, key=lambda s: s.start):
        s, e = max(seg.start, start), min(seg.end, duration)
        if e <= cursor or e <= s:
            continue
        if s > cursor:
            add(cursor + (pad if after_speech else 0.0), s - pad)
        cursor, after_speech = max(cursor, e), True
    add(cursor + (pad if after_speech else 0.0), duration)
    return gaps


def _cache_file(path: Path, engine: str, min_gap: float, pad: float) -> Path:
    try:
        return cache_path(path, "gaps", f"-{engine}-{min_gap}-{pad}.json")
    except OSError as exc:
        raise GapError(f"Cannot read {path.name} ({exc.strerror or exc}).") from exc


def _load_cache(file: Path, options: VadOptions) -> GapAnalysis | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data["version"] != CACHE_VERSION or data["options"] != asdict(options):
            return None
        return GapAnalysis(
            gaps=tuple(Gap(float(a), float(b)) for a, b in data["gaps"]),
            speech=tuple(SpeechSegment(float(a), float(b)) for a, b in data["speech"]),
            duration=float(data["duration"]), has_audio=bool(data["has_audio"]),
            engine=str(data["engine"]), notes=tuple(str(n) for n in data["notes"]),
            from_cache=True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the unreadable gap cache %s (%s)", file, exc)
        return None


def _save_cache(file: Path, result: GapAnalysis, options: VadOptions) -> None:
    data = {"version": CACHE_VERSION, "options": asdict(options), "duration": result.duration,
            "has_audio": result.has_audio, "engine": result.engine, "notes": list(result.notes),
            "speech": [[s.start, s.end] for s in result.speech],
            "gaps": [[g.start, g.end] for g in result.gaps]}
    tmp = ""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gaps-", suffix=".tmp", dir=file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, file)
    except OSError as exc:
        log.warning("could not save the gap cache %s (%s); continuing without it", file, exc)
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def cached_analysis(path: str | os.PathLike[str], engine: str, min_gap: float = 1.2,
                    pad: float = 0.15) -> GapAnalysis | None:
    """What :func:`analyse` found in ``path`` with the detector named ``engine``, from the
    cache (``narrate prepare`` leaves it); None when it has not been analysed whole."""
    try:
        return _load_cache(_cache_file(Path(path), engine, min_gap, pad), VadOptions())
    except GapError:
        return None


def analyse(path: str | os.PathLike[str], engine: VadEngine | None = None, min_gap: float = 1.2,
            pad: float = 0.15, on_progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None, use_cache: bool = True,
            chunk_seconds: float = 20.0) -> GapAnalysis:
    """Find every speech segment and gap in ``path``.

    ``engine`` defaults to the best available voice detector; an unusable one is replaced by
    :class:`~models.vad.EnergyVad` with a note. ``on_progress(done_seconds, duration)`` is called
    after each chunk. Results are cached by the file's content, the engine and the gap settings.
    Raises :class:`GapError` for a missing or unreadable file and :class:`GapCancelled` when
    ``cancel`` is set before the end.
    """
    began = time.perf_counter()
    file = Path(path)
    notes: list[str] = []
    if engine is None:
        engine, chosen = choose_vad()
        notes += chosen
    else:
        problem = engine.problem()
        if problem:
            notes += [f"{engine.name}: {problem}", "Finding speech with energy, a rough "
                      "loudness rule."]
            engine = EnergyVad()
    _check_file(file)
    options = VadOptions()
    store = _cache_file(file, engine.name, min_gap, pad)
    if use_cache:
        cached = _load_cache(store, options)
        if cached is not None:
            return replace(cached, notes=(*notes, *cached.notes),
                           elapsed=time.perf_counter() - began)
    info = ScanInfo()
    speech = tuple(scan_speech(file, engine, chunk_seconds=chunk_seconds, cancel=cancel,
                               options=options, on_progress=on_progress, info=info))
    if info.cancelled:
        raise GapCancelled(f"The search for speech in {file.name} was stopped.")
    duration = info.duration if info.duration is not None else info.end
    duration = round(max(duration, 0.0), 4)
    found: list[str] = []
    if not info.has_audio:
        found.append(NO_SOUND_NOTE)
    elif not speech:
        found.append(NO_SPEECH_NOTE)
    if info.damage:
        found.append(damage_message(file.name, info.damage, SOUND_OUTCOME))
    result = GapAnalysis(gaps=tuple(gaps_from_speech(speech, duration, min_gap, pad)),
                         speech=speech, duration=duration, has_audio=info.has_audio,
                         engine=engine.name, notes=tuple(found), damage=tuple(info.damage))
    if use_cache and not info.damage:  # a damaged file's analysis is not the whole story
        _save_cache(store, result, options)  # notes about this file only, not the engine chain
    return replace(result, notes=(*notes, *found), elapsed=time.perf_counter() - began)


__all__ = ["GapAnalysis", "GapCancelled", "GapError", "ScanInfo", "SpeechSegment", "VadOptions",
           "analyse", "cached_analysis", "gaps_from_speech", "scan_speech"]
