"""The feeder: reads a film and hands its sampled frames to an analysis worker.

:class:`LookAhead` keeps only a few frames queued in the worker, so urgent requests (describe
now, questions) never wait behind a long backlog, and memory stays bounded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from models.pipeline.reader import FrameReader
from models.pipeline.worker import AnalysisWorker, Priority, Request

log = logging.getLogger(__name__)


class LookAhead:
    """Read ``path`` at ``fps`` and feed its frames to ``worker`` at look-ahead priority.

    At most ``max_queued`` look-ahead requests wait in the worker at any time (the reader waits
    otherwise, so memory stays bounded). Results arrive through the worker's ``on_result``.
    ``reader_options`` go to :class:`~models.pipeline.reader.FrameReader` (``max_width``, ``queue_size``,
    ``on_damage`` for a part of the film that cannot be read).
    """

    def __init__(self, path: str | os.PathLike[str], worker: AnalysisWorker, fps: float = 2.0,
                 start: float = 0.0, max_queued: int = 2, **reader_options: Any) -> None:
        if max_queued < 1:
            raise ValueError(f"At least one request must be allowed to wait, not {max_queued}.")
        self.worker = worker
        self.max_queued = max_queued
        self.reader = FrameReader(path, fps=fps, start=start, **reader_options)
        self.submitted = 0
        self._lock = threading.Lock()
        self._generation = 0
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        """True once every frame up to the end was handed to the worker (until the next seek)."""
        return self._finished.is_set()

    @property
    def over(self) -> bool:
        """Nothing more will come: every frame was handed over, or the feeding thread ended
        (it stopped, or failed, which is logged)."""
        return self._finished.is_set() or (self._thread is not None
                                           and not self._thread.is_alive())

    @property
    def position(self) -> float:
        """How far the reader has got, in seconds on the media clock."""
        return self.reader.position

    def start(self) -> LookAhead:
        if self._thread is None:
            self.reader.start()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"look-ahead {self.reader.path.name}")
            self._thread.start()
        return self

    def seek(self, t: float) -> None:
        """Analyse from ``t`` on: the reader restarts there, queued look-ahead work is dropped,
        and the stages are flushed and rewound (reset, keeping who is who) before the first new
        frame."""
        with self._lock:
            self._generation += 1
            self._finished.clear()
            self.reader.seek(t)
            self.worker.cancel_lookahead()
            self.worker.reset_stages(rewind=True)

    def stop(self) -> None:
        """Stop reading and join; the worker keeps running (it belongs to the caller)."""
        self._stopping.set()
        self.reader.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def __enter__(self) -> LookAhead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._lock:  # a frame and its generation are read together
                    frame = self.reader.get(0.05)
                    generation = self._generation
                    if frame is None and self.reader.done:
                        self._finished.set()
                if frame is None:
                    if self.reader.done:
                        time.sleep(0.05)  # at the end: wait for a seek or a stop
                    continue
                while not self.worker.wait_until_queued_below(Priority.LOOKAHEAD,
                                                              self.max_queued, 0.05):
                    if (self._stopping.is_set() or self.worker.stopped
                            or generation != self._generation):
                        break
                if self.worker.stopped:
                    return
                with self._lock:
                    if self._stopping.is_set() or generation != self._generation:
                        continue  # read before a seek
                    self.worker.submit(Request(Priority.LOOKAHEAD, frame.t, frame.image))
                    self.submitted += 1
        except Exception:
            log.exception("the look-ahead of %s failed", self.reader.path.name)
