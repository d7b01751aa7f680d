"""Export with an audio-description track: real ffmpeg, real espeak-ng, media made here.

The film is a test pattern with a steady 440 Hz tone at -12 dBFS, so the ducking can be
measured on the tone alone, and the speech (broadband, 1-4 kHz) can be told apart from it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from player.media import mux as export
from player.media.mux import ExportError, PlacedClip, export_described
from tests.media import FFMPEG, make_speech

RATE = 16000  # analysis rate
TONE_DB = -12.0
CLIP_STARTS = (2.0, 6.0)


def _make_film(folder: Path, name: str = "film.mp4", seconds: float = 10.0,
               audio: bool = True) -> Path:
    out = folder / name
    amp = 10 ** (TONE_DB / 20)
    args = [*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}"]
    if audio:
        wave = f"{amp}*sin(2*PI*440*t)"
        args += ["-f", "lavfi", "-i", f"aevalsrc={wave}|{wave}:s=48000:d={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "128k"]
    subprocess.run([*args, str(out)], check=True, capture_output=True, timeout=120)
    return out


def _streams(path: Path) -> list[dict]:
    proc = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                           str(path)], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout)["streams"]


def _stream_hash(path: Path, spec: str) -> str:
    proc = subprocess.run([*FFMPEG, "-i", str(path), "-map", spec, "-c", "copy", "-f",
                           "streamhash", "-hash", "md5", "-"], check=True, capture_output=True,
                          text=True, timeout=60)
    return proc.stdout.strip().split("=")[-1]


def _decode(path: Path, spec: str) -> np.ndarray:
    proc = subprocess.run([*FFMPEG, "-i", str(path), "-map", spec, "-f", "f32le", "-ac", "1",
                           "-ar", str(RATE), "-"], check=True, capture_output=True, timeout=60)
    return np.frombuffer(proc.stdout, dtype=np.float32)


def _spectrum(x: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    seg = x[int(t0 * RATE):int(t1 * RATE)].astype(np.float64)
    window = np.hanning(len(seg))
    spec = np.abs(np.fft.rfft(seg * window)) / (window.sum() / 2)  # a sine's peak amplitude
    return np.fft.rfftfreq(len(seg), 1 / RATE), spec


def tone_db(x: np.ndarray, t0: float, t1: float, freq: float = 440.0) -> float:
    """Level in dB of the ``freq`` component between ``t0`` and ``t1`` seconds."""
    freqs, spec = _spectrum(x, t0, t1)
    k = int(np.argmin(np.abs(freqs - freq)))
    return float(20 * np.log10(spec[k - 1:k + 2].max() + 1e-12))


def band_db(x: np.ndarray, t0: float, t1: float, lo: float = 1000, hi: float = 4000) -> float:
    """Energy in dB of everything between ``lo`` and ``hi`` Hz."""
    freqs, spec = _spectrum(x, t0, t1)
    band = (freqs >= lo) & (freqs <= hi)
    return float(10 * np.log10(np.sum(spec[band] ** 2) + 1e-20))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export-media")
    _make_film(folder)
    _make_film(folder, "silent.mp4", audio=False)
    make_speech(folder, "A red car drives slowly past the old house.", "one.wav")
    make_speech(folder, "She opens the front door and smiles at the dog.", "two.wav")
    return folder


def _clips(media: Path) -> list[PlacedClip]:
    return [PlacedClip(start, media / name, export._clip_length(PlacedClip(0, media / name, 0)),
                       text=name)
            for start, name in zip(CLIP_STARTS, ("one.wav", "two.wav"), strict=True)]


@pytest.fixture(scope="module")
def described(media: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("export-out") / "film.described.mp4"
    late = PlacedClip(12.0, media / "two.wav", 2.0, "after the end")
    seen: list[float] = []
    result = export_described(media / "film.mp4", [*_clips(media), late], out,
                              language="fra", progress=seen.append)
    return result, seen


def test_streams_and_tags(media: Path, described) -> None:
    result, seen = described
    assert result.path.is_file() and result.clips == 2 and result.audio_streams == 2
    assert not [p for p in result.path.parent.iterdir() if p != result.path]  # no temp left
    streams = _streams(result.path)
    assert [s["codec_type"] for s in streams] == ["video", "audio", "audio"]
    original, ad = streams[1], streams[2]
    assert ad["codec_name"] == "aac" and int(ad["sample_rate"]) == 48000
    assert ad["channels"] == 2
    tags = ad.get("tags", {})
    assert "Audio description" in (tags.get("title"), tags.get("handler_name"))
    assert tags.get("language") == "fra"
    assert ad["disposition"]["visual_impaired"] == 1
    assert ad["disposition"]["default"] == 0
    assert original["disposition"]["default"] == 1
    assert original["disposition"]["visual_impaired"] == 0
    # Video and original audio are copied, packet for packet.
    src = media / "film.mp4"
    assert streams[0]["codec_name"] == _streams(src)[0]["codec_name"]
    assert _stream_hash(result.path, "0:v") == _stream_hash(src, "0:v")
    assert _stream_hash(result.path, "0:a:0") == _stream_hash(src, "0:a:0")
    # Progress rose to 1.
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_late_clip_is_left_out_with_a_warning(media: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    late = PlacedClip(10.5, media / "two.wav", 2.0, "after the end")
    with caplog.at_level(logging.WARNING, logger="player.media.mux"):
        result = export_described(media / "film.mp4", [late], tmp_path / "late.mkv")
    assert result.clips == 0
    assert "after the end" in caplog.text


def test_ducking_and_speech_levels(media: Path, described) -> None:
    result, _ = described
    original = _decode(media / "film.mp4", "0:a:0")
    ad = _decode(result.path, "0:a:1")
    assert abs(len(ad) - len(original)) < RATE * 0.1
    reference = tone_db(original, 0.3, 1.5)
    clips = _clips(media)
    # Outside the narration (and its fades) the bed is the original, untouched.
    first, second = clips
    outside = [(0.3, 1.5), (first.start + first.duration + 0.25, second.start - 0.25),
               (second.start + second.duration + 0.25, 9.9)]
    for t0, t1 in outside:
        assert t1 - t0 >= 0.4, "the narration leaves too little room to measure"
        assert tone_db(ad, t0, t1) == pytest.approx(tone_db(original, t0, t1), abs=1.0)
    # In the middle of each narration window the tone is 11 dB down.
    for clip in clips:
        mid0, mid1 = clip.start + 0.4, clip.start + clip.duration - 0.4
        assert tone_db(ad, mid0, mid1) - reference == pytest.approx(-11.0, abs=2.0)
    # Speech: broadband energy in 1-4 kHz inside the windows, none well before the first one.
    quiet = band_db(ad, 0.3, 1.5)
    for clip in clips:
        assert band_db(ad, clip.start + 0.2, clip.start + clip.duration - 0.2) > quiet + 30
    assert band_db(ad, 0.3, 1.5) == pytest.approx(band_db(original, 0.3, 1.5), abs=6.0)


def test_video_without_audio_gets_narration_over_silence(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "silent.described.mp4"
    result = export_described(media / "silent.mp4", _clips(media), out)
    streams = _streams(out)
    assert [s["codec_type"] for s in streams] == ["video", "audio"]
    assert result.audio_streams == 1
    assert int(streams[1]["sample_rate"]) == 48000
    assert streams[1]["disposition"]["visual_impaired"] == 1
    ad = _decode(out, "0:a:0")
    assert len(ad) == pytest.approx(10.0 * RATE, abs=0.1 * RATE)
    before = band_db(ad, 0.3, 1.5)
    for clip in _clips(media):
        assert band_db(ad, clip.start + 0.2, clip.start + clip.duration - 0.2) > before + 40
    assert np.abs(ad[int(0.3 * RATE):int(1.5 * RATE)]).max() < 1e-3


def test_mkv_output(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "film.described.mkv"
    result = export_described(media / "film.mp4", _clips(media), out)
    assert result.audio_streams == 2
    streams = _streams(out)
    assert [s["codec_type"] for s in streams] == ["video", "audio", "audio"]
    ad = streams[2]
    assert ad["tags"]["title"] == "Audio description"
    assert ad["tags"]["language"] == "eng"
    assert ad["disposition"]["visual_impaired"] == 1 and ad["disposition"]["default"] == 0
    assert streams[1]["disposition"]["default"] == 1


def test_many_overlapping_clips(media: Path, tmp_path: Path) -> None:
    """Dozens of clips, most overlapping: laid on lanes, all mixed, no giant command line."""
    one = _clips(media)[0]
    clips = [PlacedClip(0.5 + 0.12 * i, one.path, one.duration) for i in range(60)]
    result = export_described(media / "film.mp4", clips, tmp_path / "many.mp4")
    assert result.clips == 60
    ad = _decode(result.path, "0:a:1")
    assert band_db(ad, 3.0, 4.0) > band_db(ad, 0.05, 0.4) + 30


def test_windows_merge_and_lanes() -> None:
    w = export._Window
    merged = export.merge_windows([w(5, 6), w(1, 2), w(2.4, 3), w(6.2, 7)], fade=0.15)
    assert merged == [w(1, 2), w(2.4, 3), w(5, 7)]
    assert export.merge_windows([w(1, 2), w(2.25, 3), w(2.5, 2.7)], 0.15) == [w(1, 3)]
    clips = [PlacedClip(s, Path(f"{s}.wav"), 1.0) for s in (0.0, 0.5, 1.0, 1.6, 3.0)]
    lanes = export._lanes(clips, [1.0] * 5)
    assert [[c.start for c in lane] for lane in lanes] == [[0.0, 1.0, 3.0], [0.5, 1.6]]


def test_refuses_to_overwrite_the_source(media: Path) -> None:
    with pytest.raises(ExportError, match="over the video"):
        export_described(media / "film.mp4", _clips(media), media / "film.mp4")
    with pytest.raises(ExportError, match="over the video"):
        export_described(media / "film.mp4", _clips(media), media / "." / "film.mp4")


def test_missing_inputs_are_named(media: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="nothere.mp4"):
        export_described(tmp_path / "nothere.mp4", [], tmp_path / "out.mp4")
    gone = PlacedClip(3.0, tmp_path / "sentence-0042.wav", 1.0)
    with pytest.raises(ExportError, match="sentence-0042.wav"):
        export_described(media / "film.mp4", [*_clips(media), gone], tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_missing_ffmpeg_gives_the_install_hint(media: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ExportError, match="sudo apt install ffmpeg"):
        export_described(media / "film.mp4", _clips(media), tmp_path / "out.mp4")


def test_ffmpeg_failure_reports_its_error(media: Path, tmp_path: Path) -> None:
    bad = tmp_path / "not-audio.wav"
    bad.write_text("this is not a wave file\n" * 10)
    with pytest.raises(ExportError, match="The export failed: .+"):
        export_described(media / "film.mp4", [PlacedClip(1.0, bad, 1.0)], tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-audio.wav"]


def test_cancel_from_progress_stops_and_leaves_nothing(media: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    with pytest.raises(ExportError, match="Export cancelled."):
        export_described(media / "film.mp4", _clips(media), tmp_path / "out.mp4",
                         progress=lambda fraction: stop.set(), cancel=stop)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_on_replace(media: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export.os, "replace", full)
    with pytest.raises(ExportError, match="The disk is full"):
        export_described(media / "film.mp4", _clips(media), tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_on_a_tiny_disk(media: Path, tmp_path: Path) -> None:
    """A real full disk: a 200 KB tmpfs (needs root and mount rights)."""
    small = tmp_path / "small"
    small.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(small)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); "
                    f"test_disk_full_on_replace covers the message")
    try:
        with pytest.raises(ExportError, match="The disk is full"):
            export_described(media / "film.mp4", _clips(media), small / "out.mp4")
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


@pytest.mark.parametrize("short_by", [2_000, 100_000])
def test_a_disk_that_fills_near_the_end_leaves_the_old_file_untouched(
        media: Path, described, tmp_path: Path, short_by: int) -> None:
    """The disk fills while ffmpeg finishes the file (writing its index): ffmpeg was seen to end
    with success and leave a file without its index, which replaced a good file of that name.
    A real tmpfs, filled to leave a little less room than the export needs."""
    needed = described[0].path.stat().st_size
    small = tmp_path / "small"
    small.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={needed + 1_000_000}", "tmpfs",
                           str(small)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        out = small / "out.mp4"
        out.write_bytes(b"the good copy")
        room = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        (small / "filler").write_bytes(bytes(room - needed + short_by))
        with pytest.raises(ExportError, match="The disk is full"):
            export_described(media / "film.mp4", _clips(media), out)
        assert out.read_bytes() == b"the good copy"
        assert sorted(p.name for p in small.iterdir()) == ["filler", "out.mp4"]
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_the_export_is_made_with_the_users_umask(media: Path, described, tmp_path: Path) -> None:
    """Temporary files are private (0600); the finished export is not."""
    old = os.umask(0o027)
    try:
        result = export_described(media / "film.mp4", _clips(media), tmp_path / "shared.mp4")
    finally:
        os.umask(old)
    assert result.path.stat().st_mode & 0o777 == 0o640
    assert described[0].path.stat().st_mode & 0o777 == 0o666 & ~old


def test_an_export_cut_short_is_not_kept(media: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the reason ffmpeg's file is incomplete, it never takes the target's place."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the good copy")
    real = export._run_ffmpeg

    def truncating(args, duration, progress, cancel, target):
        real(args, duration, progress, cancel, target)
        written = Path(args[-1].removeprefix("file:"))
        written.write_bytes(written.read_bytes()[: written.stat().st_size // 2])

    monkeypatch.setattr(export, "_run_ffmpeg", truncating)
    with pytest.raises(ExportError, match="was not written"):
        export_described(media / "film.mp4", _clips(media), out)
    assert out.read_bytes() == b"the good copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
