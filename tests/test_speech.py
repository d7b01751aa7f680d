"""Speech: real espeak-ng through pyttsx3 and the command line, the fallback chain, and the
audio player that records when each sentence really started and ended."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from player.speech import (
    EspeakCliEngine,
    Pyttsx3Engine,
    SpeechClip,
    SpeechEngine,
    SpeechError,
    Synthesizer,
    SynthRequest,
    Voice,
    choose_engine,
    wav_duration,
)
from player.speech_output import SpeechOutput
from tests.conftest import wait_for

SHORT = "A man sits in a car."
LONG = ("A man sits in a car, talking, while fields and trees pass by the window behind him "
        "on a grey afternoon.")


@pytest.mark.parametrize("factory", [Pyttsx3Engine, EspeakCliEngine])
def test_real_engines_write_wav_whose_length_follows_the_text(factory, tmp_path):
    engine = factory()
    assert engine.problem() == ""
    short = engine.synthesize(SHORT, Voice(), tmp_path / "a.wav")
    long = engine.synthesize(LONG, Voice(), tmp_path / "b.wav")
    assert 0.5 < short.duration < 4.0
    assert long.duration > 2.5 * short.duration
    assert wav_duration(long.path) == pytest.approx(long.duration)


def test_faster_rate_gives_shorter_audio(tmp_path):
    engine = EspeakCliEngine()
    slow = engine.synthesize(LONG, Voice(rate=140), tmp_path / "slow.wav")
    fast = engine.synthesize(LONG, Voice(rate=280), tmp_path / "fast.wav")
    assert fast.duration < 0.7 * slow.duration


def test_without_espeak_ng_on_path_the_choice_explains_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    choice = choose_engine(order=("espeak-ng",))
    assert choice.engine is None
    assert "sudo apt install espeak-ng" in choice.notes[0]


class BrokenEngine(SpeechEngine):
    """An engine that exists but fails at synthesis, like a voice library that crashes."""

    name = "broken"

    def problem(self) -> str:
        return ""

    def synthesize(self, text: str, voice: Voice, out: Path) -> SpeechClip:
        raise SpeechError("the voice library crashed")


def test_failing_engine_falls_back_to_the_next_and_says_so():
    done = threading.Event()
    results: list[tuple[int, SpeechClip | None, str]] = []

    def on_done(key, clip, error):
        results.append((key, clip, error))
        done.set()

    synth = Synthesizer((BrokenEngine(), EspeakCliEngine()), on_done)
    try:
        synth.submit(SynthRequest(1, SHORT, Voice()))
        assert done.wait(10)
        key, clip, error = results[0]
        assert key == 1 and clip is not None and clip.duration > 0.5
        assert "broken failed" in error and "now using espeak-ng" in error
        assert synth.engine_name == "espeak-ng"
    finally:
        synth.close()


def test_speech_output_records_start_end_and_length(qapp):
    now = [0.0]
    out = SpeechOutput(clock=lambda: now[0], audio_options={"ao": "null"})
    try:
        finished = []
        out.finished.connect(finished.append)
        out.say(SHORT, Voice(), source="track", mode="duck")
        assert out.speaking
        wait_for(lambda: finished, timeout=10)
        rec = finished[0]
        assert rec.text == SHORT and not rec.interrupted
        assert rec.wall_end - rec.wall_start == pytest.approx(rec.duration, abs=0.35)
        assert out.records == [rec]
        assert not out.speaking
    finally:
        out.close()


def test_new_sentence_interrupts_the_current_one(qapp):
    out = SpeechOutput(clock=lambda: 0.0, audio_options={"ao": "null"})
    try:
        started, finished = [], []
        out.started.connect(started.append)
        out.finished.connect(finished.append)
        out.say(LONG, Voice())
        wait_for(lambda: started, timeout=10)
        out.say(SHORT, Voice())
        wait_for(lambda: len(finished) == 2, timeout=10)
        assert finished[0].text == LONG and finished[0].interrupted
        assert finished[1].text == SHORT and not finished[1].interrupted
    finally:
        out.close()
