"""How fast speech is found: a generated 10-minute soundtrack, each detector side by side.

    .venv/bin/python benchmarks/bench_vad.py [--minutes 10] [--runs 3]

Builds an MP4 (tiny test-pattern picture, AAC sound: espeak-ng sentences over a quiet chord),
then times, median of ``--runs`` each:

- decode only: PyAV decoding and resampling to 16 kHz mono, through ``scan_speech`` with a
  detector that does no work, so the rest of the pipeline is counted too;
- each detector on the decoded audio held in memory (the VAD cost alone);
- each detector end to end through ``scan_speech`` (what the player pays).

Speeds are multiples of real time (10 minutes of sound judged in 10 s is 60x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.gaps import scan_speech  # noqa: E402
from models.vad import SAMPLE_RATE, EnergyVad, SileroVad, VadEngine  # noqa: E402

RATE = 22050
SENTENCES = (
    "The train pulls into the station at dawn.",
    "A woman in a red coat steps onto the platform.",
    "She looks at her watch and frowns.",
    "Somewhere a dog is barking.",
    "The doors close behind her.",
    "Nobody told me the meeting had moved to Thursday.",
    "Then we will have to start again from the beginning.",
    "Look out of the window, it is snowing.",
)


class NullVad(VadEngine):
    """Judges nothing: what is left of a scan is decoding, resampling and bookkeeping."""

    name = "none"

    def problem(self) -> str:
        return ""

    def _reset_state(self) -> None:
        pass

    def _windows(self, windows: np.ndarray) -> np.ndarray:
        return np.zeros(len(windows), np.float32)


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=600)


def make_soundtrack(folder: Path, minutes: float) -> Path:
    """Speech (about half the time) over a quiet chord, as an MP4 with a tiny picture."""
    rng = np.random.default_rng(7)
    clips = []
    for n, text in enumerate(SENTENCES):
        wav = folder / f"s{n}.wav"
        _run(["espeak-ng", "-w", str(wav), text])
        with wave.open(str(wav)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        clips.append(pcm.astype(np.float32) / 32768)
    total = int(minutes * 60 * RATE)
    t = np.arange(total) / RATE
    track = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.6, 329.6)).astype(np.float32)
    track *= 0.01
    at = int(RATE * 1.0)
    while at < total:
        clip = clips[rng.integers(len(clips))]
        end = min(total, at + clip.size)
        track[at:end] += clip[:end - at]
        at = end + int(RATE * rng.uniform(0.3, 4.0))
    wav = folder / "soundtrack.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(track, -1, 1) * 32767).astype(np.int16).tobytes())
    out = folder / "soundtrack.mp4"
    _run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
          "testsrc2=s=160x120:r=5", "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast",
          "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", str(out)])
    wav.unlink()
    return out


def decode(path: Path) -> np.ndarray:
    """The whole soundtrack at 16 kHz mono, in memory (for timing the detectors alone)."""
    blocks: list[np.ndarray] = []

    class Keep(NullVad):
        def probabilities(self, audio: np.ndarray) -> np.ndarray:
            blocks.append(np.array(audio, np.float32))
            return super().probabilities(audio)

    for _ in scan_speech(path, Keep()):
        pass
    return np.concatenate(blocks)


def median_seconds(job: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        job()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def time_engine(label: str, engine: VadEngine, media: Path, audio: np.ndarray,
                runs: int) -> str:
    """One line: the detector alone on audio in memory, then end to end on the file."""
    problem = engine.problem()
    if problem:
        return f"{label}: unavailable ({problem})"
    seconds = audio.size / SAMPLE_RATE

    def judge() -> None:
        engine.reset()
        engine.probabilities(audio)

    found: list[int] = []

    def scan() -> None:
        found.append(len(list(scan_speech(media, engine))))

    vad_s = median_seconds(judge, runs)
    scan_s = median_seconds(scan, runs)
    return (f"{label}: detector alone {vad_s:.2f} s ({seconds / vad_s:.0f}x real time); "
            f"end to end {scan_s:.2f} s ({seconds / scan_s:.0f}x real time); "
            f"{found[-1]} speech segments")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engines: list[tuple[str, Callable[[], VadEngine]]] = [
        ("silero, 1 thread", lambda: SileroVad(threads=1)),
        ("silero, 2 threads", lambda: SileroVad(threads=2)),
        ("energy", EnergyVad),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-vad-") as tmp:
        began = time.perf_counter()
        media = make_soundtrack(Path(tmp), args.minutes)
        seconds = args.minutes * 60
        print(f"soundtrack: {args.minutes:g} min of speech over a chord, AAC in MP4, "
              f"made in {time.perf_counter() - began:.1f} s")
        print(f"machine: {os.cpu_count()} CPU cores; median of {args.runs} runs")
        audio = decode(media)
        print(f"decoded: {audio.size / SAMPLE_RATE:.1f} s at 16 kHz mono")

        decode_s = median_seconds(lambda: list(scan_speech(media, NullVad())), args.runs)
        print(f"decode only (PyAV + resample, no detector): {decode_s:.2f} s, "
              f"{seconds / decode_s:.0f}x real time")
        for label, factory in engines:
            print(time_engine(label, factory(), media, audio, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
