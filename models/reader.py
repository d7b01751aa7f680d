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
from collections.abc import Iterator
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


class ReaderError(Exception):
    """A file whose pictures cannot be read; the message names the file and says why."""


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
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 2.0, max_width: int = 640,
                 queue_size: int = 16, start: float = 0.0) -> None:
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
            raise ReaderError(f"Cannot read the pictures of {path.name}: it is not a media file "
                              f"that FFmpeg understands ({exc}).") from exc
        try:
            videos = [s for s in container.streams.video
                      if not (s.disposition & av.stream.Disposition.attached_pic)]
            if not videos:
                extra = " (only cover art)" if container.streams.video else ""
                raise ReaderError(f"{path.name} has no video track{extra}: there are no pictures "
                                  f"to describe.")
            stream = videos[0]
            if stream.codec_context is None:
                raise ReaderError(f"Cannot decode the pictures of {path.name}: FFmpeg has no "
                                  f"decoder for its video format.")
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
        bad_in_a_row = 0
        corrupt_run = 0
        packets = self._container.demux(self._stream)
        while True:
            if self._interrupted():
                return False
            try:
                packet = next(packets)
            except StopIteration:
                return True
            except av.FFmpegError as exc:
                bad_in_a_row += 1
                self._error(f"unreadable data near {last_t or target:.2f} s ({exc})")
                if bad_in_a_row > MAX_BAD_IN_A_ROW:
                    self._error("too much unreadable data: the rest of the file is skipped")
                    return True
                packets = self._container.demux(self._stream)
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                bad_in_a_row += 1
                self._error(f"a damaged frame near {last_t or target:.2f} s was skipped ({exc})")
                if bad_in_a_row > MAX_BAD_IN_A_ROW:
                    self._error("too much damaged data: the rest of the file is skipped")
                    return True
                continue
            bad_in_a_row = 0
            for frame in decoded:
                t = self._time_of(frame, last_t, base)
                last_t = t
                keyframe = keyframe or bool(frame.key_frame)
                if frame.is_corrupt:
                    corrupt_run += 1
                    if corrupt_run <= MAX_CORRUPT_RUN:
                        self._error(f"a damaged frame at {t:.2f} s was skipped")
                        continue
                else:
                    corrupt_run = 0
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
