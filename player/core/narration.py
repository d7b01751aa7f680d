"""Narration: the scheduler that says each description at the right moment.

It watches the playhead (mpv's time-pos observer, once per frame, with a 50 ms timer as a floor),
synthesizes the next descriptions ahead of time so their spoken length is known before they
start, and fits each one into a pause in the dialogue (``models.schedule.decide``): as it is,
a little faster (at most 20%), shortened to its first clauses, or later, or not at all. In
extended mode ("pause") a description that does not fit pauses the film, and the film resumes
when the speech ends. The film is ducked, with short fades, while the narrator speaks.

Nothing stale is said: after a seek the pointer moves to the new position, and a description
found more than ``STALE_AFTER`` seconds late is skipped. Nothing is said twice.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from models import Description, Timeline
from models.schedule import (
    AFTER_THE_END,
    MAX_DEFER,
    STALE_AFTER,
    WORDS_PER_SECOND,
    GapMap,
    decide,
    important,
    short_form,
)
from player.audio.speech import SpeechClip, Voice
from player.audio.speech_output import SpeechOutput, SpokenRecord
from player.core.settings import Settings
from player.media.playback import Playback

log = logging.getLogger(__name__)

SEEK_JUMP = 1.0  # a playhead move larger than this between ticks is a seek
LOOKAHEAD = 12.0  # synthesize descriptions this far ahead of the playhead
TICK_MS = 50
START_LEAD = 0.03  # seconds the speech player takes to start a clip, at first (then measured)
MAX_LEAD = 0.15  # never start a clip earlier than this before its moment
DUCK_FADE = 0.15
OPENING_WORDS = 30  # the opening said while the film waits: about ten seconds at most
ANSWER_HOLD_MS = 10_000  # the longest the film is held for the next sentence of an answer
# (after that the film goes on; sentences still coming are said when they arrive)


@dataclass(frozen=True)
class Skipped:
    """A description that was not said, and why (for the recorder and for tests)."""

    desc: Description
    reason: str
    at: float


class Narrator(QObject):
    """Decides what to say and when; SpeechOutput says it, Playback ducks or pauses."""

    said = Signal(object)  # Description, when it is delivered (spoken or announced)
    announce = Signal(str)  # text for the screen reader route
    skipped = Signal(object)  # Skipped

    def __init__(self, playback: Playback, speech: SpeechOutput, settings: Settings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._playback = playback
        self._speech = speech
        self._settings = settings
        self._timeline = Timeline([], [])
        self.gaps = GapMap()
        self._queue: list[Description] = []
        self._starts: list[float] = []
        self._next = 0
        self._seen: dict[int, float] = {}  # id(description) -> film time it was first due
        self._last_t: float | None = None
        self._last_tick = 0.0
        self._paused_by_us = False
        self._speaking: Description | None = None
        self._follow: list[Description] = []  # said after the delivered speech, in order
        self._awaiting = False  # more sentences of the answer being said are still coming
        self._answer_open = False  # the answer is still being said: its next sentences follow
        self._held = False  # between two sentences of an answer: the film stays paused/ducked
        self.last: Description | None = None
        self.skips: list[Skipped] = []
        self._met: set[int] = set()  # people the listener has heard of in this film
        self._after_opening: Callable[[], None] | None = None  # the film starts after it
        self._auto_pauses: list[float] = []  # when automatic mode paused the film (monotonic)
        self._accounted: set[int] = set()  # ids of the timeline's descriptions said or skipped
        self._origin: dict[int, Description] = {}  # a queued copy's id -> the timeline's own
        playback.time_changed.connect(self.on_time)
        playback.seeked.connect(self.on_seeked)
        playback.pause_changed.connect(self._on_film_paused)
        speech.started.connect(self._on_speech_started)
        speech.finished.connect(self._on_speech_finished)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer)
        self._timer.start()
        # Wakes the narrator at the next description's moment (the ticks above are a floor):
        # re-armed at every playhead report, so seeks, pauses and speed changes are followed.
        self._wake = QTimer(self)
        self._wake.setSingleShot(True)
        self._wake.setTimerType(Qt.TimerType.PreciseTimer)
        self._wake.timeout.connect(self._on_wake)
        self.wake_on_time = True  # False: the ticks alone (for the timing benchmark)
        self._lead = START_LEAD  # how long the speech player takes to start a clip
        self._anchor = (0.0, -1.0)  # (monotonic, film time) of the last new playhead position
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.setInterval(ANSWER_HOLD_MS)
        self._hold_timer.timeout.connect(self._release_hold)

    # ----- configuration ----------------------------------------------------------------
    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def set_timeline(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self._accounted.clear()
        self._origin.clear()
        self.forget_people()  # a new film: nobody in it has been introduced yet
        self._rebuild()
        # Synthesize the first sentences while the film is still loading.
        self._prepare_ahead(self._playback.time_pos if self._last_t is not None else 0.0)

    def forget_people(self) -> None:
        """The listener has met nobody yet: a new film, or live analysis started again (it
        numbers the people it finds afresh)."""
        self._met.clear()

    def add_descriptions(self, descs: list[Description]) -> None:
        """Add descriptions found while playing (live analysis). One that arrives after its
        moment is still said if it is still true (its ``end``, when it has one, is later)."""
        if not descs:
            return
        self._timeline = Timeline([*self._timeline.descriptions, *descs], self._timeline.gaps)
        t = self._last_t if self._last_t is not None else 0.0
        for d in descs:
            if d.level > self._settings.verbosity:
                continue
            if d.start < t:
                if d.start < t - STALE_AFTER and (d.end is None or d.end < t + 0.5):
                    continue
                original, d = d, replace(d, start=t, end=None)
                self._origin[id(d)] = original
            i = max(bisect.bisect_right(self._starts, d.start), self._next)
            self._queue.insert(i, d)
            self._starts.insert(i, d.start)
        self._prepare_ahead(t)

    def set_settings(self, settings: Settings) -> None:
        old = self._settings
        self._settings = settings
        if not settings.narration:
            self.stop()
        if settings.verbosity != old.verbosity:
            self._rebuild()

    def _rebuild(self, at: float | None = None) -> None:
        """The queue anew from the timeline, positioned at ``at`` (default: the playhead)."""
        self._queue = list(self._timeline.for_level(self._settings.verbosity))
        self._starts = [d.start for d in self._queue]
        if at is None:
            at = self._playback.time_pos if self._last_t is not None else 0.0
        self._reposition(at)

    def _reposition(self, t: float) -> None:
        self._next = bisect.bisect_left(self._starts, t - 0.05)
        self._seen.clear()

    def voice(self) -> Voice:
        s = self._settings
        return Voice(s.voice, s.speech_rate, s.speech_volume)

    # ----- the playhead -------------------------------------------------------------------
    @Slot()
    def _on_timer(self) -> None:
        if time.monotonic() - self._last_tick > 0.08 and not self._playback.pause:
            self.on_time(self._playback.time_pos)

    @Slot(float)
    def on_time(self, t: float) -> None:
        self._last_tick = time.monotonic()
        if t != self._anchor[1]:  # a new position: the film was there just now
            self._anchor = (self._last_tick, t)
        prev, self._last_t = self._last_t, t
        if prev is not None and (t < prev - 0.05 or t - prev > SEEK_JUMP):
            self._on_jump(t)
        self._prepare_ahead(t)
        if self._settings.narration:
            self._step(t)
            self._arm(t)

    def _arm(self, t: float) -> None:
        """Set the wake-up for the next description not yet due, ``_lead`` early so that its
        sound starts on time."""
        self._wake.stop()
        if not self.wake_on_time or self._playback.pause or self._next >= len(self._queue):
            return
        lead = self._lead_in_film()
        first_later = bisect.bisect_right(self._starts, t + lead, lo=self._next)
        moments = self._starts[first_later:first_later + 1]
        if first_later > self._next:  # one is due: it waits for a pause
            gap = self.gaps.next_gap(t)
            if gap is not None:
                moments.append(gap.start)
        ahead = min(moments, default=t) - lead - t
        if ahead > 0:
            speed = max(self._playback.speed, 0.25)
            self._wake.start(max(1, int(ahead / speed * 1000)))

    @Slot()
    def _on_wake(self) -> None:
        if not self._playback.pause:
            self.on_time(self._film_now())

    def _film_now(self) -> float:
        """Where the film is now: mpv reports its position a frame at a time (every 40 ms at
        25 frames a second), so the time since the last report is added (at most a tenth of a
        second, should the reports stop)."""
        wall, t = self._anchor
        reported = self._playback.time_pos
        if reported != t:
            return reported
        speed = max(self._playback.speed, 0.25)
        return t + min(time.monotonic() - wall, 0.1) * speed

    def _lead_in_film(self) -> float:
        return self._lead * max(self._playback.speed, 0.25)

    @Slot(float)
    def on_seeked(self, t: float) -> None:
        if self._last_t is not None and abs(t - self._last_t) > 0.3:
            self._on_jump(t)
        self._last_t = t

    @Slot(bool)
    def _on_film_paused(self, paused: bool) -> None:
        """The user paused or resumed the film: the narrator holds its sentence with it."""
        if not self._paused_by_us:
            self._speech.set_paused(paused)

    def _on_jump(self, t: float) -> None:
        self._rebuild(at=t)
        if self._speaking is not None and self._speaking.source == "track":
            self.stop()

    def _prepare_ahead(self, t: float) -> None:
        if not self._settings.narration or not self._uses_voice():
            return
        voice = self.voice()
        i = self._next
        while i < len(self._queue) and self._queue[i].start <= t + LOOKAHEAD:
            desc = self._queue[i]
            for text in (desc.text, desc.plain) if desc.plain else (desc.text,):
                self._speech.prepare(text, voice)
                short = short_form(text)
                if short:
                    self._speech.prepare(short, voice)
            i += 1

    def _step(self, t: float) -> None:
        """Say, keep waiting for, or skip the descriptions that are due; the most important
        one goes first (priority, then time)."""
        while True:
            k = self._next
            due = t + (self._lead_in_film() if self.wake_on_time else 0.0)
            while k < len(self._queue) and self._queue[k].start <= due:
                k += 1
            fresh = []
            for desc in self._queue[self._next:k]:
                first = self._seen.setdefault(id(desc), t)
                if first - desc.start > STALE_AFTER:
                    self._skip(desc, "stale", t)
                elif t - desc.start > MAX_DEFER or (desc.end is not None and t > desc.end and
                                                    desc.source != "track"):
                    self._skip(desc, "no room", t)  # waited behind more important ones
                else:
                    fresh.append(desc)
            if not fresh:
                return
            if self._speaking is not None or self._speech.speaking or self._paused_by_us:
                return  # wait for the current sentence to end; waiting counts
            desc = max(fresh, key=lambda d: (d.priority, -d.start))
            heard = self._as_heard(desc)
            waited = max(0.0, t - desc.start)
            full, short_clip, short = self._clips(heard)
            if full is None and self._uses_voice():
                if waited > STALE_AFTER + 3.0:
                    self._skip(desc, "speech was not ready", t)
                    continue
                return  # still synthesizing: a few milliseconds
            duration = full.duration if full else desc.words / WORDS_PER_SECOND
            short_duration = short_clip.duration if short_clip else None
            d = decide(late=0.0, waited=waited, room=self.gaps.room_at(t), duration=duration,
                       short_duration=short_duration, mode=self._settings.mode,
                       important=important(desc.priority, desc.level),
                       may_pause=self._may_pause())
            if d.action == "wait":
                return
            if d.action == "drop":
                self._skip(desc, d.reason, t)
                continue
            self._take(desc)
            planned = self._planned_start(desc, t)
            if d.action == "pause":
                if self._settings.mode == "auto":
                    self._auto_pauses.append(time.monotonic())
                self._deliver(heard, full, pause=True, planned=planned)
            elif d.short and short is not None:  # its first part: whom it names is unsure
                self._deliver(replace(heard, text=short, refers=(), introduces=()), short_clip,
                              speed=d.speed, planned=planned)
            else:
                self._deliver(heard, full, speed=d.speed, planned=planned)
            return

    def say_opening(self, until: float, then: Callable[[], None]) -> bool:
        """Say, now, while the film waits at its start, what is known of its opening: the
        descriptions due by ``until`` (who and what is there, the setting, a title), at most
        ``OPENING_WORDS`` words, most important first; ``then`` runs once it has been said.
        False (and ``then`` is not called) when there is nothing to say."""
        if not self._settings.narration:
            return False
        due = [d for d in self._queue[self._next:] if d.start <= until]
        chosen: list[Description] = []
        words = 0
        for desc in sorted(due, key=lambda d: (-d.priority, d.start)):
            n = len(self._as_heard(desc).text.split())
            if chosen and words + n > OPENING_WORDS:
                continue
            chosen.append(desc)
            words += n
        if not chosen:
            return False
        chosen.sort(key=lambda d: d.start)
        for desc in chosen:
            self._take(desc)
        heard = [self._as_heard(d) for d in chosen]
        opening = replace(heard[0], text=" ".join(d.text for d in heard),
                          refers=tuple(p for d in heard for p in d.refers),
                          introduces=tuple(p for d in heard for p in d.introduces))
        self._deliver(opening, self._speech.clip_for(opening.text, self.voice()))
        if self._uses_voice():
            self._after_opening = then  # when the voice has said it
        else:
            QTimer.singleShot(0, then)  # the screen reader has it: the film can start
        return True

    def _may_pause(self) -> bool:
        """Automatic mode may pause the film again: fewer than ``auto_pauses`` pauses in the
        last minute (of the listener's time, so a paused film does not reset the count)."""
        now = time.monotonic()
        self._auto_pauses = [a for a in self._auto_pauses if now - a < 60.0]
        return len(self._auto_pauses) < self._settings.auto_pauses

    def _as_heard(self, desc: Description) -> Description:
        """``desc`` as the listener can follow it: its plain text when it names someone whose
        introduction they never heard (it found no room, or was above their verbosity)."""
        if desc.plain and not self._met.issuperset(desc.refers):
            return replace(desc, text=desc.plain)
        return desc

    def _take(self, desc: Description) -> None:
        """Remove ``desc`` from the waiting part of the queue (it is said or skipped)."""
        for i in range(self._next, len(self._queue)):
            if self._queue[i] is desc:
                del self._queue[i]
                del self._starts[i]
                break
        self._seen.pop(id(desc), None)
        self._accounted.add(id(self._origin.pop(id(desc), desc)))

    def film_ended(self) -> None:
        """The film reached its end: what is still waiting for a pause will find none, and
        is left out, with that reason (it was never said after the end)."""
        t = self._last_t if self._last_t is not None else 0.0
        for desc in list(self._queue[self._next:]):
            if self._speaking is None or desc is not self._speaking:
                self._skip(desc, AFTER_THE_END, t)

    def unsaid(self, t: float | None = None) -> list[Skipped]:
        """The descriptions of the film at the listener's verbosity that were neither said nor
        skipped by the time playback stopped at ``t`` (default: the last playhead position the
        narrator saw), each with the reason (for the record: every description is in one list
        or the other)."""
        if t is None:
            t = self._last_t if self._last_t is not None else 0.0
        waiting = {id(self._origin.get(id(d), d)) for d in self._queue[self._next:]}
        out = []
        for desc in self._timeline.for_level(self._settings.verbosity):
            if id(desc) in self._accounted:
                continue
            if desc.start > t:
                reason = "not reached: playback stopped before it"
            elif id(desc) in waiting:
                reason = "still waiting for a pause when playback stopped"
            else:
                reason = "passed over: the film was moved past it"
            out.append(Skipped(desc, reason, t))
        return out

    def _planned_start(self, desc: Description, t: float) -> float:
        """When the plan said this should start: its own time, or the pause it waited for."""
        gap = self.gaps.next_gap(desc.start - 1e-6)
        if gap is not None and desc.start < gap.start <= t:
            return gap.start
        return desc.start

    def _clips(self, desc: Description) -> tuple[SpeechClip | None, SpeechClip | None, str | None]:
        voice = self.voice()
        full = self._speech.clip_for(desc.text, voice)
        short = short_form(desc.text)
        short_clip = self._speech.clip_for(short, voice) if short else None
        return full, short_clip, short

    def _uses_voice(self) -> bool:
        return self._settings.speech_output in ("voice", "both") and self._speech.has_voice

    def _skip(self, desc: Description, reason: str, t: float) -> None:
        log.info("not saying %r at %.2f: %s", desc.text, t, reason)
        self._take(desc)
        item = Skipped(desc, reason, t)
        self.skips.append(item)
        self.skipped.emit(item)

    # ----- speaking -----------------------------------------------------------------------
    def _deliver(self, desc: Description, clip: SpeechClip | None, speed: float = 1.0,
                 pause: bool = False, planned: float | None = None) -> None:
        self.last = desc
        self._met.update(desc.refers, desc.introduces)
        route = self._settings.speech_output
        self.said.emit(desc)
        if (route in ("screen_reader", "both") or not self._uses_voice()) and \
                desc.source != "system":  # the player's own messages reach it as messages
            self.announce.emit(desc.text)
        if not self._uses_voice():
            return
        film_speed = max(self._playback.speed, 0.25)
        mode = "pause" if pause else "duck"
        self._speaking = desc
        if clip is None:
            self._speech.say(desc.text, self.voice(), source=desc.source, mode=mode)
        else:
            self._speech.play(clip, source=desc.source, mode=mode,
                              speed=min(film_speed, 2.0) * speed, planned=planned)

    def deliver(self, desc: Description) -> None:
        """Say ``desc`` now, whatever the dialogue is doing (describe now, repeat, answers,
        messages): the film is ducked or paused per the user's mode."""
        self.stop()
        voice = self.voice()
        clip = self._speech.clip_for(desc.text, voice)
        self._deliver(desc, clip, pause=self._settings.mode == "pause")

    def continue_with(self, desc: Description) -> None:
        """Say ``desc`` as soon as what :meth:`deliver` started has been said (the next sentence
        of a streamed answer); at once when nothing is being said. Once something else was said
        instead (the answer was cut off), the rest of that answer is not said."""
        if not self._answer_open:
            log.info("not saying %r: the answer it continues was cut off", desc.text)
            return
        if self._awaiting:
            self._hold_timer.start()  # each sentence gives the next one time again
        if self._held:  # the film waits for this sentence: say it without letting it go on
            self._held = False
            self._deliver(desc, self._speech.clip_for(desc.text, self.voice()),
                          pause=self._settings.mode == "pause")
        elif self._speaking is None and not self._speech.speaking:
            # Said at once, as part of the same answer (``deliver`` would close the answer).
            self._deliver(desc, self._speech.clip_for(desc.text, self.voice()),
                          pause=self._settings.mode == "pause")
        else:
            self._follow.append(desc)

    def expect_more(self) -> None:
        """More sentences of the answer just delivered are being written: between them the film
        stays paused (or ducked) instead of going on and stopping again, for at most
        ``ANSWER_HOLD_MS``. :meth:`finish_answer` ends the wait."""
        self._awaiting = self._answer_open = True
        self._hold_timer.start()

    @Slot()
    def _release_hold(self) -> None:
        """The next sentence is late: the film goes on. The answer stays open, so its later
        sentences are still said when they come (only the answer's end, a stop or something
        said instead closes it)."""
        self._awaiting = False
        if self._held:
            self._held = False
            self._speaking = None
            self._restore()

    @Slot()
    def finish_answer(self) -> None:
        """The answer is complete (or given up on): the film goes on once it has been said."""
        self._answer_open = False  # no sentence of it comes after this
        self._hold_timer.stop()
        self._release_hold()

    def describe_now(self, t: float, why: str = "") -> Description:
        """The best description of the moment ``t`` that the narrator has: the latest cue at or
        before ``t`` at the detailed level, said honestly as from the description track; else
        that there is none, and ``why`` (the reason live analysis cannot look)."""
        latest = self._timeline.latest_before(t + 0.05, 3)
        if latest is not None:
            return replace(latest, start=t, end=None, source="now")
        text = "No description is available for this moment yet."
        return Description(start=t, text=f"{text} {why}".strip(), source="now")

    def repeat_last(self) -> bool:
        if self.last is None:
            return False
        self.deliver(replace(self.last, source="repeat"))
        return True

    def stop(self) -> None:
        self._after_opening = None
        self._speaking = None
        self._follow.clear()
        self._awaiting = self._held = self._answer_open = False
        self._hold_timer.stop()
        self._speech.stop()
        self._restore()

    @Slot(object)
    def _on_speech_started(self, rec: SpokenRecord) -> None:
        if rec.planned is not None and rec.wall_requested > 0:  # learn the start-up time
            took = min(max(rec.wall_start - rec.wall_requested, 0.0), MAX_LEAD)
            self._lead += (took - self._lead) * 0.3
        if rec.mode == "pause":
            if not self._playback.pause:
                self._paused_by_us = True
                self._playback.pause = True
        else:
            self._playback.set_duck(self._settings.duck_db, fade=DUCK_FADE)

    @Slot(object)
    def _on_speech_finished(self, rec: SpokenRecord) -> None:
        if rec.interrupted:  # something else is said instead: the rest of the answer is not
            self._follow.clear()
            self._awaiting = self._held = self._answer_open = False
            self._hold_timer.stop()
        if self._follow and not self._speech.speaking:
            desc = self._follow.pop(0)
            voice = self.voice()
            self._deliver(desc, self._speech.clip_for(desc.text, voice),
                          pause=self._settings.mode == "pause")
            return
        if self._awaiting and not self._speech.speaking:
            self._held = True  # the next sentence is on its way: keep the film where it is
            return
        if not self._speech.speaking:
            self._speaking = None
            self._restore(resume=not rec.interrupted or rec.source != "track")
            then, self._after_opening = self._after_opening, None
            if then is not None:
                then()

    def _restore(self, resume: bool = True) -> None:
        self._playback.set_duck(0.0, fade=DUCK_FADE)
        if self._paused_by_us:
            self._paused_by_us = False
            if resume:
                self._playback.pause = False
