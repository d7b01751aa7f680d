"""A number that changes in place (a counter, a clock) is read once, then said to be a counter
once; words and numbers elsewhere are read as before."""

from __future__ import annotations

from models.onscreen_text import NumberWatch, numeric
from models.pipeline.composer import Composer
from models.types import Observation

CORNER = [0.02, 0.02, 0.12, 0.08]


def text(t: float, lines: list[str], box: list[float]) -> Observation:
    return Observation(t=t, kind="text", text=", ".join(lines),
                       data={"lines": lines, "new": True, "box": box})


def said(composer: Composer, observations: list[Observation]) -> list[str]:
    return [d.text for o in observations for d in composer.feed([o])]


def test_a_running_counter_is_read_once_then_called_a_counter_once():
    """A test pattern with a running counter said "Text on screen: 38.", "88.", "113." once a
    second."""
    c = Composer()
    spoken = said(c, [text(float(t), [str(38 + 25 * t)], CORNER) for t in range(8)])
    assert spoken == ["Text on screen: 38.",
                      "A number changes in place, like a counter, in the top left corner."]


def test_words_and_numbers_elsewhere_are_still_read():
    c = Composer()
    spoken = said(c, [text(0.0, ["12"], CORNER), text(1.0, ["13"], CORNER),
                      text(2.0, ["MAIN STREET"], [0.3, 0.4, 0.7, 0.5]),
                      text(3.0, ["2024"], [0.4, 0.8, 0.6, 0.9])])
    assert spoken[0] == "Text on screen: 12." and "counter" in spoken[1]
    assert "Text on screen: MAIN STREET" in spoken[2] and spoken[3] == "Text on screen: 2024."


def test_a_number_that_comes_back_much_later_is_read_again():
    watch = NumberWatch()
    assert watch.judge(0.0, ["3"], CORNER) == "read"
    assert watch.judge(30.0, ["4"], CORNER) == "read"  # long after: a new number, not a counter
    assert watch.judge(31.0, ["5"], CORNER) == "counter"
    assert watch.judge(32.0, ["6"], CORNER) == "quiet"
    assert numeric(["00:01:23"]) and numeric(["3 - 1"]) and not numeric(["Exit 3"])


def test_a_real_running_counter_is_not_read_every_second(tmp_path):
    """Real OCR on a clip with a counter in its corner, as narrate prepare analyses it."""
    import subprocess

    from models.perception.ocr import TextStage
    from tests.support import prepare_film

    font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"  # fonts-dejavu-core
    clip = tmp_path / "counter.mp4"
    draw = (f"drawtext=fontfile={font}:fontsize=44:fontcolor=white:x=24:y=20:"
            f"text='%{{eif\\:38+25*floor(t)\\:d}}'")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=640x360:r=10:d=8", "-vf", draw, "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)
    stage = TextStage()
    assert stage.problem() == ""
    descs, _ = prepare_film(clip, tmp_path / "counter.vtt", 2.0, [stage], lambda _line: None)
    texts = [d.text for d in descs]
    read = [t for t in texts if t.startswith("Text on screen:")]
    assert read == ["Text on screen: 38."], texts  # its first number, read once
    assert any("like a counter, in the top left corner" in t for t in texts), texts
