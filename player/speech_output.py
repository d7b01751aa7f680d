"""Plays synthesized speech with a second, audio-only libmpv instance and records what was said.

The recorder keeps, for every utterance, the film time and wall time when its audio started and
ended, so tests (and users preparing described videos) can check what was spoken and when.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from player.playback import import_mpv
from player.speech import SpeechClip, SpeechEngine, Synthesizer, SynthRequest, Voice, choose_engine

log = logging.getLogger(__name__)


@dataclass
class SpokenRecord:
    """One utterance: what, when (film clock and wall clock), and how the film was handled."""

    text: str
    source: str
    mode: str
    media_start: float
    wall_start: float
    duration: float
    media_end: float | None = None
    wall_end: float | None = None
    interrupted: bool = False


class SpeechOutput(QObject):
    """Synthesize, then play; one utterance at a time, a new one replaces the current one."""

    started = Signal(object)  # SpokenRecord
    finished = Signal(object)  # SpokenRecord
    problem = Signal(str)
    _synth_done = Signal(int, object, str)
    _audio_started = Signal()
    _audio_ended = Signal()

    def __init__(self, clock: Callable[[], float], audio_options: Mapping[str, str] | None = None,
                 chain: tuple[SpeechEngine, ...] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        notes: tuple[str, ...] = ()
        if chain is None:
            choice = choose_engine()
            notes = choice.notes
            chain = (choice.engine,) if choice.engine else ()
            if choice.engine is not None and choice.engine.name.startswith("pyttsx3"):
                from player.speech import EspeakCliEngine  # noqa: PLC0415

                if not EspeakCliEngine().problem():
                    chain = (choice.engine, EspeakCliEngine())
        self.notes = notes
        self.records: list[SpokenRecord] = []
        self._key = 0
        self._pending: dict[int, tuple[str, str, str]] = {}
        self._current: SpokenRecord | None = None
        self._loaded_key = -1
        self._synth = Synthesizer(chain, self._synth_done.emit) if chain else None
        self._synth_done.connect(self._on_synth_done)
        self._audio_started.connect(self._on_audio_started)
        self._audio_ended.connect(self._on_audio_ended)
        mpv = import_mpv()
        opts: dict[str, Any] = {"video": "no", "idle": "yes", "keep_open": "no",
                                "input_default_bindings": "no", "ao": "pulse,alsa,null"}
        for key, value in (audio_options or {}).items():
            opts[key.replace("-", "_")] = value
        self._mpv = mpv.MPV(**opts)
        self._mpv_module = mpv
        self._mpv.register_event_callback(self._on_event)
        self._closed = False

    @property
    def engine_name(self) -> str:
        return self._synth.engine_name if self._synth else "none"

    @property
    def has_voice(self) -> bool:
        return self._synth is not None

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._pending)

    def say(self, text: str, voice: Voice, source: str = "track", mode: str = "duck") -> int:
        """Queue ``text`` for synthesis; it replaces whatever is being said. Returns its key."""
        self.stop()
        self._key += 1
        if self._synth is None:
            self.problem.emit("No speech engine is available; descriptions are shown as text.")
            return self._key
        self._pending = {self._key: (text, source, mode)}
        self._synth.submit(SynthRequest(self._key, text, voice))
        return self._key

    def stop(self) -> None:
        """Silence now. A record being spoken is closed as interrupted."""
        self._pending.clear()
        if self._current is not None:
            rec = self._current
            self._current = None
            self._close(rec, interrupted=True)
            if not self._closed:
                try:
                    self._mpv.command("stop")
                except (SystemError, RuntimeError):
                    log.debug("speech mpv stop failed", exc_info=True)

    def _close(self, rec: SpokenRecord, interrupted: bool) -> None:
        rec.media_end = self._clock()
        rec.wall_end = time.monotonic()
        rec.interrupted = interrupted
        self.finished.emit(rec)

    # ----- worker and mpv threads arrive here through signals -----------------------------
    @Slot(int, object, str)
    def _on_synth_done(self, key: int, clip: SpeechClip | None, error: str) -> None:
        if error:
            self.problem.emit(error)
        job = self._pending.pop(key, None)
        if job is None or clip is None:
            return
        text, source, mode = job
        self._current = SpokenRecord(text=text, source=source, mode=mode, media_start=-1.0,
                                     wall_start=-1.0, duration=clip.duration)
        self._loaded_key = key
        if not self._closed:
            self._mpv.loadfile(str(clip.path))

    def _on_event(self, event: Any) -> None:
        ids = self._mpv_module.MpvEventID
        eid = event.event_id.value
        if eid == ids.PLAYBACK_RESTART:
            self._audio_started.emit()
        elif eid == ids.END_FILE and event.data.reason in (event.data.EOF, event.data.ERROR):
            self._audio_ended.emit()

    @Slot()
    def _on_audio_started(self) -> None:
        rec = self._current
        if rec is not None and rec.wall_start < 0:
            rec.media_start = self._clock()
            rec.wall_start = time.monotonic()
            self.records.append(rec)
            self.started.emit(rec)

    @Slot()
    def _on_audio_ended(self) -> None:
        rec = self._current
        if rec is None or rec.wall_start < 0:
            return
        # Some audio outputs (the null one in tests, some Bluetooth sinks) report the end while
        # their buffer still plays; the clip's own length is the truth, so wait for it.
        remaining = rec.wall_start + rec.duration - time.monotonic()
        if remaining > 0.02:
            QTimer.singleShot(int(remaining * 1000), lambda r=rec: self._finish(r))
        else:
            self._finish(rec)

    def _finish(self, rec: SpokenRecord) -> None:
        if self._current is rec:
            self._current = None
            self._close(rec, interrupted=False)

    def close(self) -> None:
        if self._closed:
            return
        self.stop()
        self._closed = True
        if self._synth is not None:
            self._synth.close()
        try:
            self._mpv.terminate()
        except Exception:  # noqa: BLE001 - teardown must not raise
            log.exception("speech mpv terminate failed")
