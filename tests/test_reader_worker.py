"""The look-ahead reader, the analysis worker and the observation store, on media made by ffmpeg.

The stages here are small real stages of the perception protocol (a brightness meter, a slow one,
one that fails), not stand-ins for anything in the package.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from models.cache import cache_path
from models.perception import Stage
from models.pipeline.feeder import LookAhead
from models.pipeline.reader import Frame, FrameReader, ReaderError, sample_times
from models.pipeline.store import ObservationStore, config_hash
from models.pipeline.worker import AnalysisWorker, Priority, Request, Result
from models.types import Observation
from tests.media import FFMPEG, make_audio_only, make_clip
from tests.people_media import frame_at
from tests.support import wait_until

FRAME = 1 / 25


def _ffmpeg(*args: str) -> None:
    proc = subprocess.run([*FFMPEG, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.strip()[-800:]}")


def _x264(*extra: str) -> list[str]:
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


# -- media ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reader-media")


@pytest.fixture(scope="module")
def hd_clip(media: Path) -> Path:
    return make_clip(media, "hd.mp4", seconds=10, size="1280x720", audio=False)


@pytest.fixture(scope="module")
def small_clip(media: Path) -> Path:
    return make_clip(media, "small.mp4", seconds=10, size="320x240", audio=False)


@pytest.fixture(scope="module")
def vfr_clip(media: Path) -> Path:
    """10 fps for 3 s, then 30 fps, with a 1.5 s hole in the timestamps at 4 s."""
    out = media / "vfr.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3",
            "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30:d=3",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[c];[c]setpts='if(gte(T,4),PTS+1.5/TB,PTS)'[v]",
            "-map", "[v]", "-fps_mode", "vfr", *_x264(), str(out))
    return out


@pytest.fixture(scope="module")
def black_white(media: Path) -> Path:
    """Black from 0 to 2 s, white from 2 to 4 s."""
    out = media / "black-white.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=160x120:r=25:d=2",
            "-f", "lavfi", "-i", "color=c=white:s=160x120:r=25:d=2",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
            *_x264("-g", "25"), str(out))
    return out


# -- reader --------------------------------------------------------------------------------------

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


def test_rotated_phone_video_comes_out_upright(media: Path) -> None:
    flat = make_clip(media, "landscape.mp4", seconds=1, size="320x240", audio=False)
    rotated = media / "rotated.mp4"
    _ffmpeg("-i", str(flat), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    frames = list(FrameReader(rotated, fps=2.0).frames())
    assert frames[0].image.shape == (320, 240, 3)
    # ffmpeg's own upright picture (it applies the rotation when decoding) is the reference.
    proc = subprocess.run([*FFMPEG, "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=60, check=True)
    upright = np.frombuffer(proc.stdout, np.uint8).reshape(320, 240, 3).astype(int)
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 4
    wider = list(FrameReader(rotated, fps=2.0, max_width=120).frames())
    assert wider[0].image.shape == (160, 120, 3)


def test_damaged_middle_is_skipped_and_counted(media: Path) -> None:
    ts = media / "damaged.ts"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=8", *_x264("-g", "25"),
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


def test_a_stream_that_ends_early_ends_cleanly(media: Path, small_clip: Path) -> None:
    ts = media / "cut.ts"
    _ffmpeg("-i", str(small_clip), "-c", "copy", "-f", "mpegts", str(ts))
    ts.write_bytes(ts.read_bytes()[: ts.stat().st_size // 2])
    frames = list(FrameReader(ts, fps=2.0).frames())
    assert 6 <= len(frames) <= 14


def test_sound_only_and_missing_files_are_refused(media: Path) -> None:
    sound = make_audio_only(media, seconds=1)
    with pytest.raises(ReaderError, match="no video track"):
        FrameReader(sound)
    missing = media / "no such film.mp4"
    with pytest.raises(ReaderError, match="no such film.mp4"):
        FrameReader(missing)
    text = media / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with pytest.raises(ReaderError) as caught:
        FrameReader(text)
    assert str(caught.value) == "notes.mp4 could not be read: it is not a video file, or it is damaged."


@pytest.mark.parametrize(("size", "rate", "shape"), [
    ("32x24", 25, (24, 32, 3)),
    ("360x640", 25, (640, 360, 3)),
    ("3840x2160", 5, (360, 640, 3)),
])
def test_odd_sizes(media: Path, size: str, rate: int, shape: tuple[int, int, int]) -> None:
    clip = make_clip(media, f"size-{size}.mp4", seconds=1, size=size, rate=rate, audio=False)
    reader = FrameReader(clip, fps=2.0)
    assert reader.size == (shape[1], shape[0])
    frames = list(reader.frames())
    assert [f.image.shape for f in frames] == [shape, shape]


def test_start_part_way(small_clip: Path) -> None:
    frames = list(FrameReader(small_clip, fps=1.0, start=8.2).frames())
    assert [round(f.t, 2) for f in frames] == [8.2, 9.0]


def test_a_stream_without_timestamps_is_timed_from_where_decoding_starts(media: Path) -> None:
    """A raw H.264 elementary stream has no timestamps and cannot seek: its frames are counted
    from the start, and after a seek (or a start part way) the times are still the film's."""
    raw = media / "clock.h264"
    # Second k of the ten is grey, 20 * k luma steps above black (limited range, so 20 * k *
    # 255 / 219 in RGB): a frame's brightness says where in the film it is.
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=25:d=10",
            "-vf", "geq=lum='16+20*floor(T)':cb=128:cr=128", *_x264("-g", "25"), "-f", "h264",
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


# -- stages for the worker -----------------------------------------------------------------------

class Brightness(Stage):
    """Mean brightness of the frame, 0..1."""

    name = "brightness"

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        value = float(frame.mean()) / 255
        return [Observation(t, "scene", f"brightness {value:.2f}", data={"brightness": value})]

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Gate(Stage):
    """Holds the first frame until released: keeps the worker busy on demand."""

    name = "gate"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        self.calls.append(f"process {t}")
        self.entered.set()
        self.release.wait(10)
        return []

    def flush(self) -> list[Observation]:
        self.calls.append("flush")
        return [Observation(99.0, "held", "held back")]

    def reset(self) -> None:
        self.calls.append("reset")


class Slow(Stage):
    name = "slow"

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        time.sleep(self.seconds)
        return []

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Failing(Stage):
    """Raises on the frames whose time is in ``bad`` (every frame when ``bad`` is None)."""

    name = "failing"

    def __init__(self, bad: set[float] | None = None) -> None:
        self.bad = bad
        self.seen = 0

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        self.seen += 1
        if self.bad is None or t in self.bad:
            raise RuntimeError(f"cannot look at {t}")
        return [Observation(t, "ok", "fine")]

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        pass


class Unavailable(Slow):
    name = "unavailable"

    def problem(self) -> str:
        return "needs the fancy-model package: pip install fancy-model"

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        raise AssertionError("a stage with a problem must never be used")


IMAGE = np.full((24, 32, 3), 128, np.uint8)


class Collector:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.problems: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def result(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)

    def problem(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    @property
    def times(self) -> list[float]:
        return [r.request.t for r in self.results if r.request.kind != "flush"]


def test_stages_follow_the_protocol() -> None:
    for stage in (Brightness(), Gate(), Slow(), Failing(), Unavailable()):
        assert isinstance(stage, Stage)


def test_describe_now_jumps_the_queue() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    try:
        tokens = [worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE)) for i in range(5)]
        assert gate.entered.wait(5)  # busy with the first
        now = worker.submit(Request(Priority.NOW, 42.0, IMAGE, kind="describe"))
        gap = worker.submit(Request(Priority.GAP, 21.0, IMAGE))
        assert worker.queued() == 6 and worker.queued(Priority.LOOKAHEAD) == 4
        gate.release.set()
        assert worker.wait_idle(5)
        assert got.times == [0.0, 42.0, 21.0, 1.0, 2.0, 3.0, 4.0]
        assert [r.request.token for r in got.results] == [tokens[0], now, gap, *tokens[1:]]
        assert got.results[1].request.kind == "describe"
        stats = worker.stats()
        assert stats.done == {Priority.NOW: 1, Priority.GAP: 1, Priority.LOOKAHEAD: 5}
        assert stats.stage_seconds["gate"] >= 0
    finally:
        gate.release.set()
        worker.stop()


def test_cancel_lookahead_drops_only_lookahead() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    try:
        for i in range(5):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert gate.entered.wait(5)
        worker.submit(Request(Priority.GAP, 10.0, IMAGE))
        assert worker.cancel_lookahead() == 4
        gate.release.set()
        assert worker.wait_idle(5)
        assert got.times == [0.0, 10.0]
    finally:
        gate.release.set()
        worker.stop()


def test_a_failing_stage_is_switched_off_and_the_others_go_on() -> None:
    got = Collector()
    failing = Failing()
    worker = AnalysisWorker([Brightness(), failing], got.result, on_problem=got.problem)
    try:
        for i in range(6):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert worker.wait_idle(5)
        assert failing.seen == 3
        assert [name for name, _ in got.problems] == ["failing"]
        assert "3 frames in a row" in got.problems[0][1]
        assert [len(r.observations) for r in got.results] == [1] * 6
        assert got.results[0].observations[0].data["brightness"] == pytest.approx(128 / 255)
        assert set(got.results[0].stage_seconds) == {"brightness", "failing"}
        assert set(got.results[5].stage_seconds) == {"brightness"}
        stats = worker.stats()
        assert stats.failures["failing"] == 3 and "failing" in stats.disabled
        assert worker.enabled == ("brightness",)
    finally:
        worker.stop()


def test_failures_must_come_in_a_row() -> None:
    got = Collector()
    failing = Failing(bad={0.0, 1.0, 3.0, 4.0})
    worker = AnalysisWorker([failing], got.result, on_problem=got.problem)
    try:
        for i in range(6):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert worker.wait_idle(5)
        assert failing.seen == 6 and got.problems == []
        assert [len(r.observations) for r in got.results] == [0, 0, 1, 0, 0, 1]
    finally:
        worker.stop()


def _real_stage(name: str, monkeypatch: pytest.MonkeyPatch,
                fails: Callable[[int], bool]) -> Stage:
    """A real perception stage whose model raises on the calls (counted from 0) for which
    ``fails`` is true: rapidocr's reader for "text", mediapipe's graphs for "faces" and "pose"."""
    if name == "text":
        rapidocr = pytest.importorskip("rapidocr", reason="the perception extra is not installed")
        from models.perception.ocr import TextStage

        stage: Stage = TextStage(["rapidocr"])
        model, method = rapidocr.RapidOCR, "__call__"
    else:
        pytest.importorskip("mediapipe", reason="the perception extra is not installed")
        from mediapipe.python.solution_base import SolutionBase

        from models.perception.faces import FaceStage
        from models.perception.pose import PoseStage

        stage = FaceStage() if name == "faces" else PoseStage()
        model, method = SolutionBase, "process"
    assert stage.problem() == ""  # the models load before they are broken
    original = getattr(model, method)
    calls = itertools.count()

    def run_model(self: object, *args: object, **kwargs: object) -> object:
        if fails(next(calls)):
            raise RuntimeError("the model fell over")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(model, method, run_model)
    return stage


KIND = {"text": "text", "faces": "faces", "pose": "people"}


@pytest.mark.parametrize("name", ["text", "faces", "pose"])
def test_a_real_stage_whose_model_keeps_failing_is_switched_off_and_said(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _real_stage(name, monkeypatch, lambda call: True)
    got = Collector()
    worker = AnalysisWorker([stage, Brightness()], got.result, on_problem=got.problem)
    try:
        for i in range(5):
            worker.submit(Request(Priority.LOOKAHEAD, i * 0.5, frame_at(1.0 + i * 0.5)))
        assert worker.wait_idle(60)
        assert len(got.problems) == 1, got.problems
        assert got.problems[0][0] == stage.name
        assert "3 frames in a row" in got.problems[0][1]
        assert "the model fell over" in got.problems[0][1]
        assert worker.enabled == ("brightness",)
        assert worker.stats().failures[stage.name] == 3
        assert [[o.kind for o in r.observations] for r in got.results] == [["scene"]] * 5
    finally:
        worker.stop()


@pytest.mark.parametrize("name", ["text", "faces", "pose"])
def test_one_bad_frame_does_not_switch_a_real_stage_off(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _real_stage(name, monkeypatch, lambda call: call == 0)
    got = Collector()
    start = 1.0 if name == "text" else 5.0  # the title card, or the man in the car
    worker = AnalysisWorker([stage], got.result, on_problem=got.problem)
    try:
        for i in range(4):
            worker.submit(Request(Priority.LOOKAHEAD, i * 0.5, frame_at(start + i * 0.5)))
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    assert got.problems == [] and worker.stats().failures[stage.name] == 1
    kinds = [[o.kind for o in r.observations] for r in got.results]
    assert kinds[0] == [] and kinds[1] == [KIND[name]], kinds  # the next frame is seen
    seen = got.results[1].observations[0]
    if name == "text":
        assert any("Video Narrator demo" in line for line in seen.data["lines"]), seen
    else:
        assert seen.data["count"] == 1, seen


def test_describe_now_leaves_the_lookahead_as_it_was() -> None:
    """The look-ahead reads on while someone asks about a frame from elsewhere in the film: the
    stages look at that frame alone, so the look-ahead's next frame is compared with its own
    last one (no false cut) and the text it read is not read out again."""
    pytest.importorskip("rapidocr", reason="the perception extra is not installed")
    from models.perception.ocr import TextStage
    from models.perception.scene import SceneStage
    from models.perception.shots import ShotStage

    got = Collector()
    worker = AnalysisWorker([ShotStage(), SceneStage(), TextStage()], got.result,
                            on_problem=got.problem)

    def ask(request: Request) -> list[Observation]:
        worker.submit(request)
        assert worker.wait_idle(60)
        return list(got.results[-1].observations)

    # The worker only knows the times it is given: the demo's bicycle at a railing (under the
    # MAIN STREET sign) plays at 10 to 11 s of this film, and its title card at 9 s.
    try:
        first = ask(Request(Priority.LOOKAHEAD, 10.0, frame_at(21.0)))
        assert any("MAIN STREET" in o.text for o in first if o.kind == "text"), first
        ask(Request(Priority.LOOKAHEAD, 10.5, frame_at(21.5)))
        now = ask(Request(Priority.NOW, 9.0, frame_at(2.0), kind="now"))
        assert [o.kind for o in now] == ["scene", "text"], now
        assert "Video Narrator demo" in now[1].text and now[1].data["new"] is True
        assert now[0].data["motion"] == "still" and now[0].data["fade"] is None
        later = ask(Request(Priority.LOOKAHEAD, 11.0, frame_at(22.0)))
        assert [o.kind for o in later] == ["scene"], later  # no cut, no text read again
        assert later[0].data["motion"] == "still"
        # Asked about the sign while it is on screen: every line, known already.
        again = ask(Request(Priority.NOW, 10.8, frame_at(21.8), kind="now"))
        [text] = [o for o in again if o.kind == "text"]
        assert "MAIN STREET" in text.text and text.data["new"] is False
        last = ask(Request(Priority.LOOKAHEAD, 11.5, frame_at(22.5)))
        assert [o.kind for o in last] == ["scene"], last
    finally:
        worker.stop()
    assert got.problems == []


def test_a_stage_with_a_problem_is_off_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    got = Collector()
    with caplog.at_level(logging.WARNING, logger="models.pipeline.worker"):
        worker = AnalysisWorker([Unavailable(), Brightness()], got.result,
                                on_problem=got.problem)
        try:
            assert worker.wait_ready(5)
            assert worker.enabled == ("brightness",)
            worker.submit(Request(Priority.NOW, 1.0, IMAGE))
            assert worker.wait_idle(5)
        finally:
            worker.stop()
    assert got.problems == [("unavailable", Unavailable().problem())]
    assert len(got.results) == 1 and got.results[0].observations[0].kind == "scene"
    assert "pip install fancy-model" in caplog.text


def test_reset_stages_flushes_before_queued_work_and_stop_is_idempotent() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    worker.submit(Request(Priority.LOOKAHEAD, 1.0, IMAGE))
    assert gate.entered.wait(5)
    worker.submit(Request(Priority.NOW, 2.0, IMAGE))
    token = worker.reset_stages()
    gate.release.set()
    assert worker.wait_idle(5)
    assert gate.calls == ["process 1.0", "flush", "reset", "process 2.0"]
    flush = got.results[1]
    assert flush.request.kind == "flush" and flush.request.token == token
    assert [o.kind for o in flush.observations] == ["held"]
    worker.stop()
    worker.stop()
    worker.submit(Request(Priority.NOW, 3.0, IMAGE))  # ignored, does not raise
    assert len(got.results) == 3


# -- look-ahead, end to end ----------------------------------------------------------------------

def test_lookahead_finds_the_light_at_the_right_time(black_white: Path) -> None:
    store = ObservationStore()
    got = Collector()

    def on_result(result: Result) -> None:
        got.result(result)
        if result.request.kind == "frame":
            store.record(result.request.t, result.observations, 0.5)

    worker = AnalysisWorker([Brightness(), Slow(0.02)], on_result)
    look = LookAhead(black_white, worker, fps=2.0, max_queued=2)
    try:
        look.start()
        wait_until(lambda: look.finished and worker.wait_idle(0))
        scenes = store.between(0, 10, kinds=["scene"])
        assert [o.t for o in scenes] == pytest.approx([0.0, 0.52, 1.0, 1.52, 2.0, 2.52, 3.0,
                                                       3.52], abs=1e-6)
        for obs in scenes:
            assert obs.data["brightness"] < 0.1 if obs.t < 2 else obs.data["brightness"] > 0.9
        ((start, end),) = store.covered
        assert start == 0.0 and end == pytest.approx(4.02)
        assert store.latest(1.9, "scene").data["brightness"] < 0.1
        assert store.latest(2.0, "scene").data["brightness"] > 0.9
        assert worker.stats().done[Priority.LOOKAHEAD] == 8

        got.results.clear()
        look.seek(2.5)
        wait_until(lambda: look.finished and worker.wait_idle(0))
        kinds = [r.request.kind for r in got.results]
        assert kinds[0] == "flush"
        assert [r.request.t for r in got.results[1:]] == pytest.approx([2.52, 3.0, 3.52])
    finally:
        look.stop()
        worker.stop()


def test_lookahead_seek_while_running_keeps_the_backlog_short(small_clip: Path) -> None:
    got = Collector()
    worker = AnalysisWorker([Slow(0.03)], got.result)
    look = LookAhead(small_clip, worker, fps=5.0, max_queued=2)
    most = 0
    try:
        look.start()
        wait_until(lambda: len(got.results) >= 3)
        for _ in range(10):
            most = max(most, worker.queued(Priority.LOOKAHEAD))
            time.sleep(0.01)
        look.seek(8.0)
        wait_until(lambda: look.finished and worker.wait_idle(0), timeout=20)
    finally:
        look.stop()
        worker.stop()
    assert most <= 2
    kinds = [r.request.kind for r in got.results]
    after = [r.request.t for r in got.results[kinds.index("flush") + 1:]]
    assert after and min(after) >= 8.0 and after[0] == pytest.approx(8.0, abs=FRAME + 1e-6)
    assert len(after) == 10


# -- the observation store -----------------------------------------------------------------------

def _observations() -> list[Observation]:
    return [
        Observation(3.0, "people", "2 people", 0.9,
                    {"count": 2, "people": [{"id": 1, "box": [0.1, 0.2, 0.3, 0.4]}]}),
        Observation(1.0, "shot", "shot change", data={"score": np.float32(0.75)}),
        Observation(2.0, "text", "EXIT", data={"lines": ["EXIT"], "new": True, "box": (0, 0, 1, 1)}),
        Observation(3.0, "shot", "shot change", data={"score": 0.5}),
        Observation(5.5, "scene", "dark", data={"brightness": 0.02, "fade": None,
                                                "colours": np.array(["black"])}),
    ]


def test_store_queries() -> None:
    store = ObservationStore(_observations())
    assert [o.t for o in store] == [1.0, 2.0, 3.0, 3.0, 5.5]
    assert [o.kind for o in store.between(1.0, 3.0)] == ["shot", "text"]
    assert [o.kind for o in store.between(2.0, 6, kinds=["shot", "scene"])] == ["shot", "scene"]
    assert store.between(0, 10, kinds=["faces"]) == []
    assert store.latest(2.9, "shot").t == 1.0
    assert store.latest(3.0, "shot").t == 3.0
    assert store.latest(0.5, "shot") is None and store.latest(9, "faces") is None
    assert store.kinds == ("people", "scene", "shot", "text")
    store.cover(0, 1)
    store.cover(3, 4)
    store.cover(1, 2)
    store.cover(6, 7)
    store.cover(3.5, 6.5)
    assert store.covered == ((0, 2), (3, 7))
    assert store.is_covered(0.5, 1.5) and not store.is_covered(1.5, 3.5)


def test_store_drops_one_kind_and_keeps_what_was_analysed() -> None:
    store = ObservationStore(_observations(), covered=[(0.0, 6.0)])
    before = [(o.t, o.kind) for o in store]
    assert store.drop_kind("shot") == 2
    assert [(o.t, o.kind) for o in store] == [x for x in before if x[1] != "shot"]
    assert store.between(0, 10, kinds=["shot"]) == [] and store.latest(9, "shot") is None
    assert store.covered == ((0.0, 6.0),) and store.kinds == ("people", "scene", "text")
    assert store.drop_kind("shot") == 0


def test_store_json_round_trip() -> None:
    store = ObservationStore(_observations(), covered=[(0.0, 6.0)])
    back = ObservationStore.from_json(store.to_json())
    assert [(o.t, o.kind, o.text, o.confidence) for o in back] == \
        [(o.t, o.kind, o.text, o.confidence) for o in store]
    assert back.latest(3.0, "people").data["people"][0]["box"] == [0.1, 0.2, 0.3, 0.4]
    assert back.latest(3.0, "shot").data == {"score": 0.5}
    assert back.latest(1.0, "shot").data["score"] == pytest.approx(0.75)
    assert back.latest(2.0, "text").data["box"] == [0, 0, 1, 1]
    assert back.latest(6.0, "scene").data == {"brightness": 0.02, "fade": None,
                                              "colours": ["black"]}
    assert back.covered == ((0.0, 6.0),)
    with pytest.raises(ValueError):
        ObservationStore.from_json('{"version": 1, "observations": [{"t": 1}]}')


def test_store_cache_by_content_and_config(media: Path, small_clip: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(media / "cache"))
    config = {"fps": 2.0, "stages": ["pose", "faces"], "width": 640}
    store = ObservationStore(_observations(), covered=[(0, 6)])
    assert ObservationStore.load(small_clip, config) is None
    file = store.save(small_clip, config)
    assert file == cache_path(small_clip, "observations", f"-{config_hash(config)}.json")
    assert not [p for p in file.parent.iterdir() if p.name.endswith(".tmp")]

    renamed = media / "a copy with another name.mp4"
    shutil.copyfile(small_clip, renamed)
    again = ObservationStore.load(renamed, {"width": 640, "stages": ["pose", "faces"], "fps": 2.0})
    assert again is not None and len(again) == 5 and again.covered == ((0, 6),)
    assert ObservationStore.load(renamed, {**config, "fps": 4.0}) is None
    assert config_hash(config) == config_hash(json.loads(json.dumps(config)))

    with caplog.at_level(logging.WARNING, logger="models.pipeline.store"):
        file.write_text('{"version": 1, "config": {"fps": 2.0,')
        assert ObservationStore.load(small_clip, config) is None
        file.write_text(json.dumps({"version": 1, "config": config, "observations": [3]}))
        assert ObservationStore.load(small_clip, config) is None
    assert "ignoring the unreadable observation cache" in caplog.text


def test_store_save_failure_is_logged_and_ignored(media: Path, small_clip: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocked = media / "blocked-cache"
    blocked.mkdir()
    (blocked / "video-narrator").write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with caplog.at_level(logging.WARNING, logger="models.pipeline.store"):
        assert ObservationStore(_observations()).save(small_clip, {"fps": 2}) is None
        assert ObservationStore(_observations()).save(media / "gone.mp4", {"fps": 2}) is None
    assert "could not save the observations" in caplog.text
    assert ObservationStore.load(small_clip, {"fps": 2}) is None


def test_a_seek_rewinds_stages_that_can_and_resets_the_others() -> None:
    class Rewinding(Gate):
        name = "rewinding"

        def rewind(self) -> None:
            self.calls.append("rewind")

    plain, rewinding = Gate(), Rewinding()
    plain.release.set()
    rewinding.release.set()
    got = Collector()
    with AnalysisWorker([plain, rewinding], got.result) as worker:
        worker.reset_stages(rewind=True)
        worker.reset_stages()
        assert worker.wait_idle(5)
    assert plain.calls == ["flush", "reset", "flush", "reset"]
    assert rewinding.calls == ["flush", "rewind", "flush", "reset"]
