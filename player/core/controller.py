"""The player's logic, shared by the window and the terminal mode.

One method per command in :mod:`player.core.commands`; every state change is reported through
``message`` so the window can show and announce it and the terminal can print it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from models import Description, Timeline, read_vtt
from models.brief import brief
from models.webvtt import find_description_track, problem_lines
from player.audio.dialogue_scan import DialogueScanner
from player.audio.speech_output import SpeechOutput
from player.core import settings as settings_store
from player.core.narration import Narrator
from player.core.perception import Perception
from player.core.settings import MODES, VERBOSITY_NAMES, Settings
from player.core.start_hold import HOLD_AHEAD, USER, WAITED, StartHold
from player.core.timefmt import spoken
from player.media.media_check import codec_error_message
from player.media.playback import MediaInfo, Playback

log = logging.getLogger(__name__)

SEEK_SMALL = 5.0
SEEK_LARGE = 30.0
VOLUME_STEP = 5.0
SPEED_STEP = 0.1


MODE_SAID = {
    "auto": "Mode: automatic. The film is lowered under narration, and paused briefly for "
            "what matters.",
    "duck": "Mode: lower the film under narration.",
    "pause": "Mode: pause the film to describe.",
}


class Controller(QObject):
    """Owns playback, speech and narration; turns commands into actions and messages."""

    message = Signal(str, str)  # text, kind: "state" | "error" | "info"
    transcript = Signal(str)  # a description as delivered, for the transcript panel
    settings_changed = Signal(object)
    media_loaded = Signal(object)  # MediaInfo

    def __init__(self, playback: Playback, speech: SpeechOutput, settings: Settings,
                 save_settings: Callable[[Settings], str] | None = settings_store.save,
                 parent: QObject | None = None, stored: Settings | None = None) -> None:
        """``settings`` are the ones in use; ``stored`` the user's saved ones, when options
        given on the command line for this run alone were laid over them."""
        super().__init__(parent)
        self.playback = playback
        self.speech = speech
        self.settings = settings.normalized()
        self._stored = (stored or settings).normalized()
        self._save = save_settings
        self.narrator = Narrator(playback, speech, self.settings, self)
        self.perception = Perception(parent=self)
        self.perception.descriptions.connect(self.narrator.add_descriptions)
        self.perception.answer.connect(self._on_answer)
        self.perception.answer_more.connect(self._on_answer_more)
        self.perception.answer_done.connect(lambda _t: self.narrator.finish_answer())
        gaps = self.narrator.gaps
        self.perception.use_gaps(gaps.room_at, gaps.gap_at, gaps.next_gap)
        self.perception.problem.connect(lambda text: self.message.emit(text, "info"))
        playback.seeked.connect(self.perception.seek)
        self._hold = StartHold(playback, self.perception, self)
        self._hold.released.connect(self._on_hold_released)
        self._hold.opening = self._say_opening
        self._start_text = ""
        self._opened_paused = False
        self._track_loaded = False
        self._asked: str | None = None
        self._told_no_model = False  # said once a film: answers come from the detectors
        self._told_no_answers = False  # said once a film: questions need a model
        self._told_level = False  # a verbosity other than standard, said once a run
        self._answer_source = "now"
        if self.settings.live_analysis:
            self.perception.warm_up()  # load the models while the window and the film open
        if self._wanted_model():
            self.perception.set_vlm(self._wanted_model())
        self.perception.vlm_ready.connect(
            lambda name: self.message.emit(f"Vision-language model {name} is ready.", "info"))
        self._ahead = QTimer(self)
        self._ahead.setInterval(1000)
        self._ahead.timeout.connect(lambda: self.perception.keep_ahead(self.playback.time_pos))
        self._ahead.start()
        self.scanner = DialogueScanner(self)
        self.scanner.progress.connect(self._on_gaps)
        self.scanner.problem.connect(lambda text: self.message.emit(text, "error"))
        self.scanner.failed.connect(self._on_detection_failed)
        playback.seeked.connect(self.scanner.seek)
        self.narrator.said.connect(self._on_said)
        self.narrator.announce.connect(lambda text: self.message.emit(text, "narration"))
        playback.failed.connect(self._on_failed)
        playback.loaded.connect(self._on_loaded)
        playback.ended.connect(lambda: self.message.emit("End of video.", "state"))
        playback.ended.connect(self.narrator.film_ended)
        speech.problem.connect(lambda text: self.message.emit(text, "error"))
        for note in speech.notes:
            self.message.emit(note, "info")
        playback.volume = self.settings.volume
        playback.speed = self.settings.speed
        self.handlers: Mapping[str, Callable[[], None]] = {
            "play_pause": self.play_pause,
            "seek_back_5": lambda: self.seek(-SEEK_SMALL),
            "seek_forward_5": lambda: self.seek(SEEK_SMALL),
            "seek_back_30": lambda: self.seek(-SEEK_LARGE),
            "seek_forward_30": lambda: self.seek(SEEK_LARGE),
            "volume_up": lambda: self.change_volume(VOLUME_STEP),
            "volume_down": lambda: self.change_volume(-VOLUME_STEP),
            "mute": self.toggle_mute,
            "speed_up": lambda: self.change_speed(SPEED_STEP),
            "speed_down": lambda: self.change_speed(-SPEED_STEP),
            "speed_reset": lambda: self.set_speed(1.0),
            "say_time": self.say_time,
            "analysis_speed": self.say_analysis_speed,
            "describe_now": self.describe_now,
            "repeat_last": self.repeat_last,
            "verbosity_up": lambda: self.change_verbosity(1),
            "verbosity_down": lambda: self.change_verbosity(-1),
            "toggle_narration": self.toggle_narration,
            "toggle_mode": self.toggle_mode,
        }
        self.media: MediaInfo | None = None

    # ----- files --------------------------------------------------------------------------
    def open(self, path: str | Path, descriptions: str | Path | None = None) -> bool:
        self._hold.cancel()
        self.narrator.stop()
        self.scanner.stop()
        self.perception.stop_lookahead()
        self._track_loaded = False
        self._told_no_model = self._told_no_answers = False
        self.narrator.gaps.update([], [], has_audio=True)
        self.narrator.gaps.detection_failed = False
        self.media = None
        self.narrator.set_timeline(Timeline([], []))
        track = Path(descriptions) if descriptions else find_description_track(path)
        timeline = self._read_track(track) if track is not None else None
        # A film that will wait for the narrator is loaded paused, so not a frame is missed.
        self._opened_paused = self._waits_for_narrator(timeline is not None)
        if not self.playback.open(path, paused=self._opened_paused):
            return False
        if track is not None and timeline is not None:
            self._use_track(track, timeline)
        self.message.emit(f"Opening {Path(path).name}.", "state")
        return True

    def load_descriptions(self, track: Path) -> None:
        """Speak ``track`` from now on; a track that cannot be used changes nothing."""
        timeline = self._read_track(track)
        if timeline is not None:
            self._use_track(track, timeline)

    def _read_track(self, track: Path) -> Timeline | None:
        """The track's timeline, its problems said; None (after saying why) when it cannot be
        read or holds no description, and live analysis describes the film instead."""
        try:
            result = read_vtt(track)
        except OSError as exc:
            self.message.emit(f"The description track {track.name} could not be read: "
                              f"{exc.strerror or exc}.", "error")
            return None
        for line in problem_lines(track.name, result.problems):
            self.message.emit(line, "error")
        if not result.timeline.descriptions:
            instead = (" Live scene analysis describes the film instead."
                       if self.settings.live_analysis else "")
            self.message.emit(f"The description track {track.name} holds no description that "
                              f"can be used.{instead}", "error")
            return None
        return result.timeline

    def _use_track(self, track: Path, timeline: Timeline) -> None:
        self.narrator.set_timeline(timeline)
        self._track_loaded = True
        n = len(timeline.descriptions)
        self.message.emit(f"Loaded {n} description{'s' if n != 1 else ''} from {track.name}.",
                          "info")

    @Slot(object, object, bool, bool)
    def _on_gaps(self, gaps: object, covered: object, has_audio: bool, complete: bool) -> None:
        end = self.media.duration if self.media is not None else None
        self.narrator.gaps.update(gaps, covered, has_audio, complete,  # type: ignore[arg-type]
                                  end=end)

    @Slot(str)
    def _on_detection_failed(self, text: str) -> None:
        """Dialogue detection gave up: rather than never, descriptions are said where it did
        not look (over any dialogue there)."""
        self.narrator.gaps.detection_failed = True
        self.message.emit(text, "error")

    @Slot(object)
    def _on_said(self, desc: Description) -> None:
        self.transcript.emit(desc.text)
        self.perception.remember_said(self.playback.time_pos, desc.text)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.media = None
        self.message.emit(text, "error")
        self._speak_system(text)

    @Slot(object)
    def _on_loaded(self, info: MediaInfo) -> None:
        self.media = info
        self.media_loaded.emit(info)
        if info.has_video or info.has_audio:
            self.scanner.start(info.path, info.duration, at=self.playback.time_pos)
        describe = info.has_video and self.settings.live_analysis
        if describe:
            # A description track written by a person is better than ours: with one loaded,
            # live analysis only answers "describe now" and questions.
            at = self.playback.time_pos
            self.perception.open(info.path, info.duration, at=at if at > 1.0 else 0.0,
                                 compose=not self._track_loaded)
        name = Path(info.path).name
        if not info.has_video and info.has_audio:
            text = (f"{name} has sound but no picture. It plays, but there is nothing on screen "
                    f"to describe.")
            self.message.emit(text, "error")
            self._speak_system(text)
        else:
            self._start_text = (f"Playing {name}. It has no sound track; every moment is free "
                                f"for narration." if not info.has_audio else
                                f"Playing {name}, {spoken(info.duration)} long.")
            if self.settings.verbosity != Settings().verbosity:  # a level kept from before
                level = f"Verbosity {VERBOSITY_NAMES[self.settings.verbosity]}."
                self._start_text += f" {level}"
                if not self._told_level:  # by voice once a run, not before every film
                    self._told_level = True
                    self._speak_system(level)
            if describe and self._waits_for_narrator(self._track_loaded):
                self._hold.begin(self.playback.time_pos, info.duration)
                self.message.emit(f"Opening {name}: the narrator is looking at the first "
                                  f"seconds. The film starts in a moment; press Space to "
                                  f"start it now.", "state")
            else:
                self.message.emit(self._start_text, "state")
        if self._opened_paused and not self._hold.active:  # nothing to wait for after all
            self.playback.pause = False
        self._opened_paused = False
        QTimer.singleShot(800, self._check_decoding)

    def _waits_for_narrator(self, has_track: bool) -> bool:
        """A film waits at its start for live analysis when the narrator is to describe it."""
        s = self.settings
        return s.live_analysis and s.narration and s.wait_for_narrator and not has_track

    def _say_opening(self, start_film: Callable[[], None]) -> bool:
        """The film's opening has been looked at, while it waits at its start: say it now,
        in the silence before the film plays (a scene full of dialogue leaves no pause for
        it later), then start the film."""
        return self.narrator.say_opening(self.playback.time_pos + HOLD_AHEAD, start_film)

    @Slot(str)
    def _on_hold_released(self, why: str) -> None:
        """The film goes on after waiting for the narrator at its start."""
        extra = " The narrator is still getting ready." if why == WAITED else ""
        self.message.emit(self._start_text + extra, "state")

    def _check_decoding(self) -> None:
        """mpv reports a codec it cannot decode in its log, after the file has loaded."""
        errors = self.playback.decoder_errors()
        if errors and self.media is not None:
            text = codec_error_message(self.media.path) + " Part of it may not play."
            log.warning("decoder errors: %s", errors)
            self.message.emit(text, "error")
            self._speak_system(text)

    def _speak_system(self, text: str) -> None:
        """Say a message about the player itself (errors), through the chosen route."""
        if self.settings.speech_output in ("voice", "both") and self.speech.has_voice:
            self.narrator.deliver(Description(start=self.playback.time_pos, text=text,
                                              source="system"))

    # ----- commands -----------------------------------------------------------------------
    def run(self, name: str) -> bool:
        """Run a command by its name in the table; False if this object has no handler."""
        handler = self.handlers.get(name)
        if handler is None:
            return False
        handler()
        return True

    def _need_media(self) -> bool:
        if self.media is None:
            self.message.emit("No video is open. Press Control O to open one.", "error")
            return False
        return True

    def play_pause(self) -> None:
        if not self._need_media():
            return
        if self._hold.active:  # the user does not want to wait for the narrator
            self._hold.end(USER)
            return
        paused = self.playback.toggle_pause()
        self.message.emit("Paused." if paused else "Playing.", "state")

    def seek(self, seconds: float) -> None:
        if not self._need_media():
            return
        self._hold.end(USER)
        target = min(max(self.playback.time_pos + seconds, 0.0), max(self.media.duration - 0.1, 0.0)
                     if self.media else 0.0)
        self.playback.seek_absolute(target)
        self.message.emit(f"{'Back' if seconds < 0 else 'Forward'} to {spoken(target)}.", "state")

    def seek_to(self, seconds: float) -> None:
        """Go to ``seconds`` (the seek slider: it shows where it went, so no message)."""
        if self.media is None:
            return
        self._hold.end(USER)
        self.playback.seek_absolute(seconds)

    def change_volume(self, delta: float) -> None:
        self.set_volume(self.playback.volume + delta)

    def set_volume(self, value: float) -> None:
        self.playback.volume = value
        self._update(volume=self.playback.volume)
        self.message.emit(f"Volume {round(self.playback.volume)} percent.", "state")

    def toggle_mute(self) -> None:
        self.playback.mute = not self.playback.mute
        self.message.emit("Film sound muted." if self.playback.mute else "Film sound on.", "state")

    def change_speed(self, delta: float) -> None:
        self.set_speed(self.playback.speed + delta)

    def set_speed(self, value: float) -> None:
        self.playback.speed = value
        speed = round(min(max(value, 0.25), 4.0), 2)
        self._update(speed=speed)
        self.message.emit(f"Speed {speed:g} times.", "state")

    def say_time(self) -> None:
        if not self._need_media():
            return
        text = f"{spoken(self.playback.time_pos)} of {spoken(self.playback.duration)}."
        self.message.emit(text, "info")
        self._speak_system(text)

    def say_analysis_speed(self) -> None:
        """How fast live analysis goes (the origin's frames a second), said and shown."""
        speed = self.perception.speed()
        if speed is not None and self.perception.looked_at_all:
            text = (f"The whole film has been analysed. "
                    f"{speed.sentence().replace('Analysis runs', 'It ran')}")
        elif speed is not None:
            text = speed.sentence()
        elif not self.settings.live_analysis:
            text = "Live analysis is off."
        elif self.perception.from_cache:
            text = "This film was analysed before: nothing is being analysed now."
        else:
            text = "The analysis has not measured its speed yet."
        self.message.emit(text, "info")
        self._speak_system(text)

    def describe_now(self) -> None:
        if not self._need_media():
            return
        self.message.emit("Describing...", "state")
        t = self.playback.time_pos
        self.perception.detail = self.settings.verbosity
        if self.settings.live_analysis and self.media is not None and self.media.has_video and \
                self.perception.describe_now(t, self.playback.frame_rgb()):
            return  # the answer arrives in _on_answer, in a fraction of a second
        self.narrator.deliver(self.narrator.describe_now(t, self._why_not_looking()))

    def _why_not_looking(self) -> str:
        """Why live analysis cannot look at the frame on screen, in a sentence."""
        if not self.settings.live_analysis:
            return "Live scene analysis is off; turn it on in Settings."
        if self.media is not None and not self.media.has_video:
            return "This file has no picture."
        if self.perception.loading:
            return "Live scene analysis is still loading; try again in a moment."
        if self.perception.available:  # ready, but mpv gave no picture (not shown yet)
            return "The picture is not ready yet; try again in a moment."
        return "Live scene analysis is not available: narrate doctor says what is missing."

    @Slot(float, str)
    def _on_answer(self, t: float, seen: str) -> None:
        question, self._asked = self._asked, None
        cues = [d for d in self.narrator.timeline.descriptions
                if d.source == "track" and d.start <= t + 0.05]
        cue = cues[-1] if cues else None
        recent = cue is not None and t - cue.start <= max(5.0, (cue.end or 0.0) - cue.start)
        parts = [cue.text] if recent and cue is not None else []
        if seen:
            parts.append(seen)
        text = brief(" ".join(parts)) or "I can't make out any people or text in this picture."
        vlm = self.perception.has_vlm
        loading = not vlm and self.perception.vlm_loading
        self.message.emit("Described.", "quiet")
        self._answer_source = "now" if question is None else "answer"
        if question is not None and loading:
            text = f"The model is still loading; ask again in a moment. I see: {text}"
        elif question is not None and not vlm and not self._told_no_answers:
            self._told_no_answers = True  # said once a film, in a short sentence
            text = f"Without a vision-language model I can't answer questions. I see: {text}"
        elif question is None and loading:
            text += " (The model is still loading.)"
        elif question is None and not vlm and not self._told_no_model:
            self._told_no_model = True
            text += " (From the detectors: no vision-language model is set up.)"
        self.narrator.deliver(Description(start=t, text=text, source=self._answer_source))
        if self.perception.answering:
            self.narrator.expect_more()  # the model is still writing

    @Slot(float, str)
    def _on_answer_more(self, t: float, text: str) -> None:
        """The model's next sentence: said right after the one being spoken."""
        self.narrator.continue_with(Description(start=t, text=text, source=self._answer_source))

    def repeat_last(self) -> None:
        if not self.narrator.repeat_last():
            self.message.emit("Nothing has been described yet.", "info")

    def ask(self, question: str) -> str:
        """Answer a question about the current frame, honestly, from what the narrator has."""
        question = question.strip()
        if not question:
            self.message.emit("Type a question first.", "info")
            return ""
        t = self.playback.time_pos
        if self.settings.live_analysis and self.media is not None and self.media.has_video and \
                self.perception.describe_now(t, self.playback.frame_rgb(), question):
            self._asked = question
            self.message.emit("Looking...", "state")
            return ""
        now = self.narrator.describe_now(t, "" if not self.settings.live_analysis
                                         else self._why_not_looking())
        if not self.settings.live_analysis:
            why = "live scene analysis is off (turn it on in Settings)"
        elif self.perception.vlm_loading:
            why = "the vision-language model is still loading; ask again in a moment"
        else:
            why = "no vision-language model is set up"
        answer = (f"I can't look at the picture to answer questions yet: {why}. The description "
                  f"for this moment is: {now.text}")
        self.narrator.deliver(replace(now, text=answer, source="answer"))
        return answer

    def change_verbosity(self, step: int) -> None:
        self.set_verbosity(self.settings.verbosity + step)

    def set_verbosity(self, level: int) -> None:
        level = min(max(level, 1), 3)
        self._update(verbosity=level)
        self._say_state(f"Verbosity {VERBOSITY_NAMES[level]}.")

    def toggle_narration(self) -> None:
        self.set_narration(not self.settings.narration)

    def set_narration(self, on: bool) -> None:
        self._update(narration=on)
        if on:
            self._say_state("Narration on.")
        else:  # silence at once: shown and sent to the screen reader, not said
            self.message.emit("Narration off.", "state")

    def toggle_mode(self) -> None:
        """The next mode: automatic, lower the film, pause the film, and round again."""
        modes = list(MODES)
        self.set_mode(modes[(modes.index(self.settings.mode) + 1) % len(modes)])

    def set_mode(self, mode: str) -> None:
        self._update(mode=mode)
        self._say_state(MODE_SAID[self.settings.mode])

    def _say_state(self, text: str) -> None:
        """A setting the user changed by key: shown, sent to the screen reader, and said by
        the narrator's voice when that is how the user hears the narration."""
        self.message.emit(text, "state")
        self._speak_system(text)

    def _wanted_model(self) -> str:
        """The model to load: the one chosen, while live analysis is on (it is what asks)."""
        return self.settings.vlm_model if self.settings.live_analysis else ""

    def apply_settings(self, settings: Settings) -> None:
        """Use ``settings``, and save what they change (a value given on the command line for
        this run, and left alone, is not saved)."""
        old_model, old_live = self._wanted_model(), self.settings.live_analysis
        old, self.settings = self.settings, settings.normalized()
        changed = {f.name: getattr(self.settings, f.name) for f in fields(Settings)
                   if getattr(self.settings, f.name) != getattr(old, f.name)}
        self._stored = replace(self._stored, **changed)
        if self.settings.live_analysis != old_live:
            self._switch_analysis(self.settings.live_analysis)
        if self._wanted_model() != old_model:
            self.perception.set_vlm(self._wanted_model())
            if not self.settings.vlm_model and self.settings.live_analysis:
                self.message.emit("No vision-language model: descriptions come from people "
                                  "and text detection.", "info")
        s = self.settings
        if not (s.narration and s.live_analysis and s.wait_for_narrator):
            self._hold.end(USER)  # nothing to wait for any more
        self.narrator.set_settings(self.settings)
        self.settings_changed.emit(self.settings)
        if self._save is not None and changed:
            problem = self._save(self._stored)
            if problem:
                self.message.emit(problem, "error")

    def _switch_analysis(self, on: bool) -> None:
        """Live analysis turned on (it starts at the playhead) or off (it stops; a model
        loaded for it is let go)."""
        if not on:
            self.perception.stop_lookahead()
            self.message.emit("Live scene analysis is off.", "info")
            return
        self.perception.warm_up()
        self.narrator.forget_people()  # the analysis numbers the people it finds afresh
        info = self.media
        if info is not None and info.has_video:
            self.perception.open(info.path, info.duration, at=self.playback.time_pos,
                                 compose=not self._track_loaded)
        self.message.emit("Live scene analysis is on.", "info")

    def _update(self, **changes: object) -> None:
        self.apply_settings(replace(self.settings, **changes))  # type: ignore[arg-type]

    def close(self) -> None:
        self._hold.cancel()
        self.perception.close()
        self.scanner.stop()
        self.narrator.stop()
        self.speech.close()
        self.playback.terminate()
