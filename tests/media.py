"""Media the tests make for themselves with ffmpeg and espeak-ng.

Every generator writes into a folder the test owns and returns the path. Clips are small and
short so the suite stays fast on two cores.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from models.pipeline.reader import sample_times

FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()[-800:]}")


def make_clip(folder: Path, name: str = "clip.mp4", seconds: float = 12.0, size: str = "320x240",
              rate: int = 25, audio: bool = True, colour: str | None = None) -> Path:
    """A test-pattern video (moving bars, a running clock) with a 440 Hz tone, H.264 + AAC.

    With ``colour`` the picture is one flat colour (for pixel checks on screenshots).
    """
    out = folder / name
    if colour:
        video = f"color=c={colour}:s={size}:r={rate}:d={seconds}"
    else:
        video = f"testsrc2=s={size}:r={rate}:d={seconds}"
    args = [*FFMPEG, "-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(rate)]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    _run([*args, str(out)])
    return out


def make_audio_only(folder: Path, name: str = "sound.m4a", seconds: float = 6.0) -> Path:
    out = folder / name
    _run([*FFMPEG, "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
          "-c:a", "aac", str(out)])
    return out


def make_zero_length(folder: Path, name: str = "empty.mp4") -> Path:
    out = folder / name
    out.write_bytes(b"")
    return out


def make_corrupt(folder: Path, name: str = "corrupt.mp4", size: int = 200_000) -> Path:
    """Bytes that are not a video at all, under a video file name."""
    out = folder / name
    block = bytes(range(256))
    out.write_bytes((block * (size // 256 + 1))[:size])
    return out


def make_truncated(folder: Path, name: str = "truncated.mp4") -> Path:
    """The first 4 KB of a real MP4 (moov at the end, so nothing can be decoded)."""
    full = make_clip(folder, name="full-" + name, seconds=4.0)
    out = folder / name
    out.write_bytes(full.read_bytes()[:4096])
    return out


def make_cut(folder: Path, name: str = "cut.mkv", seconds: float = 20.0,
             keep: float = 0.5) -> Path:
    """A clip that stops part way, as a download that did not finish: the first ``keep`` of the
    bytes of a Matroska file, or of an MP4 with its index at the front; both still declare the
    whole length. The whole file is beside it, named "whole-" + ``name``."""
    source = make_clip(folder, name="src-" + Path(name).stem + ".mp4", seconds=seconds)
    whole = folder / ("whole-" + name)
    front = ["-movflags", "+faststart"] if whole.suffix == ".mp4" else []
    _run([*FFMPEG, "-i", str(source), "-c", "copy", *front, str(whole)])
    data = whole.read_bytes()
    out = folder / name
    out.write_bytes(data[:int(len(data) * keep)])
    return out


def overwrite(src: Path, out: Path, at: float = 0.5, size: int = 60_000, seed: int = 1) -> Path:
    """A copy of ``src`` with ``size`` bytes of noise written over it at ``at`` of its length,
    as a bad sector or a broken transfer leaves a file: the data around it is intact."""
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    size = min(size, len(data) - start)
    data[start:start + size] = np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


def make_text_file(folder: Path, name: str = "notes.mp4") -> Path:
    out = folder / name
    out.write_text("This is a text file with a video name.\n" * 50)
    return out


def make_unknown_codec(folder: Path, name: str = "unknown-codec.avi") -> Path:
    """An AVI whose video track carries a FourCC no decoder knows (QQQQ), plus a good audio
    track: demuxing works, the picture cannot be decoded."""
    src = folder / ("src-" + name)
    _run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3", "-f", "lavfi", "-i",
          "sine=duration=3", "-c:v", "mpeg4", "-vtag", "FMP4", "-c:a", "pcm_s16le", str(src)])
    data = src.read_bytes()
    if data.count(b"FMP4") < 2:
        raise RuntimeError("the FourCC was not found in the AVI headers")
    out = folder / name
    out.write_bytes(data.replace(b"FMP4", b"QQQQ").replace(b"fmp4", b"qqqq"))
    return out


def make_speech(folder: Path, text: str, name: str = "speech.wav", voice: str = "en-us") -> Path:
    out = folder / name
    _run(["espeak-ng", "-v", voice, "-w", str(out), text])
    return out


def odd_name_copy(src: Path, folder: Path, name: str = "my vidéo — été 2024 ✓.mp4") -> Path:
    out = folder / name
    shutil.copyfile(src, out)
    return out


def write_vtt(folder: Path, cues: list[tuple[float, float, str, int]],
              name: str = "clip.descriptions.vtt") -> Path:
    """A WebVTT description track: (start, end, text, level) per cue."""

    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    lines = ["WEBVTT", "Kind: descriptions", ""]
    for i, (start, end, text, level) in enumerate(cues, 1):
        lines += [f"d{i} level={level}", f"{ts(start)} --> {ts(end)}", text, ""]
    out = folder / name
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Float samples (-1..1, mono) as a 16-bit WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes())
    return path


SIZE = "640x360"


def ffmpeg(*args: str) -> None:
    proc = subprocess.run([*FFMPEG, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.strip()[-800:]}")


def encode(out: Path, *inputs: str) -> Path:
    ffmpeg(*inputs, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(out))
    return out


def sample(path: Path, fps: float) -> list[tuple[float, np.ndarray]]:
    """RGB frames at ``fps``: for each time k/fps, the first frame shown at or after it."""
    frames: list[tuple[float, np.ndarray]] = []
    step, k = 1.0 / fps, 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.pts * frame.time_base)
            if t + SAMPLE_EPS >= k * step:
                frames.append((round(k * step, 3), frame.to_ndarray(format="rgb24")))
                k += 1
    return frames


@dataclass(frozen=True)
class Film:
    path: Path
    speech: list[tuple[float, float]]  # the true dialogue, measured from the samples
    duration: float


def make_film(folder: Path, lines: list[tuple[float, str]], duration: float) -> Film:
    """Dialogue lines at known times over quiet music, muxed with a test-pattern video."""
    n = int(duration * FILM_RATE)
    t = np.arange(n) / FILM_RATE
    music = 0.02 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t))
    track = music.astype(np.float32)
    truth = []
    for i, (start, text) in enumerate(lines):
        s = _speech_samples(folder, text, f"line{i}")
        a = int(start * FILM_RATE)
        track[a:a + s.size] += s * 0.8
        truth.append((start, start + s.size / FILM_RATE))
    wav = write_wav(folder / "soundtrack.wav", track, FILM_RATE)
    film = folder / "film.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s=160x120:r=25:d={duration}", "-i", str(wav), "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100",
                    "-shortest", str(film)], check=True)
    return Film(film, truth, duration)


LINES = [(0.3, "Where were you last night? I waited for hours."),
         (7.0, "I told you, the train was late again."),
         (13.0, "That is what you always say.")]


DENSE = [(0.2, "Where were you last night? I waited for hours and hours for you."),
         (4.3, "I told you, the train was late again, and my phone was dead."),
         (8.4, "That is what you always say, every single time, and I believe you."),
         (12.5, "Then believe me now, because it is the truth, whatever you think.")]


FILM_RATE = 16000
"""Sample rate of the soundtracks make_film writes."""
SAMPLE_EPS = 1e-3
"""Seconds of slack when sample() picks the frame for each sampling time."""


def _speech_samples(folder: Path, text: str, name: str) -> np.ndarray:
    wav = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "170", "-w", str(wav), text], check=True)
    out = folder / f"{name}-16k.raw"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-f", "s16le", "-ac", "1",
                    "-ar", str(FILM_RATE), str(out)], check=True)
    samples = np.frombuffer(out.read_bytes(), dtype=np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0]:loud[-1] + 1]


def x264_args(*extra: str) -> list[str]:
    """x264 arguments for a quick, widely readable test encode."""
    return ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra]


def decoded_times(path: Path) -> list[float]:
    """Every frame's time straight from PyAV, the ground truth for sampling checks."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        offset = container.start_time / 1e6 if container.start_time is not None else 0.0
        return [float(f.pts * f.time_base) - offset for f in container.decode(stream)]


def expected_samples(times: list[float], fps: float, start: float = 0.0) -> list[float]:
    """The first frame at or after each sample time, each frame at most once."""
    chosen: list[float] = []
    for s in sample_times(start, max(times) + 1, fps):
        later = [t for t in times if t >= s - 1e-4]
        if later and later[0] not in chosen:
            chosen.append(later[0])
    return chosen


def grace_hopper() -> np.ndarray:
    """matplotlib's sample photograph (installed with mediapipe, the perception extra): a
    portrait of Grace Hopper in uniform, with a tie."""
    spec = importlib.util.find_spec("matplotlib")
    assert spec is not None and spec.submodule_search_locations, "matplotlib is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data" / \
        "grace_hopper.jpg"
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")
