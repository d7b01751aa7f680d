"""Frame perception stages (text, shots, scene) on clips the tests make with ffmpeg, and the demo.

Clips are decoded with PyAV and sampled at a few frames a second, as the look-ahead reader does.
"Within one sampled frame" means an event lands on the first or second sample at or after the
true time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.perception import Stage
from models.perception.frames import load_cv2, prepare_frame
from models.perception.ocr import (
    NoOcr,
    OcrEngine,
    TesseractEngine,
    TextLine,
    TextOptions,
    TextStage,
    choose_ocr,
    similarity,
)
from models.perception.scene import SceneStage, colour_names
from models.perception.shots import ShotStage
from models.types import Observation
from tests.media import SIZE, encode, ffmpeg, sample
from tests.support import run

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"
FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
EPS = 1e-3










def lands(t: float, truth: float, fps: float) -> bool:
    """``t`` is the first or second sampled frame at or after ``truth``."""
    return truth - EPS <= t <= truth + 1.0 / fps + EPS


def reads_of(observations: list[Observation], text: str) -> list[Observation]:
    return [o for o in observations if o.kind == "text"
            and any(similarity(line, text) >= 0.75 or text.lower() in line.lower()
                    for line in o.data["lines"])]


@pytest.fixture(scope="session")
def text_clip(media_dir: Path) -> Path:
    if not FONT.exists():
        pytest.fail(f"{FONT} is missing: sudo apt install fonts-dejavu-core")
    draw = (f"drawtext=fontfile={FONT}:text='{{text}}':fontsize={{size}}:fontcolor={{colour}}:"
            "borderw=3:bordercolor=black:x=(w-tw)/2:y={y}:enable='between(t,{a},{b})'")
    main = draw.format(text="MAIN STREET", size=44, colour="white", y=60, a=1.1, b=3)
    cycl = draw.format(text="Cyclists welcome", size=36, colour="yellow", y="h-90", a=5.1, b=7)
    return encode(media_dir / "text.mp4", "-f", "lavfi",
                  "-i", f"mandelbrot=s={SIZE}:r=25,trim=duration=8,{main},{cycl}")


@pytest.fixture(scope="session")
def shots_clip(media_dir: Path) -> Path:
    """Cuts at 3 s (testsrc2 to orange) and 6 s (to mandelbrot); at 9 s mandelbrot has faded
    to black and smptebars fade in from black."""
    return encode(
        media_dir / "shots.mp4",
        "-f", "lavfi", "-i", f"testsrc2=s={SIZE}:r=25:d=3",
        "-f", "lavfi", "-i", f"color=c=orange:s={SIZE}:r=25:d=3",
        "-f", "lavfi", "-i", f"mandelbrot=s={SIZE}:r=25,trim=duration=3,fade=t=out:st=2:d=1",
        "-f", "lavfi", "-i", f"smptebars=s={SIZE}:r=25:d=3,fade=t=in:st=0:d=1",
        "-filter_complex", "[0:v][1:v][2:v][3:v]concat=n=4:v=1:a=0[v]", "-map", "[v]")


@pytest.fixture(scope="session")
def still_image(media_dir: Path) -> Path:
    out = media_dir / "still.png"
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=s=1280x720", "-frames:v", "1", str(out))
    return out


def crop_clip(folder: Path, name: str, image: Path, x: str, y: str, seconds: float = 2.5) -> Path:
    return encode(folder / name, "-loop", "1", "-framerate", "25", "-t", str(seconds),
                  "-i", str(image), "-vf", f"crop=640:360:x='{x}':y='{y}'")


# --- the protocol -------------------------------------------------------------------------------


def test_stages_follow_the_protocol():
    for stage in (TextStage(), ShotStage(), SceneStage()):
        assert isinstance(stage, Stage)
        assert stage.problem() == "", stage.problem()
        assert stage.flush() == []
        stage.reset()


# --- text ---------------------------------------------------------------------------------------


def test_text_is_read_once_when_it_appears(text_clip: Path):
    fps = 4.0
    stage = TextStage()
    frames = sample(text_clip, fps)
    observations = run(stage, frames)
    main, cycl = reads_of(observations, "MAIN STREET"), reads_of(observations, "Cyclists welcome")
    assert len(main) == 1 and len(cycl) == 1, [o.text for o in observations]
    assert lands(main[0].t, 1.1, fps) and lands(cycl[0].t, 5.1, fps), (main[0].t, cycl[0].t)
    assert len(observations) == 2, [o.text for o in observations]
    for obs in observations:
        assert obs.kind == "text" and obs.data["new"] is True
        assert obs.text == ", ".join(obs.data["lines"])
        x0, y0, x1, y1 = obs.data["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert main[0].data["box"][3] < 0.5 < cycl[0].data["box"][1]  # top title, bottom caption
    # Cost control: a steady picture is read about once a second, not every frame.
    assert stage.reads < 0.8 * len(frames), stage.reads


def test_same_text_is_read_again_after_it_went_away():
    class Script(OcrEngine):
        name = "script"

        def __init__(self) -> None:
            self.lines: list[TextLine] = []

        def problem(self) -> str:
            return ""

        def read(self, rgb: np.ndarray) -> list[TextLine]:
            return list(self.lines)

    engine = Script()
    stage = TextStage([engine], TextOptions(interval=0.5))
    frame = np.zeros((90, 160, 3), np.uint8)
    sign = TextLine("EXIT", 0.95, (0.1, 0.1, 0.3, 0.2))
    said = []
    for i in range(24):
        t = i * 0.5
        engine.lines = [sign] if t < 3 or t >= 7 else []
        if 1.5 <= t < 2:
            engine.lines = [TextLine("EXlT", 0.9, sign.box), TextLine("#", 0.99, sign.box),
                            TextLine("faint", 0.2, sign.box)]  # OCR noise and junk
        said += [(t, o.text) for o in stage.process(t, frame, shot_change=t == 8.0)]
    assert said == [(0.0, "EXIT"), (7.0, "EXIT")]


def test_demo_texts_are_read(tmp_path: Path):
    fps = 2.0
    shots, text = ShotStage(), TextStage()
    observations: list[Observation] = []
    for t, frame in sample(DEMO, fps):
        cut = bool(shots.process(t, frame))
        observations += text.process(t, frame, shot_change=cut)
    said = [(o.t, o.text) for o in observations]
    for words, start in (("Video Narrator demo", 0.0), ("MAIN STREET", 15.5),
                         ("Cyclists welcome", 15.5), ("Thanks for watching", 25.5)):
        found = reads_of(observations, words)
        assert len(found) == 1, (words, said)
        assert lands(found[0].t, start, fps), (words, found[0].t, said)


@pytest.mark.skipif(shutil.which("tesseract") is None,
                    reason="tesseract not installed: sudo apt install tesseract-ocr tesseract-ocr-eng")
def test_tesseract_fallback_reads_text(text_clip: Path):
    engine = TesseractEngine()
    assert engine.problem() == ""
    stage = TextStage([engine])
    frames = [f for f in sample(text_clip, 2.0) if 1.5 <= f[0] <= 2.0 or 5.5 <= f[0] <= 6.0]
    observations = run(stage, frames)
    assert reads_of(observations, "MAIN STREET"), [o.text for o in observations]
    assert reads_of(observations, "Cyclists welcome"), [o.text for o in observations]


def test_no_usable_ocr_engine_is_a_problem_not_a_crash():
    class Missing(OcrEngine):
        def __init__(self, name: str, hint: str) -> None:
            self.name, self.hint = name, hint

        def problem(self) -> str:
            return self.hint

        def read(self, rgb: np.ndarray) -> list[TextLine]:
            raise AssertionError("an unusable engine must not be asked to read")

    stage = TextStage([Missing("rapidocr", "pip install rapidocr"),
                       TesseractEngine(program="no-such-tesseract-program")])
    problem = stage.problem()
    assert "pip install rapidocr" in problem and "apt install tesseract-ocr" in problem
    assert isinstance(stage.engine, NoOcr)
    assert stage.process(0.0, np.zeros((360, 640, 3), np.uint8)) == []
    assert stage.process(1.0, np.zeros((360, 640, 3), np.uint8), shot_change=True) == []
    engine, notes = choose_ocr(["no-such-engine"])
    assert isinstance(engine, NoOcr) and "no such text reader" in engine.problem()


# --- shots --------------------------------------------------------------------------------------


def test_every_cut_and_fade_is_found_and_nothing_else(shots_clip: Path):
    fps = 2.0
    observations = run(ShotStage(), sample(shots_clip, fps))
    times = [o.t for o in observations]
    assert len(times) == 3, times
    for t, truth in zip(times, (3.0, 6.0, 9.0), strict=True):
        assert lands(t, truth, fps), times
    assert all(o.kind == "shot" and o.text == "shot change" and o.data["score"] > 0
               for o in observations)


def test_demo_cuts_are_found():
    fps = 2.0
    times = [o.t for o in run(ShotStage(), sample(DEMO, fps))]
    for truth in (4.0, 15.5, 25.5):
        assert any(lands(t, truth, fps) for t in times), (truth, times)
    # The title cards and the (slowly moving) car scene hold no cuts.
    assert not [t for t in times if t < 4 or 4.5 < t < 15.5 or t > 26], times


# --- scene --------------------------------------------------------------------------------------


def test_black_then_fade_from_black_into_red(media_dir: Path):
    clip = encode(media_dir / "fade.mp4",
                  "-f", "lavfi", "-i", f"color=c=black:s={SIZE}:r=25:d=1",
                  "-f", "lavfi", "-i", f"color=c=red:s={SIZE}:r=25:d=3,fade=t=in:st=0:d=1.5",
                  "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]")
    scenes = {o.t: o.data for o in run(SceneStage(), sample(clip, 4.0))}
    assert scenes[0.5]["dark"] is True and scenes[0.5]["colours"][0] == "black"
    assert scenes[0.5]["brightness"] < 0.05
    assert any(scenes[t]["fade"] == "from black" for t in (1.25, 1.5, 1.75)), scenes
    assert scenes[3.5]["fade"] is None and scenes[3.5]["dark"] is False
    assert scenes[3.5]["colours"][0] == "red" and scenes[3.5]["motion"] == "still"


def test_fade_to_black(media_dir: Path):
    clip = encode(media_dir / "fadeout.mp4", "-f", "lavfi",
                  "-i", f"smptebars=s={SIZE}:r=25:d=3,fade=t=out:st=1:d=1.5")
    fades = [o.data["fade"] for o in run(SceneStage(), sample(clip, 4.0))]
    assert "to black" in fades and "from black" not in fades, fades


@pytest.mark.parametrize(("name", "x", "y", "motion"), [
    ("still", "320", "180", "still"),
    ("right", "100+t*80", "180", "pan right"),  # content slides left: the camera turns right
    ("left", "500-t*80", "180", "pan left"),
    ("down", "320", "50+t*60", "tilt down"),  # content slides up: the camera tilts down
    ("zoom", "", "", "zoom in"),  # ffmpeg's mandelbrot source zooms in
])
def test_camera_motion(media_dir: Path, still_image: Path, name: str, x: str, y: str,
                       motion: str):
    if name == "zoom":
        clip = encode(media_dir / "zoom.mp4", "-f", "lavfi",
                      "-i", f"mandelbrot=s={SIZE}:r=25,trim=duration=2.5")
    else:
        clip = crop_clip(media_dir, f"move-{name}.mp4", still_image, x, y)
    moves = [o.data["motion"] for o in run(SceneStage(), sample(clip, 4.0))][1:]
    assert moves.count(motion) >= len(moves) - 1, moves


def test_no_camera_motion_is_measured_across_the_demo_cuts():
    # The street scene's shots (demo.plan.json) start at 16.7, 17.5, 18.7, 19.7, 20.98, 22.98
    # and 25.18 s, and the closing card at 25.5 s: the first samples of those shots at 2 frames
    # a second, and 18.5 s (the camera whips round in the traffic), compare unrelated pictures.
    scenes = {o.t: o.data["motion"] for o in run(SceneStage(), sample(DEMO, 2.0))}
    at_cuts = {t: scenes[t] for t in (15.5, 17.0, 17.5, 18.5, 19.0, 20.0, 21.0, 23.0, 25.5)}
    assert set(at_cuts.values()) == {"still"}, at_cuts
    assert not [t for t, m in scenes.items() if m.startswith("zoom") and t < 24], scenes


def test_a_pan_goes_on_being_seen_after_a_cut(media_dir: Path, still_image: Path):
    """A pan over the Mandelbrot set, a cut, and a pan over a street (a demo frame): every frame
    but the first of each shot pans right; the first frame after the cut is still."""
    street = media_dir / "street.png"
    ffmpeg("-ss", "22", "-i", str(DEMO), "-frames:v", "1",
           "-vf", "crop=352:176:0:56,scale=1280:640", str(street))
    clip = encode(media_dir / "pan-cut-pan.mp4",
                  "-loop", "1", "-framerate", "25", "-t", "2", "-i", str(still_image),
                  "-loop", "1", "-framerate", "25", "-t", "2", "-i", str(street),
                  "-filter_complex", "[0:v]crop=640:360:x='100+t*80':y=180[a];"
                  "[1:v]crop=640:360:x='100+t*80':y=140[b];[a][b]concat=n=2:v=1:a=0[v]",
                  "-map", "[v]")
    moves = {o.t: o.data["motion"] for o in run(SceneStage(), sample(clip, 4.0))}
    assert moves.pop(0.0) == "still" and moves.pop(2.0) == "still", moves
    assert list(moves.values()).count("pan right") >= len(moves) - 1, moves


def test_colour_names():
    cv2, _ = load_cv2()
    cases = {(255, 0, 0): "red", (255, 140, 0): "orange", (255, 230, 0): "yellow",
             (0, 160, 0): "green", (30, 60, 220): "blue", (130, 40, 200): "purple",
             (255, 105, 180): "pink", (110, 60, 20): "brown", (235, 220, 185): "beige",
             (255, 255, 255): "white", (128, 128, 128): "grey", (5, 5, 5): "black"}
    for rgb, name in cases.items():
        frame = np.full((36, 64, 3), rgb, np.uint8)
        assert colour_names(frame, cv2) == [name], (rgb, colour_names(frame, cv2))
    half = np.zeros((36, 64, 3), np.uint8)
    half[:, :40] = (0, 0, 255)
    assert colour_names(half, cv2) == ["blue", "black"]


# --- bad input ----------------------------------------------------------------------------------


BAD_FRAMES = {
    "tiny": np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8),
    "huge": np.random.default_rng(2).integers(0, 255, (2160, 3840, 3), dtype=np.uint8),
    "black": np.zeros((360, 640, 3), np.uint8),
    "grey 2-D": np.full((360, 640), 128, np.uint8),
    "grey-like": np.repeat(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], 360, 0)
    .repeat(3, 2),
    "rgba": np.full((360, 640, 4), 200, np.uint8),
    "float": np.full((360, 640, 3), 0.5, np.float32),
    "speck": np.zeros((4, 4, 3), np.uint8),
    "wrong shape": np.zeros((10,), np.uint8),
    "empty": np.zeros((0, 0, 3), np.uint8),
}


@pytest.mark.parametrize("kind", list(BAD_FRAMES))
def test_odd_frames_do_not_break_any_stage(kind: str):
    frame = BAD_FRAMES[kind]
    usable = prepare_frame(frame) is not None
    for stage in (TextStage(), ShotStage(), SceneStage()):
        out = stage.process(0.0, frame) + stage.process(0.5, frame) + stage.process(1.0, frame)
        assert all(isinstance(o, Observation) for o in out)
        if isinstance(stage, ShotStage):
            assert out == []  # the same picture three times is no cut
        if isinstance(stage, TextStage):
            assert out == [] or kind in ("tiny", "huge"), [o.text for o in out]
        if isinstance(stage, SceneStage):
            assert len(out) == (3 if usable else 0)
            if usable:
                data = out[-1].data
                assert 0.0 <= data["brightness"] <= 1.0 and data["motion"] == "still"
                if kind == "black":
                    assert data["dark"] and data["colours"] == ["black"]
                if kind in ("grey 2-D", "rgba"):
                    assert data["colours"] == ["grey"]
