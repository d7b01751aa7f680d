"""Narration: speaks a timeline's descriptions at their times, lowering or pausing the film.

It watches the playhead (mpv's time-pos observer, once per frame), keeps a pointer to the next
description at the chosen verbosity, and never says anything stale: after a seek the pointer moves
to the new position, and a description more than ``STALE_AFTER`` seconds late is skipped.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import replace

from PySide6.QtCore import QObject, Signal, Slot

from models import Description, Timeline
from player.playback import Playback
from player.settings import Settings
from player.speech import Voice
from player.speech_output import SpeechOutput, SpokenRecord

log = logging.getLogger(__name__)

STALE_AFTER = 1.0
SEEK_JUMP = 1.0


class Narrator(QObject):
    """Decides what to say and when; SpeechOutput says it, Playback ducks or pauses."""

    said = Signal(object)  # Description, when it is delivered (spoken or announced)
    announce = Signal(str)  # text for the screen reader route
    status = Signal(str)

    def __init__(self, playback: Playback, speech: SpeechOutput, settings: Settings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._playback = playback
        self._speech = speech
        self._settings = settings
        self._timeline = Timeline([], [])
        self._queue: list[Description] = []
        self._starts: list[float] = []
        self._next = 0
        self._last_t: float | None = None
        self._paused_by_us = False
        self.last: Description | None = None
        playback.time_changed.connect(self.on_time)
        playback.seeked.connect(self.on_seeked)
        speech.started.connect(self._on_speech_started)
        speech.finished.connect(self._on_speech_finished)

    # ----- configuration ----------------------------------------------------------------
    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def set_timeline(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self._rebuild()

    def set_settings(self, settings: Settings) -> None:
        level_changed = settings.verbosity != self._settings.verbosity
        self._settings = settings
        if not settings.narration:
            self.stop()
        if level_changed:
            self._rebuild()

    def _rebuild(self) -> None:
        self._queue = list(self._timeline.for_level(self._settings.verbosity))
        self._starts = [d.start for d in self._queue]
        self._reposition(self._playback.time_pos if self._last_t is not None else 0.0)

    def _reposition(self, t: float) -> None:
        self._next = bisect.bisect_left(self._starts, t - 0.05)

    # ----- the playhead -------------------------------------------------------------------
    @Slot(float)
    def on_time(self, t: float) -> None:
        prev, self._last_t = self._last_t, t
        if prev is not None and (t < prev - 0.05 or t - prev > SEEK_JUMP):
            self._on_jump(t)
            return
        if not self._settings.narration:
            return
        while self._next < len(self._queue) and self._queue[self._next].start <= t:
            desc = self._queue[self._next]
            if t - desc.start > STALE_AFTER:
                log.info("skipping stale description at %.2f (now %.2f)", desc.start, t)
                self._next += 1
                continue
            if self._speech.speaking:
                return  # wait for the current sentence; it stays due until it is stale
            self._next += 1
            self.deliver(desc)
            return

    @Slot(float)
    def on_seeked(self, t: float) -> None:
        if self._last_t is not None and abs(t - self._last_t) > 0.3:
            self._on_jump(t)
        self._last_t = t

    def _on_jump(self, t: float) -> None:
        self._reposition(t)
        if self._speech.speaking and self.last is not None and self.last.source == "track":
            self.stop()

    # ----- speaking -----------------------------------------------------------------------
    def deliver(self, desc: Description) -> None:
        """Say ``desc`` now through the chosen route (voice, screen reader, or both)."""
        self.last = desc
        route = self._settings.speech_output
        self.said.emit(desc)
        if route in ("screen_reader", "both"):
            self.announce.emit(desc.text)
        if route in ("voice", "both") and self._speech.has_voice:
            speed = max(self._playback.speed, 0.25)
            voice = Voice(self._settings.voice, int(self._settings.speech_rate * min(speed, 2.0)),
                          self._settings.speech_volume)
            self._speech.say(desc.text, voice, source=desc.source, mode=self._settings.mode)
        elif route == "voice":
            self.announce.emit(desc.text)

    def describe_now(self, t: float) -> Description:
        """The best description of the moment ``t`` that the narrator has: the latest cue at or
        before ``t`` at the detailed level, said honestly as from the description track."""
        cues = [d for d in self._timeline.for_level(3) if d.start <= t + 0.05]
        if cues:
            latest = cues[-1]
            return replace(latest, start=t, end=None, source="now")
        return Description(start=t, text="No description is available for this moment yet. "
                           "Live scene analysis is not installed in this version.", source="now")

    def repeat_last(self) -> bool:
        if self.last is None:
            return False
        self.deliver(replace(self.last, source="repeat"))
        return True

    def stop(self) -> None:
        self._speech.stop()
        self._restore()

    @Slot(object)
    def _on_speech_started(self, rec: SpokenRecord) -> None:
        if rec.mode == "pause":
            if not self._playback.pause:
                self._paused_by_us = True
                self._playback.pause = True
        else:
            self._playback.set_duck(self._settings.duck_db)

    @Slot(object)
    def _on_speech_finished(self, rec: SpokenRecord) -> None:
        if not self._speech.speaking:
            self._restore(resume=not rec.interrupted or rec.source != "track")

    def _restore(self, resume: bool = True) -> None:
        self._playback.set_duck(0.0)
        if self._paused_by_us:
            self._paused_by_us = False
            if resume:
                self._playback.pause = False
