"""The frame reader (models/pipeline/reader.py) on media made by ffmpeg."""


from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from models.pipeline.reader import Frame, FrameReader, ReaderError, sample_times
from tests.media import (
    FFMPEG,
    decoded_times,
    expected_samples,
    ffmpeg,
    make_audio_only,
    make_clip,
    x264_args,
)

FRAME = 1 / 25


def test_samples_a_720p_clip_at_two_frames_a_second(hd_clip: Path) -> None:
    with FrameReader(hd_clip, fps=2.0) as reader:
        frames = list(reader.frames())
        assert reader.done
    assert 19 <= len(frames) <= 21
    for frame, want in zip(frames, sample_times(0.0, 10.0, 2.0), strict=False):
        assert want - 1e-6 <= frame.t < want + FRAME + 1e-6
    assert frames[0].t == 0.0
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].keyframe_hint
    assert reader.errors == []
    # RGB: testsrc2 is colourful, so the three channels differ somewhere.
    img = frames[3].image.astype(int)
    assert np.abs(img[..., 0] - img[..., 2]).mean() > 10
    assert not frames[0].image.flags.writeable


def test_sample_times_helper() -> None:
    assert sample_times(0.0, 2.0, 2.0) == [0.0, 0.5, 1.0, 1.5]
    assert sample_times(0.7, 2.0, 2.0) == [0.7, 1.0, 1.5]
    with pytest.raises(ValueError):
        sample_times(0, 1, 0)


def test_variable_frame_rate_is_timed_by_timestamps(vfr_clip: Path) -> None:
    truth = decoded_times(vfr_clip)
    frames = list(FrameReader(vfr_clip, fps=2.0).frames())
    got = [f.t for f in frames]
    assert got == pytest.approx(expected_samples(truth, 2.0), abs=1e-6)
    assert got[:8] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], abs=1e-6)
    # The hole from 4 to 5.5 s: the samples at 4, 4.5 and 5 are all served by the frame at 5.5.
    assert 5.5 in [round(t, 3) for t in got]
    assert not [t for t in got if 3.6 < t < 5.49]
    assert got == sorted(set(got))


def test_seek_while_running(small_clip: Path) -> None:
    with FrameReader(small_clip, fps=4.0, queue_size=4) as reader:
        first = [reader.get(5.0) for _ in range(3)]
        assert all(isinstance(f, Frame) for f in first)
        reader.seek(7.0)
        after = list(reader.frames())
        assert after and after[0].t == pytest.approx(7.0, abs=FRAME + 1e-6)
        assert min(f.t for f in after) >= 7.0
        assert after[-1].t > 9.5
        # After the end, a seek backwards starts again.
        reader.seek(1.0)
        assert not reader.done
        frame = reader.get(5.0)
        assert frame is not None and 1.0 <= frame.t < 1.0 + FRAME + 1e-6
        assert frame.index > after[-1].index


def test_stop_mid_stream_joins_quickly(hd_clip: Path) -> None:
    reader = FrameReader(hd_clip, fps=25.0, queue_size=2).start()
    assert reader.get(5.0) is not None
    began = time.monotonic()
    reader.stop()
    assert time.monotonic() - began < 1.0
    assert not reader.running
    reader.stop()  # again: nothing happens
    assert reader.get(0.1) is None


def test_memory_stays_bounded_when_the_consumer_does_not_read(small_clip: Path) -> None:
    with FrameReader(small_clip, fps=25.0, queue_size=4) as reader:
        most = 0
        for _ in range(30):
            most = max(most, reader.queued)
            time.sleep(0.01)
        assert most <= 4
        assert reader.position <= 4 * FRAME + 1e-6  # the decoder waited
        assert len(list(reader.frames())) == 250


def test_rotated_phone_video_comes_out_upright(clip_dir: Path) -> None:
    flat = make_clip(clip_dir, "landscape.mp4", seconds=1, size="320x240", audio=False)
    rotated = clip_dir / "rotated.mp4"
    ffmpeg("-i", str(flat), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    frames = list(FrameReader(rotated, fps=2.0).frames())
    assert frames[0].image.shape == (320, 240, 3)
    # ffmpeg's own upright picture (it applies the rotation when decoding) is the reference.
    proc = subprocess.run([*FFMPEG, "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=60, check=True)
    upright = np.frombuffer(proc.stdout, np.uint8).reshape(320, 240, 3).astype(int)
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 4
    wider = list(FrameReader(rotated, fps=2.0, max_width=120).frames())
    assert wider[0].image.shape == (160, 120, 3)


def test_damaged_middle_is_skipped_and_counted(clip_dir: Path) -> None:
    ts = clip_dir / "damaged.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=8", *x264_args("-g", "25"),
            "-f", "mpegts", str(ts))
    data = bytearray(ts.read_bytes())
    rng = random.Random(1)
    middle = len(data) // 2
    data[middle:middle + 60_000] = bytes(rng.randrange(256) for _ in range(60_000))
    ts.write_bytes(bytes(data))
    reader = FrameReader(ts, fps=2.0)
    frames = list(reader.frames())
    reader.stop()
    assert reader.error_count >= 1 and reader.errors
    times = [f.t for f in frames]
    assert times[0] == pytest.approx(0.0, abs=1e-6)
    assert times[-1] > 7.0  # decoding went on after the damage
    assert times == sorted(times)
    assert len(frames) >= 12


def test_a_stream_that_ends_early_ends_cleanly(clip_dir: Path, small_clip: Path) -> None:
    ts = clip_dir / "cut.ts"
    ffmpeg("-i", str(small_clip), "-c", "copy", "-f", "mpegts", str(ts))
    ts.write_bytes(ts.read_bytes()[: ts.stat().st_size // 2])
    frames = list(FrameReader(ts, fps=2.0).frames())
    assert 6 <= len(frames) <= 14


def test_sound_only_and_missing_files_are_refused(clip_dir: Path) -> None:
    sound = make_audio_only(clip_dir, seconds=1)
    with pytest.raises(ReaderError, match="no video track"):
        FrameReader(sound)
    missing = clip_dir / "no such film.mp4"
    with pytest.raises(ReaderError, match="no such film.mp4"):
        FrameReader(missing)
    text = clip_dir / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with pytest.raises(ReaderError) as caught:
        FrameReader(text)
    assert str(caught.value) == "notes.mp4 could not be read: it is not a video file, or it is damaged."


@pytest.mark.parametrize(("size", "rate", "shape"), [
    ("32x24", 25, (24, 32, 3)),
    ("360x640", 25, (640, 360, 3)),
    ("3840x2160", 5, (360, 640, 3)),
])
def test_odd_sizes(clip_dir: Path, size: str, rate: int, shape: tuple[int, int, int]) -> None:
    clip = make_clip(clip_dir, f"size-{size}.mp4", seconds=1, size=size, rate=rate, audio=False)
    reader = FrameReader(clip, fps=2.0)
    assert reader.size == (shape[1], shape[0])
    frames = list(reader.frames())
    assert [f.image.shape for f in frames] == [shape, shape]


def test_start_part_way(small_clip: Path) -> None:
    frames = list(FrameReader(small_clip, fps=1.0, start=8.2).frames())
    assert [round(f.t, 2) for f in frames] == [8.2, 9.0]


def test_a_stream_without_timestamps_is_timed_from_where_decoding_starts(clip_dir: Path) -> None:
    """A raw H.264 elementary stream has no timestamps and cannot seek: its frames are counted
    from the start, and after a seek (or a start part way) the times are still the film's."""
    raw = clip_dir / "clock.h264"
    # Second k of the ten is grey, 20 * k luma steps above black (limited range, so 20 * k *
    # 255 / 219 in RGB): a frame's brightness says where in the film it is.
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=25:d=10",
            "-vf", "geq=lum='16+20*floor(T)':cb=128:cr=128", *x264_args("-g", "25"), "-f", "h264",
            str(raw))
    with av.open(str(raw)) as container:
        assert next(container.decode(video=0)).pts is None  # really no timestamps

    def second_of(frame: Frame) -> int:
        return round(float(frame.image.mean()) / (20 * 255 / 219))

    with FrameReader(raw, fps=2.0) as reader:
        assert reader.get(5.0).t == 0.0
        reader.seek(6.0)
        after = list(reader.frames())
    assert [round(f.t, 2) for f in after] == [6.0, 6.52, 7.0, 7.52, 8.0, 8.52, 9.0, 9.52]
    assert [second_of(f) for f in after] == [6, 6, 7, 7, 8, 8, 9, 9]
    assert reader.errors == []
    late = list(FrameReader(raw, fps=1.0, start=8.0).frames())
    assert [(round(f.t, 2), second_of(f)) for f in late] == [(8.0, 8), (9.0, 9)]
