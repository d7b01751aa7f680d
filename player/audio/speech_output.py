"""Plays synthesized speech with a second, audio-only libmpv instance and records what was said.

Speech is synthesized to a file first (``prepare``), so its length is known before it starts;
``play`` then starts it at once. The recorder keeps, for every utterance, the film time and wall
time when its audio started and ended, and the time it was planned for, so tests (and people
preparing described videos) can check what was spoken and when.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from player.audio.speech import (
    SpeechClip,
    SpeechEngine,
    Synthesizer,
    SynthRequest,
    Voice,
    choose_engine,
)
from player.media.playback import import_mpv

log = logging.getLogger(__name__)

CACHE_SIZE = 96


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
    planned: float | None = None  # the film time it was meant to start at
    speed: float = 1.0  # how fast the clip was played (fitting a gap, following the film)
    wall_requested: float = 0.0  # when play() was called
    paused_for: float = 0.0  # seconds the sentence was held because the user paused the film


class SpeechOutput(QObject):
    """Synthesize ahead, then play; one utterance at a time, a new one replaces the current one."""

    started = Signal(object)  # SpokenRecord
    finished = Signal(object)  # SpokenRecord
    prepared = Signal(str, object)  # text, SpeechClip | None
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
            chain = choice.chain
        self.notes = notes
        self.records: list[SpokenRecord] = []
        self._key = 0
        self._requests: dict[int, tuple[str, Voice]] = {}
        self._cache: OrderedDict[tuple[str, Voice], SpeechClip] = OrderedDict()
        self._waiting: tuple[str, Voice, str, str] | None = None  # say() waiting for synthesis
        self._current: SpeechClip | None = None
        self._record: SpokenRecord | None = None
        self._synth = Synthesizer(chain, self._synth_done.emit) if chain else None
        self._synth_done.connect(self._on_synth_done)
        self._audio_started.connect(self._on_audio_started)
        self._audio_ended.connect(self._on_audio_ended)
        mpv = import_mpv()
        opts: dict[str, Any] = {"video": "no", "idle": "yes", "keep_open": "no",
                                "input_default_bindings": "no", "ao": "pulse,alsa,null",
                                "audio_pitch_correction": "yes", "cache": "no"}
        for key, value in (audio_options or {}).items():
            opts[key.replace("-", "_")] = value
        self._mpv = mpv.MPV(**opts)
        self._mpv_module = mpv
        self._mpv.register_event_callback(self._on_event)
        self._closed = False
        self._paused_since: float | None = None

    @property
    def engine_name(self) -> str:
        return self._synth.engine_name if self._synth else "none"

    @property
    def has_voice(self) -> bool:
        return self._synth is not None

    @property
    def speaking(self) -> bool:
        """True from play() (or say()) until the audio has ended or was stopped."""
        return self._record is not None or self._waiting is not None

    # ----- synthesis ------------------------------------------------------------------------
    def clip_for(self, text: str, voice: Voice) -> SpeechClip | None:
        """The synthesized clip for ``text``, if it is ready."""
        clip = self._cache.get((text, voice))
        if clip is not None:
            self._cache.move_to_end((text, voice))
        return clip

    def pending(self, text: str, voice: Voice) -> bool:
        return (text, voice) in self._requests.values()

    def prepare(self, text: str, voice: Voice, urgent: bool = False) -> None:
        """Synthesize ``text`` in the background; ``prepared`` is emitted when it is ready.
        An urgent text (to be said now) goes before the texts prepared ahead."""
        if self._synth is None or self.clip_for(text, voice):
            return
        for key, request in self._requests.items():
            if request == (text, voice):
                if urgent:
                    self._synth.hurry(key)
                return
        self._key += 1
        self._requests[self._key] = (text, voice)
        self._synth.submit(SynthRequest(self._key, text, voice, urgent=urgent))

    @Slot(int, object, str)
    def _on_synth_done(self, key: int, clip: SpeechClip | None, error: str) -> None:
        if error:
            self.problem.emit(error)
        text, voice = self._requests.pop(key, ("", Voice()))
        if clip is not None:
            self._cache[(text, voice)] = clip
            self._evict()
        self.prepared.emit(text, clip)
        if self._waiting is not None and self._waiting[:2] == (text, voice):
            _, _, source, mode = self._waiting
            self._waiting = None
            if clip is not None:
                self.play(clip, source=source, mode=mode)

    def _evict(self) -> None:
        while len(self._cache) > CACHE_SIZE:
            _key, clip = self._cache.popitem(last=False)
            if clip is not self._current:
                clip.path.unlink(missing_ok=True)

    # ----- playing --------------------------------------------------------------------------
    def say(self, text: str, voice: Voice, source: str = "track", mode: str = "duck") -> None:
        """Speak ``text`` as soon as it is synthesized, replacing whatever is being said."""
        self.stop()
        if self._synth is None:
            self.problem.emit("No speech engine is available; descriptions are shown as text.")
            return
        clip = self.clip_for(text, voice)
        if clip is not None:
            self.play(clip, source=source, mode=mode)
            return
        self._waiting = (text, voice, source, mode)
        self.prepare(text, voice, urgent=True)

    def play(self, clip: SpeechClip, source: str = "track", mode: str = "duck",
             speed: float = 1.0, planned: float | None = None) -> SpokenRecord:
        """Start ``clip`` now, played ``speed`` times faster; returns its record."""
        self.stop()
        speed = min(max(speed, 0.5), 3.0)
        rec = SpokenRecord(text=clip.text, source=source, mode=mode, media_start=-1.0,
                           wall_start=-1.0, duration=clip.duration / speed, planned=planned,
                           speed=speed, wall_requested=time.monotonic())
        self._record = rec
        self._current = clip
        if not self._closed:
            if self._paused_since is not None:
                self._paused_since = None
                self._mpv.pause = False
            self._mpv.speed = speed
            self._mpv.loadfile(str(clip.path))
        return rec

    def set_paused(self, paused: bool) -> None:
        """Hold the current sentence (the user paused the film) or let it go on."""
        if self._closed or paused == (self._paused_since is not None):
            return
        now = time.monotonic()
        if paused:
            self._paused_since = now
        else:
            if self._record is not None and self._paused_since is not None:
                self._record.paused_for += now - self._paused_since
            self._paused_since = None
        self._mpv.pause = paused

    def stop(self) -> None:
        """Silence now. A record being spoken is closed as interrupted."""
        self._waiting = None
        rec, self._record = self._record, None
        self._current = None
        if rec is None:
            return
        if not self._closed:
            try:
                self._mpv.command("stop")
            except (SystemError, RuntimeError):
                log.debug("speech mpv stop failed", exc_info=True)
        if rec.wall_start >= 0:
            self._close(rec, interrupted=True)

    def _close(self, rec: SpokenRecord, interrupted: bool) -> None:
        rec.media_end = self._clock()
        rec.wall_end = time.monotonic()
        rec.interrupted = interrupted
        self.finished.emit(rec)

    # ----- mpv's thread arrives here through signals ------------------------------------------
    def _on_event(self, event: Any) -> None:
        ids = self._mpv_module.MpvEventID
        eid = event.event_id.value
        if eid == ids.PLAYBACK_RESTART:
            self._audio_started.emit()
        elif eid == ids.END_FILE and event.data.reason in (event.data.EOF, event.data.ERROR):
            self._audio_ended.emit()

    @Slot()
    def _on_audio_started(self) -> None:
        rec = self._record
        if rec is not None and rec.wall_start < 0:
            rec.media_start = self._clock()
            rec.wall_start = time.monotonic()
            self.records.append(rec)
            self.started.emit(rec)

    @Slot()
    def _on_audio_ended(self) -> None:
        rec = self._record
        if rec is None or rec.wall_start < 0:
            return
        # Some audio outputs (the null one in tests, some Bluetooth sinks) report the end while
        # their buffer still plays; the clip's own length is the truth, so wait for it.
        remaining = rec.wall_start + rec.duration + rec.paused_for - time.monotonic()
        if remaining > 0.02:
            QTimer.singleShot(int(remaining * 1000), lambda r=rec: self._finish(r))
        else:
            self._finish(rec)

    def _finish(self, rec: SpokenRecord) -> None:
        if self._record is rec:
            self._record = None
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
