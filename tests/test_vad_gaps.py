"""Speech and gap detection on soundtracks the tests make: espeak-ng sentences at known times.

The truth is measured from each espeak clip itself (its first and last loud sample), so the
checks hold whatever voice espeak-ng happens to have.
"""

from __future__ import annotations

import json
import subprocess
import threading
import tracemalloc
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from models.gaps import (
    NO_SOUND_NOTE,
    GapAnalysis,
    GapCancelled,
    GapError,
    SpeechSegment,
    analyse,
    gaps_from_speech,
    scan_speech,
)
from models.types import Gap
from models.vad import EnergyVad, SileroVad, VadEngine, choose_vad
from tests.media import write_wav

FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
RATE = 22050
"""espeak-ng's own sample rate; the soundtracks are built at it."""

PAD = 0.15
MIN_GAP = 1.2
EDGE = 0.25
"""How far a detected speech edge may be from the truth."""
SLACK = 0.08
"""How much of a gap's padding a late speech onset (or early end) may eat."""

SENTENCES = (
    "The train pulls into the station at dawn.",
    "A woman in a red coat steps onto the platform.",
    "She looks at her watch and frowns.",
    "Somewhere a dog is barking.",
    "The doors close behind her.",
)
PAUSES = (3.0, 0.6, 2.2, 0.9)
"""Silence after each sentence but the last: long ones leave a gap, short ones do not."""
INTRO, OUTRO = 1.5, 4.0


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()[-800:]}")


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    return write_wav(path, samples, RATE)


def _speech_clip(folder: Path, text: str, n: int) -> np.ndarray:
    """An espeak-ng sentence trimmed to its loud part (the true speech extent)."""
    wav = folder / f"s{n}.wav"
    _run(["espeak-ng", "-w", str(wav), text])
    x = _read_wav(wav)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    return x[loud[0]:loud[-1] + 1]


def _chord(seconds: float, dbfs: float = -32.0) -> np.ndarray:
    """Quiet "music": a slowly swelling A minor chord with a little vibrato."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t) / f * 10)
               for f in (220.0, 261.6, 329.6, 440.0))
    tone *= 0.75 + 0.25 * np.sin(2 * np.pi * 0.2 * t)
    tone /= np.sqrt(np.mean(tone ** 2))
    return (tone * 10 ** (dbfs / 20)).astype(np.float32)


@dataclass(frozen=True)
class Soundtrack:
    wav: Path
    speech: tuple[SpeechSegment, ...]
    duration: float

    def long_pauses(self) -> list[tuple[float, float]]:
        """Silences between sentences long enough for a gap after padding."""
        out = []
        for a, b in zip(self.speech, self.speech[1:], strict=False):
            if b.start - a.end >= MIN_GAP + 2 * PAD + 0.5:
                out.append((a.end, b.start))
        return out

    def short_pauses(self) -> list[tuple[float, float]]:
        return [(a.end, b.start) for a, b in zip(self.speech, self.speech[1:], strict=False)
                if b.start - a.end < MIN_GAP]


def _soundtrack(folder: Path, name: str, music: bool) -> Soundtrack:
    clips = [_speech_clip(folder, text, n) for n, text in enumerate(SENTENCES)]
    t, truth = INTRO, []
    for clip, pause in zip(clips, (*PAUSES, OUTRO), strict=True):
        truth.append(SpeechSegment(t, t + clip.size / RATE))
        t += clip.size / RATE + pause
    total = np.zeros(int(t * RATE) + 1, np.float32)
    for clip, seg in zip(clips, truth, strict=True):
        at = round(seg.start * RATE)
        total[at:at + clip.size] += clip
    if music:
        total += _chord(total.size / RATE)
    return Soundtrack(_write_wav(folder / name, total), tuple(truth), total.size / RATE)


def _mux(folder: Path, wav: Path, name: str, audio: list[str] | None = None,
         video: bool = True) -> Path:
    out = folder / name
    args = [*FFMPEG]
    if video:
        args += ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=10"]
    args += ["-i", str(wav)]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest"]
    args += audio or ["-c:a", "aac", "-b:a", "96k"]
    _run([*args, str(out)])
    return out


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Soundtrack, Path]:
    """Speech over quiet music, as an MP4 with a test-pattern picture."""
    folder = tmp_path_factory.mktemp("scene")
    track = _soundtrack(folder, "music.wav", music=True)
    return track, _mux(folder, track.wav, "scene.mp4")


@pytest.fixture(scope="session")
def quiet_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Soundtrack, Path]:
    """The same speech over silence."""
    folder = tmp_path_factory.mktemp("quiet")
    track = _soundtrack(folder, "quiet.wav", music=False)
    return track, _mux(folder, track.wav, "quiet.mp4")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    engine = SileroVad()
    assert engine.problem() == ""
    return engine


def _covered(segments: tuple[SpeechSegment, ...], a: float, b: float) -> bool:
    """True when the detected ``segments`` cover ``[a, b]`` with no hole."""
    cursor = a
    for seg in sorted(segments, key=lambda s: s.start):
        if seg.start <= cursor + 1e-6:
            cursor = max(cursor, seg.end)
    return cursor >= b - 1e-6


def _check_against_truth(result: GapAnalysis, track: Soundtrack) -> None:
    for true in track.speech:
        assert _covered(result.speech, true.start + EDGE, true.end - EDGE), \
            f"speech {true} not covered by {result.speech}"
        for gap in result.gaps:
            assert gap.end <= true.start or gap.start >= true.end, f"{gap} overlaps speech {true}"
    for a, b in track.long_pauses():
        found = [g for g in result.gaps if g.start < b and g.end > a]
        assert len(found) == 1, f"pause {a:.2f}-{b:.2f} gave gaps {found}"
        gap = found[0]
        assert a + PAD - SLACK <= gap.start <= a + PAD + EDGE, (a, gap)
        assert b - PAD - EDGE <= gap.end <= b - PAD + SLACK, (b, gap)
    for a, b in track.short_pauses():
        assert not [g for g in result.gaps if g.start < b and g.end > a], (a, b, result.gaps)
    # Before the first line and after the last the gaps reach the ends of the file, unpadded.
    first, last = result.gaps[0], result.gaps[-1]
    assert first.start == 0.0 and track.speech[0].start - PAD - EDGE <= first.end
    assert last.end == pytest.approx(result.duration)
    assert last.start <= track.speech[-1].end + PAD + EDGE
    # An MP4 made with -shortest ends with its last video frame, a little after the sound.
    assert result.duration == pytest.approx(track.duration, abs=0.6)


def test_silero_finds_speech_and_music_gaps(scene, silero) -> None:
    track, video = scene
    result = analyse(video, engine=silero, use_cache=False)
    assert result.engine == "silero" and result.has_audio and not result.from_cache
    assert len(result.speech) >= 4
    _check_against_truth(result, track)
    assert len(result.gaps) == len(track.long_pauses()) + 2


def test_energy_vad_over_silence(quiet_scene) -> None:
    track, video = quiet_scene
    result = analyse(video, engine=EnergyVad(), use_cache=False)
    assert result.engine == "energy"
    _check_against_truth(result, track)


def test_silero_over_silence(quiet_scene, silero) -> None:
    track, video = quiet_scene
    _check_against_truth(analyse(video, engine=silero, use_cache=False), track)


@pytest.mark.parametrize("variant, audio", [
    ("mono8k.wav", ["-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le"]),
    ("stereo44k.mkv", ["-ac", "2", "-ar", "44100", "-c:a", "flac"]),
    ("surround48k.mp4", ["-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=0*c0|BL=0.5*c0|BR=0.5*c0",
                         "-ar", "48000", "-c:a", "aac", "-b:a", "192k"]),
    ("opus48k.webm", ["-ac", "2", "-ar", "48000", "-c:a", "libopus", "-b:a", "48k"]),
])
def test_formats_give_the_same_gaps(scene, silero, tmp_path, variant, audio) -> None:
    track, video = scene
    reference = analyse(video, engine=silero, use_cache=False)
    other = _mux(tmp_path, track.wav, variant, audio=audio, video=variant.endswith(".mp4"))
    result = analyse(other, engine=silero, use_cache=False)
    assert len(result.gaps) == len(reference.gaps), (result.gaps, reference.gaps)
    for got, want in zip(result.gaps, reference.gaps, strict=True):
        assert got.start == pytest.approx(want.start, abs=0.15)
        if want is not reference.gaps[-1]:  # the last ends with the file, picture or not
            assert got.end == pytest.approx(want.end, abs=0.15)
    assert result.gaps[-1].end == pytest.approx(result.duration)
    _check_against_truth(result, track)


def test_no_sound_track_is_one_gap(tmp_path) -> None:
    video = tmp_path / "silent-film.mp4"
    _run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=7", "-c:v", "libx264",
          "-preset", "ultrafast", str(video)])
    result = analyse(video)
    assert not result.has_audio and result.speech == ()
    assert result.gaps == (Gap(0.0, result.duration),)
    assert result.duration == pytest.approx(7.0, abs=0.15)
    assert NO_SOUND_NOTE in result.notes
    assert list(scan_speech(video)) == []


def test_silent_track_is_one_gap(tmp_path, silero) -> None:
    video = tmp_path / "hush.mp4"
    _run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=6", "-f", "lavfi",
          "-i", "anullsrc=r=48000:cl=stereo", "-t", "6", "-c:v", "libx264", "-preset",
          "ultrafast", "-c:a", "aac", str(video)])
    for engine in (silero, EnergyVad()):
        result = analyse(video, engine=engine, use_cache=False)
        assert result.has_audio and result.speech == ()
        assert len(result.gaps) == 1 and result.gaps[0].start == 0.0
        assert result.gaps[0].end == pytest.approx(6.0, abs=0.15)


def test_range_scan_stays_on_the_media_clock(scene, silero) -> None:
    track, video = scene
    full = list(scan_speech(video, silero))
    lo, hi = track.speech[1].start - 0.8, track.speech[3].end + 0.5
    part = list(scan_speech(video, silero, start=lo, stop=hi, chunk_seconds=3.0))
    assert part and all(lo - 1e-6 <= s.start and s.end <= hi + 1e-6 for s in part)
    inside = [s for s in full if lo < s.start and s.end < hi]
    assert len(part) == len(inside)
    for got, want in zip(part, inside, strict=True):
        assert got.start == pytest.approx(want.start, abs=0.1)
        assert got.end == pytest.approx(want.end, abs=0.1)


def test_scan_yields_as_it_goes_and_cancel_stops_it(scene, silero) -> None:
    track, video = scene
    cancel = threading.Event()
    seen: list[float] = []

    def progress(done: float, duration: float) -> None:
        seen.append(done)
        assert duration == pytest.approx(track.duration, abs=0.6)
        if done >= 6.0:
            cancel.set()

    segments = list(scan_speech(video, silero, chunk_seconds=2.0, cancel=cancel,
                                on_progress=progress))
    assert cancel.is_set() and seen[-1] < track.duration - 2.0
    assert all(s.end <= seen[-1] + 1e-6 for s in segments)
    with pytest.raises(GapCancelled):
        analyse(video, engine=silero, cancel=cancel, chunk_seconds=2.0)
    assert not any(Path(p).is_file() for p in _cache_files())


def _cache_files() -> list[Path]:
    from models.cache import cache_dir

    folder = cache_dir() / "gaps"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50,
                                     bytes(range(256)) * 400])
def test_broken_files_raise_gap_error_naming_them(tmp_path, content) -> None:
    bad = tmp_path / "holiday-broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(GapError, match="holiday-broken.mp4") as caught:
        analyse(bad)
    with pytest.raises(GapError, match="holiday-broken.mp4"):
        list(scan_speech(bad, EnergyVad()))
    # In words: never FFmpeg's error number ("[Errno 1094995529] Invalid data found...").
    assert str(caught.value) == ("holiday-broken.mp4 could not be read: it is not a video file, "
                                 "or it is damaged.")


def test_missing_file_raises_gap_error(tmp_path) -> None:
    with pytest.raises(GapError, match="nowhere.mkv"):
        analyse(tmp_path / "nowhere.mkv")


def test_truncated_file_raises_or_reads_what_is_there(scene, tmp_path) -> None:
    _, video = scene
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    try:
        result = analyse(cut, engine=EnergyVad(), use_cache=False)
    except GapError as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert result.duration > 0


def test_cache_hit_and_corrupt_cache(scene, silero) -> None:
    _, video = scene
    first = analyse(video, engine=silero)
    assert not first.from_cache
    files = _cache_files()
    assert len(files) == 1 and files[0].name.endswith("-silero-1.2-0.15.json")
    second = analyse(video, engine=silero)
    assert second.from_cache and second.elapsed < first.elapsed
    assert second.gaps == first.gaps and second.speech == first.speech
    files[0].write_text("{ this is not json", encoding="utf-8")
    third = analyse(video, engine=silero)
    assert not third.from_cache and third.gaps == first.gaps
    assert json.loads(files[0].read_text(encoding="utf-8"))["version"] == 1
    assert analyse(video, engine=silero).from_cache


def test_cache_write_failure_is_ignored(scene, silero, tmp_path, monkeypatch, caplog) -> None:
    _, video = scene
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    result = analyse(video, engine=silero)
    assert result.gaps and not result.from_cache
    assert "could not save the gap cache" in caplog.text


def test_gaps_from_speech_rules() -> None:
    speech = [SpeechSegment(2.0, 4.0), SpeechSegment(4.5, 6.0), SpeechSegment(9.0, 10.0)]
    assert gaps_from_speech(speech, 20.0) == [Gap(0.0, 1.85), Gap(6.15, 8.85), Gap(10.15, 20.0)]
    assert gaps_from_speech(speech, 20.0, min_gap=3.0) == [Gap(10.15, 20.0)]
    assert gaps_from_speech([], 5.0) == [Gap(0.0, 5.0)]
    assert gaps_from_speech(speech, 10.0) == [Gap(0.0, 1.85), Gap(6.15, 8.85)]
    assert gaps_from_speech(speech, 20.0, start=5.0) == [Gap(6.15, 8.85), Gap(10.15, 20.0)]
    assert gaps_from_speech([SpeechSegment(0.0, 3.0)], 3.5) == []


class _Missing(SileroVad):
    runtime_module = "onnxruntime_not_installed_here"


def test_engine_problems_and_fallback(tmp_path) -> None:
    assert "pip install onnxruntime" in _Missing().problem()
    missing = tmp_path / "gone.onnx"
    assert str(missing) in SileroVad(model_path=missing).problem()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    assert str(junk) in SileroVad(model_path=junk).problem()
    engine, notes = choose_vad(factories={"silero": _Missing, "energy": EnergyVad})
    assert engine.name == "energy" and "pip install onnxruntime" in notes[0]
    engine, notes = choose_vad()
    assert engine.name == "silero" and notes == ()
    engine, notes = choose_vad(("nonesuch",))
    assert engine.name == "energy" and "nonesuch" in notes[0]


@pytest.mark.parametrize("factory", [SileroVad, EnergyVad])
def test_engines_stream_in_any_chunking(factory) -> None:
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(16000 * 3) * 0.05).astype(np.float32)
    engine: VadEngine = factory()
    whole = engine.probabilities(audio)
    engine.reset()
    pieces = [engine.probabilities(audio[i:i + 1000]) for i in range(0, audio.size, 1000)]
    assert whole.shape == (audio.size // 512,) and whole.dtype == np.float32
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
    assert ((whole >= 0) & (whole <= 1)).all()


def _long_file(folder: Path, minutes: float) -> Path:
    """Silence with a steady tone (5 s) and a noise burst (3 s) every 20 s: 8 kHz mono WAV,
    made straight by ffmpeg. The energy detector takes the bursts for speech, not the tones."""
    out = folder / f"long{minutes}.wav"
    expr = ("0.3*sin(2*PI*440*t)*between(mod(t\\,20)\\,5\\,10)"
            "+0.3*(2*random(0)-1)*between(mod(t\\,20)\\,15\\,18)")
    _run([*FFMPEG, "-f", "lavfi", "-i", f"aevalsrc={expr}:s=8000:d={minutes * 60}",
          "-c:a", "pcm_s16le", str(out)])
    return out


def test_memory_stays_flat(tmp_path) -> None:
    peaks = {}
    for minutes in (2, 20):
        path = _long_file(tmp_path, minutes)
        tracemalloc.start()
        result = analyse(path, engine=EnergyVad(), use_cache=False)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.duration == pytest.approx(minutes * 60, abs=0.5)
        assert len(result.speech) == minutes * 60 / 20
        assert all(14.9 <= s.start % 20 and s.end % 20 <= 18.1 for s in result.speech)
    assert peaks[20] <= 1.5 * peaks[2], peaks
