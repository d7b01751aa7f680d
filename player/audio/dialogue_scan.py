"""Finds the dialogue in the soundtrack ahead of the playhead, on a worker thread.

The scan starts at the playhead in short windows (so the first pauses are known within a
fraction of a second), then longer ones, and restarts where the user seeks to if that part is
not known yet. Results reach the Qt thread only through the ``progress`` signal.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from models.types import Gap

log = logging.getLogger(__name__)

FIRST_WINDOW = 8.0
WINDOW = 60.0
MIN_GAP = 1.2
PAD = 0.15


def _merge(intervals: list[tuple[float, float]], join: float = 0.05) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + join:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class DialogueScanner(QObject):
    """Runs dialogue detection over one file; emits what is known so far after each window."""

    # gaps (tuple[Gap, ...]), covered (list of (start, end)), has_audio, complete
    progress = Signal(object, object, bool, bool)
    problem = Signal(str)  # a note (another detector took over): detection goes on
    failed = Signal(str)  # detection stopped: what it has not covered is not known

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._duration = 0.0
        self._speech: list[tuple[float, float]] = []
        self._covered: list[tuple[float, float]] = []
        self._engine = None
        self.engine_name = ""

    def start(self, path: str | Path, duration: float, at: float = 0.0) -> None:
        """Scan ``path`` (``duration`` seconds long) from ``at`` onwards."""
        self.stop()
        with self._lock:
            self._path = Path(path)
            self._duration = duration
            self._speech = []
            self._covered = []
        self._launch(at)

    def seek(self, t: float) -> None:
        """The user moved to ``t``: scan from there unless it is already known."""
        if self._path is None:
            return
        with self._lock:
            known = any(a <= t <= b - 2.0 for a, b in self._covered)
        if not known:
            self.stop()
            self._launch(t)

    def stop(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._cancel = threading.Event()

    def _launch(self, at: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(max(0.0, at), self._cancel),
                                        name="dialogue-scan", daemon=True)
        self._thread.start()

    # ----- worker thread ---------------------------------------------------------------------
    def _run(self, at: float, cancel: threading.Event) -> None:
        try:
            self._scan(at, cancel)
        except Exception as exc:  # noqa: BLE001 - reported to the user, narration goes on
            log.exception("dialogue scan failed")
            self.failed.emit(f"Dialogue detection stopped: {exc}. Descriptions are spoken at "
                             f"their times, over any dialogue.")

    def _scan(self, at: float, cancel: threading.Event) -> None:
        from models.gaps import GapError, cached_analysis, scan_speech  # noqa: PLC0415
        from models.vad import choose_vad  # noqa: PLC0415

        path = self._path
        assert path is not None
        if not _has_audio(path):
            self.progress.emit((Gap(0.0, max(self._duration, 0.0)),), [(0.0, self._duration)],
                               False, True)
            return
        if self._engine is None:
            self._engine, notes = choose_vad()
            self.engine_name = self._engine.name
            for note in notes:
                self.problem.emit(f"Dialogue detection: {note}")
        cached = cached_analysis(path, self._engine.name, MIN_GAP, PAD)
        if cached is not None:  # a prepared film: its pauses are known from the first instant
            with self._lock:
                self._speech = [(s.start, s.end) for s in cached.speech]
                self._covered = [(0.0, max(cached.duration, self._duration))]
            self._emit(complete=True)
            return
        order = [(at, self._duration), (0.0, at)] if at > 0 else [(0.0, self._duration)]
        for begin, end in order:
            t = begin
            window = FIRST_WINDOW
            while t < end - 1e-3 and not cancel.is_set():
                stop = min(t + window, end)
                self._engine.reset()
                try:
                    found = [(s.start, s.end) for s in scan_speech(
                        path, engine=self._engine, start=t, stop=stop, cancel=cancel)]
                except GapError as exc:
                    self.failed.emit(f"{exc} Descriptions are spoken at their times, over any "
                                     f"dialogue.")
                    return
                if cancel.is_set():
                    return
                with self._lock:
                    self._speech = _merge(self._speech + found)
                    self._covered = _merge(self._covered + [(t, stop)])
                self._emit(complete=False)
                t = stop
                window = WINDOW
        self._emit(complete=not cancel.is_set())

    def _emit(self, complete: bool) -> None:
        from models.gaps import SpeechSegment, gaps_from_speech  # noqa: PLC0415

        with self._lock:
            speech = [SpeechSegment(a, b) for a, b in self._speech]
            covered = list(self._covered)
        gaps: list[Gap] = []
        for a, b in covered:
            inside = [s for s in speech if s.end > a and s.start < b]
            gaps += gaps_from_speech(inside, duration=b, min_gap=MIN_GAP, pad=PAD, start=a)
        self.progress.emit(tuple(gaps), covered, True, complete)


def _has_audio(path: Path) -> bool:
    import av  # noqa: PLC0415

    try:
        with av.open(str(path)) as container:
            return any(s.type == "audio" for s in container.streams)
    except (av.FFmpegError, OSError):
        return False
