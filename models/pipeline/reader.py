"""A look-ahead frame reader: decodes a video on a background thread, a few frames a second.

:class:`FrameReader` decodes the first video track with PyAV (threaded decoding), keeps the first
frame at or after each sample time (``fps`` samples a second on the media clock), scales it down
and turns it upright, and hands it over as a :class:`Frame` through a bounded queue: when the
consumer falls behind the decoder waits, so memory stays flat for a film of any length.

Times are seconds on the media clock: the container's start time is zero, as in the player and
in :mod:`models.gaps`. Frames are RGB ``uint8`` arrays of shape (height, width, 3), read-only
(they are shared between perception stages).

Typical use::

    with FrameReader("film.mp4", fps=2.0) as reader:
        for frame in reader.frames():
            ...
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

EPSILON = 1e-4
"""Seconds of slack when comparing a frame's time with a sample time (float rounding)."""
MAX_BAD_IN_A_ROW = 200
"""Undecodable packets in a row before the rest of a file is called unreadable."""
MAX_CORRUPT_RUN = 50
"""Damaged frames in a row that are skipped; after that they are kept (a poor picture beats none)."""
MAX_ERRORS_KEPT = 200
"""Messages kept in :attr:`FrameReader.errors`; :attr:`FrameReader.error_count` counts them all."""
POLL = 0.05
"""Seconds between checks of the stop and seek flags while waiting."""
EARLY_END = 2.0
"""Seconds a track may end before its declared length before the rest counts as unreadable."""


class ReaderError(Exception):
    """A file whose pictures cannot be read; the message names the file and says why."""


@dataclass(frozen=True)
class Damage:
    """A stretch of a film that could not be read, in seconds on the media clock: from
    ``start`` to ``end``, or to the end of the film when ``end`` is None."""

    start: float
    end: float | None = None


def why_unreadable(exc: BaseException) -> str:
    """Why a file could not be read, in words for people (never FFmpeg's error numbers)."""
    if isinstance(exc, PermissionError):
        return "you don't have permission to read it"
    if isinstance(exc, FileNotFoundError):
        return "the file is not there"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    if isinstance(exc, av.InvalidDataError):
        return "it is not a video file, or it is damaged"
    if isinstance(exc, (av.DecoderNotFoundError, av.DemuxerNotFoundError)):
        return "it is in a format this program cannot decode"
    if isinstance(exc, EOFError):
        return "it ends too soon: it is damaged or incomplete"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "it is damaged, or in a format this program cannot read"


def unreadable_message(name: str, exc: BaseException) -> str:
    """``name`` could not be read, and why, as one sentence."""
    return f"{name} could not be read: {why_unreadable(exc)}."


def clock_time(seconds: float) -> str:
    """0:42, 18:02 or 10:00:00: a time in the film as people say it."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def merge_damage(spans: Sequence[Damage], join: float = 1.0) -> list[Damage]:
    """``spans`` in order, those that overlap or lie within ``join`` seconds made one."""
    out: list[Damage] = []
    for span in sorted(spans, key=lambda d: d.start):
        last = out[-1] if out else None
        if last is not None and (last.end is None or span.start <= last.end + join):
            end = None if last.end is None or span.end is None else max(last.end, span.end)
            out[-1] = Damage(last.start, end)
        else:
            out.append(span)
    return out


def damage_message(name: str, spans: Sequence[Damage],
                   outcome: str = "descriptions there may be missing") -> str:
    """One sentence saying which part of ``name`` could not be read, and ``outcome`` ("" when
    nothing was damaged)."""
    spans = merge_damage(spans)
    if not spans:
        return ""
    first = spans[0]
    if first.end is None:
        where = f"from about {clock_time(first.start)} to the end"
    elif first.end - first.start < 1.0:
        where = f"at about {clock_time(first.start)}"
    else:
        where = f"from about {clock_time(first.start)} to {clock_time(first.end)}"
    if len(spans) == 1:
        return f"Part of {name} could not be read ({where}); {outcome}."
    others = len(spans) - 1
    return (f"Parts of {name} could not be read ({where}, and {others} other "
            f"place{'s' if others > 1 else ''}); {outcome}.")


def declared_end(container: Any, stream: Any) -> float | None:
    """Where ``stream`` says it ends, in seconds on the media clock (the container's start is
    zero): its own length if it gives one (Matroska keeps it in a DURATION tag), else the
    container's."""
    offset = container.start_time / 1_000_000 if container.start_time is not None else 0.0
    begin = (float(stream.start_time * stream.time_base) - offset
             if stream.start_time is not None and stream.time_base is not None else 0.0)
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return begin + float(stream.duration * stream.time_base)
    tag = str(stream.metadata.get("DURATION", ""))
    try:
        hours, minutes, seconds = tag.split(":")
        return begin + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        pass
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return None


@dataclass(frozen=True)
class Frame:
    """One sampled picture.

    ``t`` is its exact time (from its timestamp) on the media clock; ``image`` is RGB ``uint8``
    (height, width, 3), upright and scaled down, read-only; ``index`` counts the frames this reader
    has produced (it only grows, across seeks too); ``keyframe_hint`` is true when the encoder
    placed a keyframe since the previous sample (encoders often do at a cut).
    """

    t: float
    image: np.ndarray = field(repr=False, compare=False)
    index: int = 0
    keyframe_hint: bool = False

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def next_sample_time(t: float, fps: float) -> float:
    """The first sample time on the ``1/fps`` grid strictly after a frame kept at ``t``."""
    return (math.floor(t * fps + EPSILON) + 1) / fps


def sample_times(start: float, end: float, fps: float) -> list[float]:
    """The times a reader started at ``start`` aims for, up to ``end``: ``start`` itself, then
    every multiple of ``1/fps`` after it. Each is served by the first frame at or after it."""
    if fps <= 0:
        raise ValueError(f"A sampling rate must be above zero, not {fps}.")
    times: list[float] = []
    t = start
    while t < end - EPSILON:
        times.append(t)
        t = next_sample_time(t, fps)
    return times


def _first(*values: float | None) -> float:
    """The first value that is not None."""
    return next(v for v in values if v is not None)


def _even(x: float) -> int:
    """The nearest even whole number, at least 2."""
    return max(2, int(math.floor(x / 2 + 0.5)) * 2)


def _rotation_of(frame: Any, fallback: int) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) that turn ``frame`` upright."""
    try:
        degrees = float(frame.rotation)
    except (AttributeError, TypeError, ValueError):
        degrees = 0.0
    if not math.isfinite(degrees) or round(degrees) == 0:
        return fallback
    return int(round(degrees / 90.0)) % 4 * 90


def _stream_rotation(stream: Any) -> int:
    """The legacy ``rotate`` tag (clockwise degrees), as counter-clockwise degrees."""
    try:
        clockwise = float(stream.metadata.get("rotate", "0"))
    except (TypeError, ValueError):
        return 0
    return int(round(-clockwise / 90.0)) % 4 * 90


_END = object()


class FrameReader:
    """Decode ``path`` ahead of the consumer, ``fps`` frames a second, at most ``max_width`` wide.

    Construction opens the file and checks it has a picture (raising :class:`ReaderError` with a
    message for people); :meth:`start` starts the decoding thread (``frames`` and ``get`` start it
    too); :meth:`stop` ends and joins it. One consumer thread reads frames; :meth:`seek` and
    :meth:`stop` may be called from any thread.

    A part that cannot be read (data FFmpeg refuses, frames it marks damaged, or pictures that
    stop before the track's declared end) is skipped, kept in :attr:`damage` and passed to
    ``on_damage`` (on the decoding thread) as soon as its end is known.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 2.0, max_width: int = 640,
                 queue_size: int = 16, start: float = 0.0,
                 on_damage: Callable[[Damage], None] | None = None) -> None:
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"A sampling rate must be above zero, not {fps}.")
        if max_width < 2:
            raise ValueError(f"Frames must be at least 2 pixels wide, not {max_width}.")
        if queue_size < 1:
            raise ValueError(f"The queue must hold at least one frame, not {queue_size}.")
        self.path = Path(path)
        self.fps = float(fps)
        self.max_width = int(max_width)
        self.queue_size = int(queue_size)
        self.errors: list[str] = []
        self.error_count = 0
        self.damage: list[Damage] = []
        """The stretches found unreadable so far, in order, merged (a seek may find one again)."""
        self._on_damage = on_damage
        self._container, self._stream = self._open()
        self._offset = (self._container.start_time / 1_000_000
                        if self._container.start_time is not None else 0.0)
        self._fallback_rotation = _stream_rotation(self._stream)
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._frame_step = 1.0 / float(rate) if rate else 1.0 / 25.0
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=self.queue_size)
        self._lock = threading.Lock()
        self._generation = 0
        self._seek_to: float | None = max(0.0, float(start))
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._done = False
        self._position = max(0.0, float(start))
        self._index = 0
        self._sizes: dict[tuple[int, int, int, float], tuple[int, int]] = {}
        self._reach = 0.0

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> tuple[Any, Any]:
        path = self.path
        if not path.exists():
            raise ReaderError(f"Cannot find the file {path}.")
        if not path.is_file():
            raise ReaderError(f"{path} is not a file.")
        try:
            container = av.open(str(path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise ReaderError(unreadable_message(path.name, exc)) from exc
        try:
            videos = [s for s in container.streams.video
                      if not (s.disposition & av.stream.Disposition.attached_pic)]
            if not videos:
                extra = " (only cover art)" if container.streams.video else ""
                raise ReaderError(f"{path.name} has no video track{extra}: there are no pictures "
                                  f"to describe.")
            stream = videos[0]
            if stream.codec_context is None:
                raise ReaderError(f"{path.name} could not be read: its pictures are in a format "
                                  f"this program cannot decode.")
            stream.thread_type = "AUTO"
        except BaseException:
            container.close()
            raise
        return container, stream

    # -- public API ----------------------------------------------------------------------------

    @property
    def duration(self) -> float | None:
        """The declared length in seconds, if the file says."""
        if self._container.duration is not None and self._container.duration > 0:
            return self._container.duration / 1_000_000
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader produces, judged from the stream header."""
        ctx = self._stream.codec_context
        return self._out_size(ctx.width, ctx.height, self._fallback_rotation,
                              self._aspect(self._stream.sample_aspect_ratio))

    @property
    def position(self) -> float:
        """Media time of the last frame decoded and queued (after a seek: the seek target)."""
        return self._position

    @property
    def done(self) -> bool:
        """True once the consumer has been handed the end of the stream (until the next seek)."""
        return self._done

    @property
    def queued(self) -> int:
        """Frames waiting in the queue (never more than ``queue_size``)."""
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FrameReader:
        """Start decoding on a background thread; calling it again does nothing."""
        with self._lock:
            if self._closed:
                raise ReaderError(f"The reader of {self.path.name} was stopped; open a new one.")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"frame-reader {self.path.name}")
                self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame; ``None`` after ``timeout`` seconds or at the end (then ``done``)."""
        item = self._next(timeout)
        return item if isinstance(item, Frame) else None

    def frames(self) -> Iterator[Frame]:
        """Frames until the end of the stream (or until :meth:`stop`)."""
        while True:
            item = self._next(POLL)
            if isinstance(item, Frame):
                yield item
            elif item is _END or (item is None and self._stopping.is_set()):
                return

    def seek(self, t: float) -> None:
        """Start again from ``t`` seconds: queued frames are dropped, and no frame from before the
        seek comes out once this returns. The first frame after it is the first at or after ``t``.
        """
        t = max(0.0, float(t))
        with self._lock:
            self._generation += 1
            self._seek_to = t
            self._done = False
            self._position = t
            self._drain()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End decoding and join the thread; safe to call more than once."""
        with self._lock:
            self._closed = True
            self._stopping.set()
            self._wake.set()
            thread = self._thread
            self._drain()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the frame reader of %s did not stop within %s s",
                            self.path.name, timeout)
        else:
            self._close_container()

    def __enter__(self) -> FrameReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- consumer side -------------------------------------------------------------------------

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _next(self, timeout: float | None) -> Any:
        """A :class:`Frame`, ``_END`` or ``None`` (nothing within ``timeout``)."""
        if self._thread is None and not self._closed:
            self.start()
        if self._done:
            return _END
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
            try:
                generation, item = self._queue.get(timeout=wait)
            except queue.Empty:
                if self._stopping.is_set():
                    return None
                if self._thread is not None and not self._thread.is_alive():
                    self._done = True  # the thread failed: nothing more will come
                    return _END
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            with self._lock:
                if generation != self._generation:
                    continue  # from before a seek
                if item is _END:
                    self._done = True
                return item

    # -- decoding thread -----------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)
        log.info("%s: %s", self.path.name, message)

    def _damaged(self, span: Damage) -> None:
        """Keep ``span`` (merged with what is known) and pass it on."""
        with self._lock:
            self.damage = merge_damage([*self.damage, span])
        log.info("%s: unreadable from %.2f s to %s", self.path.name, span.start,
                 "the end" if span.end is None else f"{span.end:.2f} s")
        if self._on_damage is not None:
            try:
                self._on_damage(span)
            except Exception:
                log.exception("the damage handler failed for %s", self.path.name)

    def _ended(self, broken_since: float | None, last_t: float | None, target: float) -> None:
        """At the end of the stream: a stretch still broken, or pictures that stopped well
        before the track's declared end, are unreadable to the end (from ``last_t``, the last
        whole frame). A last picture meant to stay on screen to the end (its packet says how
        long) is not damage."""
        end = declared_end(self._container, self._stream)
        seen = target if last_t is None else last_t
        if broken_since is not None:
            self._damaged(Damage(broken_since))
        elif end is not None and max(seen, self._reach) < end - max(EARLY_END,
                                                                   3 * self._frame_step):
            self._damaged(Damage(seen))

    def _run(self) -> None:
        try:
            first = True
            while not self._stopping.is_set():
                with self._lock:
                    target, self._seek_to = self._seek_to, None
                    generation = self._generation
                    self._wake.clear()
                if target is None:  # the end was reached: wait for a seek or a stop
                    self._wake.wait(POLL)
                    continue
                ended = self._decode(target, generation, seek=not first or target > 0)
                first = False
                if ended:
                    self._put(generation, _END)
        except Exception as exc:  # a bug or an unreadable file: end the stream, keep the message
            log.exception("the frame reader of %s failed", self.path.name)
            self._error(f"reading stopped: {exc}")
            self._damaged(Damage(self._position))
            with self._lock:
                generation = self._generation
            self._put(generation, _END)
        finally:
            self._close_container()

    def _close_container(self) -> None:
        try:
            self._container.close()
        except Exception as exc:  # closing must never raise
            log.debug("closing %s: %s", self.path.name, exc)

    def _interrupted(self) -> bool:
        return self._stopping.is_set() or self._seek_to is not None

    def _put(self, generation: int, item: Any) -> bool:
        """Queue ``item``, waiting while the queue is full; False when a stop or seek came first."""
        while True:
            if self._interrupted():
                return False
            try:
                self._queue.put((generation, item), timeout=POLL)
                return True
            except queue.Full:
                continue

    def _seek_container(self, target: float) -> float:
        """Seek to ``target``; returns where decoding starts on the media clock, for frames
        without timestamps: ``target`` (the keyframe the seek lands on is at or a little before
        it), or 0 when the file cannot seek (an elementary stream such as raw H.264 has no
        timestamps to seek by) and is decoded from the start again, reopened if need be."""
        try:
            self._container.seek(int((target + self._offset) * 1_000_000), backward=True,
                                 any_frame=False)
            return target
        except av.FFmpegError as exc:
            log.info("seeking in %s failed (%s); decoding from the start", self.path.name, exc)
        try:
            self._container.seek(0)
        except av.FFmpegError:  # not even to the start: open the file again
            self._close_container()
            self._container, self._stream = self._open()
        return 0.0

    def _decode(self, target: float, generation: int, seek: bool) -> bool:
        """Decode from ``target``; True at the end of the stream, False when interrupted."""
        base = self._seek_container(target) if seek else 0.0
        wanted = target
        keyframe = False
        last_t: float | None = None
        good_t: float | None = None  # the last frame decoded whole
        broken_since: float | None = None  # unreadable from here, until a whole frame comes
        bad_in_a_row = 0
        corrupt_run = 0
        self._reach = 0.0  # how far the packets read so far last, in seconds
        packets = self._container.demux(self._stream)
        while True:
            if self._interrupted():
                return False
            try:
                packet = next(packets)
            except StopIteration:
                self._ended(broken_since, good_t, target)
                return True
            except av.FFmpegError as exc:
                bad_in_a_row += 1
                broken_since = _first(broken_since, good_t, target)
                self._error(f"unreadable data near {last_t or target:.2f} s ({exc})")
                if bad_in_a_row > MAX_BAD_IN_A_ROW:
                    self._error("too much unreadable data: the rest of the file is skipped")
                    self._ended(broken_since, good_t, target)
                    return True
                packets = self._container.demux(self._stream)
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                bad_in_a_row += 1
                broken_since = _first(broken_since, good_t, target)
                self._error(f"a damaged frame near {last_t or target:.2f} s was skipped ({exc})")
                if bad_in_a_row > MAX_BAD_IN_A_ROW:
                    self._error("too much damaged data: the rest of the file is skipped")
                    self._ended(broken_since, good_t, target)
                    return True
                continue
            bad_in_a_row = 0
            if packet.pts is not None and packet.time_base is not None:
                self._reach = max(self._reach, float((packet.pts + (packet.duration or 0))
                                                     * packet.time_base) - self._offset)
            for frame in decoded:
                t = self._time_of(frame, last_t, base)
                last_t = t
                keyframe = keyframe or bool(frame.key_frame)
                if frame.is_corrupt:
                    broken_since = _first(broken_since, good_t, target)
                    corrupt_run += 1
                    if corrupt_run <= MAX_CORRUPT_RUN:
                        self._error(f"a damaged frame at {t:.2f} s was skipped")
                        continue
                else:
                    corrupt_run = 0
                    good_t = t
                    if broken_since is not None:
                        self._damaged(Damage(broken_since, max(t, broken_since)))
                        broken_since = None
                if t < wanted - EPSILON:
                    continue
                if not self._emit(frame, t, keyframe, generation):
                    return False
                keyframe = False
                wanted = next_sample_time(t, self.fps)

    def _time_of(self, frame: Any, last_t: float | None, base: float) -> float:
        """The frame's time from its timestamp; without one, a frame step after the frame
        before, and ``base`` (where decoding started) for the first frame."""
        if frame.pts is not None and frame.time_base is not None:
            return float(frame.pts * frame.time_base) - self._offset
        return base if last_t is None else last_t + self._frame_step

    @staticmethod
    def _aspect(ratio: Any) -> float:
        try:
            value = float(ratio) if ratio else 1.0
        except (TypeError, ValueError, ZeroDivisionError):
            value = 1.0
        return value if math.isfinite(value) and value > 0 else 1.0

    def _out_size(self, width: int, height: int, rotation: int, aspect: float,
                  ) -> tuple[int, int]:
        """Scaled (width, height) before turning upright, so the upright picture is at most
        ``max_width`` wide; square pixels (``aspect`` is the sample aspect ratio)."""
        key = (width, height, rotation, aspect)
        size = self._sizes.get(key)
        if size is None:
            shown_w, shown_h = width * aspect, float(height)
            sideways = rotation in (90, 270)
            upright_w = shown_h if sideways else shown_w
            scale = min(1.0, self.max_width / upright_w) if upright_w > 0 else 1.0
            limit = self.max_width // 2 * 2
            w, h = (_even(shown_w * scale), _even(shown_h * scale))
            if sideways:
                h = min(h, limit)
            else:
                w = min(w, limit)
            size = self._sizes[key] = (w, h)
        return size

    def _emit(self, frame: Any, t: float, keyframe: bool, generation: int) -> bool:
        rotation = _rotation_of(frame, self._fallback_rotation)
        width, height = self._out_size(frame.width, frame.height, rotation,
                                       self._aspect(self._stream.sample_aspect_ratio))
        try:
            image = frame.to_ndarray(width=width, height=height, format="rgb24",
                                     interpolation="AREA")
        except (av.FFmpegError, ValueError) as exc:
            self._error(f"a frame at {t:.2f} s could not be converted ({exc})")
            return True
        if rotation:
            image = np.ascontiguousarray(np.rot90(image, rotation // 90))
        image.flags.writeable = False
        with self._lock:
            if generation != self._generation:
                return False
            index = self._index
            self._index += 1
        item = Frame(t=t, image=image, index=index, keyframe_hint=keyframe)
        if not self._put(generation, item):
            return False
        with self._lock:
            if generation == self._generation:
                self._position = t
        return True
