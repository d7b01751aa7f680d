"""Films that are partly unreadable (a download cut short, a bad sector): what can be read is
analysed, the damage is said once in words, and the analysis is not cached as if whole.

The damage is real: files made by ffmpeg, cut short or overwritten with noise, and read by
PyAV. What PyAV does with them: a Matroska or front-indexed MP4 file cut short still declares
its whole length, and its frames and sound simply stop (sometimes with one undecodable packet);
noise in the middle of a Matroska file makes the demuxer skip ahead (a hole in the timestamps)
after one frame the decoder marks corrupt; in an MP4 the decoder refuses the damaged packets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from models.gaps import analyse
from models.pipeline.reader import Damage, FrameReader, damage_message
from models.vad import SileroVad
from tests.media import FFMPEG, make_cut, make_speech, overwrite
from tests.support import wait_for


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("damaged")


@pytest.fixture(scope="module")
def cut_mkv(media: Path) -> Path:
    return make_cut(media, "cut.mkv", seconds=20.0)


@pytest.fixture(scope="module")
def damaged_mkv(media: Path, cut_mkv: Path) -> Path:
    return overwrite(media / "whole-cut.mkv", media / "damaged.mkv", at=0.5, size=60_000)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "video-narrator"


def _read(path: Path) -> tuple[list[float], list[Damage], list[Damage]]:
    """Frame times, the reader's damage, and what it passed to ``on_damage``."""
    found: list[Damage] = []
    reader = FrameReader(path, fps=2.0, on_damage=found.append)
    times = [frame.t for frame in reader.frames()]
    reader.stop()
    return times, reader.damage, found


@pytest.mark.parametrize("name", ["cut.mkv", "cut.mp4"])
def test_a_film_cut_short_is_read_to_the_cut_and_the_rest_is_called_unreadable(
        media: Path, cut_mkv: Path, name: str) -> None:
    film = cut_mkv if name == "cut.mkv" else make_cut(media, name, seconds=20.0)
    times, damage, found = _read(film)
    assert 8.5 <= times[-1] <= 10.5, times  # everything before the cut was read
    assert len(damage) == 1 and damage[0].end is None, damage
    assert times[-1] <= damage[0].start <= 10.5
    assert found == damage  # passed on once
    assert damage_message(film.name, damage) == (
        f"Part of {film.name} could not be read (from about 0:10 to the end); descriptions "
        f"there may be missing.")
    whole, damage, found = _read(media / f"whole-{name}")
    assert whole[-1] > 19.0 and damage == [] and found == []


def test_a_last_picture_that_stays_on_screen_is_not_damage(tmp_path: Path) -> None:
    """Ten seconds of pictures, the last one held for 20 s more (its packet says so, as a
    slideshow or a still-image podcast may have it): the pictures end early, but nothing is
    missing."""
    import fractions

    import av
    import numpy as np

    film = tmp_path / "still.mp4"
    with av.open(str(film), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 10)
        packets = []
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 2 * i, np.uint8),
                                               format="rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode()
        packets[-1].duration = int(20 / packets[-1].time_base)
        for packet in packets:
            out.mux(packet)
    times, damage, _found = _read(film)
    assert times[-1] == pytest.approx(9.5) and damage == []


def test_noise_in_the_middle_is_one_damaged_stretch_and_reading_goes_on(
        damaged_mkv: Path) -> None:
    times, damage, found = _read(damaged_mkv)
    assert len(damage) == 1 and found == damage, damage
    start, end = damage[0].start, damage[0].end
    assert end is not None and 5.0 < start < end < 15.0, damage
    assert not any(start < t < end for t in times)
    assert times[-1] > 19.0  # read to the end after the damage
    assert re.fullmatch(r"Part of damaged\.mkv could not be read \((at about 0:\d\d|from about "
                        r"0:\d\d to 0:\d\d)\); descriptions there may be missing\.",
                        damage_message("damaged.mkv", damage))


def test_speech_after_damaged_sound_keeps_its_time_and_is_not_cached(
        tmp_path: Path, private_cache: Path) -> None:
    """Two lines of dialogue at 2 s and 15 s over a quiet hiss; noise written over the sound
    at about 8 s. The second line is still found at 15 s (the skipped stretch is not lost
    time), the damage is said, and the gaps are not cached as if the sound were whole."""
    line = make_speech(tmp_path, "Hello there, this is a short test of the narrator.")
    talk = tmp_path / "talk.mka"
    subprocess.run([*FFMPEG, "-i", str(line), "-i", str(line), "-f", "lavfi", "-i",
                    "anoisesrc=a=0.01:d=20:r=44100", "-filter_complex",
                    "[0]adelay=2000:all=1[a];[1]adelay=15000:all=1[b];"
                    "[a][b][2]amix=inputs=3:duration=longest:normalize=0[m]",
                    "-map", "[m]", "-ar", "44100", "-c:a", "aac", "-b:a", "64k", str(talk)],
                   check=True, capture_output=True)
    whole = analyse(talk, engine=SileroVad(), use_cache=False)
    assert [round(s.start) for s in whole.speech] == [2, 15] and not whole.damage
    damaged = overwrite(talk, tmp_path / "damaged talk.mka", at=0.4, size=8000)
    result = analyse(damaged, engine=SileroVad())
    later = [s for s in result.speech if s.start > 10.0]
    assert later and later[0].start == pytest.approx(whole.speech[1].start, abs=0.2), \
        result.speech
    assert len(result.damage) == 1 and result.damage[0].end is not None, result.damage
    assert 4.0 < result.damage[0].start < result.damage[0].end < 14.0
    assert any(n.startswith("Part of damaged talk.mka could not be read (") for n in
               result.notes), result.notes
    assert not list((private_cache / "gaps").glob("*.json"))
    assert not analyse(damaged, engine=SileroVad()).from_cache


def test_sound_cut_short_is_damage_to_the_end(cut_mkv: Path, private_cache: Path) -> None:
    result = analyse(cut_mkv, engine=SileroVad())
    assert len(result.damage) == 1 and result.damage[0].end is None
    assert 9.0 <= result.damage[0].start <= 10.5, result.damage
    assert not list((private_cache / "gaps").glob("*.json"))


class _Seen:
    """A stage that only notes the times of the frames it is given."""

    name = "seen"

    def __init__(self) -> None:
        self.times: list[float] = []

    def process(self, t: float, frame: object) -> list:
        self.times.append(t)
        return []

    def flush(self) -> list:
        return []

    def reset(self) -> None:
        pass


def test_prepare_says_once_what_could_not_be_read_and_keeps_no_cache(
        tmp_path: Path, cut_mkv: Path, damaged_mkv: Path, private_cache: Path) -> None:
    from models.perception.shots import ShotStage
    from tests.support import prepare_film

    for film, last in ((cut_mkv, 9.0), (damaged_mkv, 19.0)):
        copy = shutil.copy(film, tmp_path / film.name)
        said: list[str] = []
        seen = _Seen()
        prepare_film(Path(copy), tmp_path / f"{film.stem}.vtt", 2.0, [ShotStage(), seen],
                     said.append)
        told = [s for s in said if "could not be read" in s]
        assert len(told) == 1 and told[0].startswith(f"Part of {film.name} could not be read ("), \
            said
        assert seen.times[-1] >= last  # all that could be read was analysed
        assert (tmp_path / f"{film.stem}.vtt").exists()
        assert not list((private_cache / "observations").glob("*.json")), film


def test_the_player_says_it_once_and_keeps_no_cache(qapp, tmp_path: Path, damaged_mkv: Path,
                                                   private_cache: Path) -> None:
    from PySide6.QtCore import QCoreApplication

    from models.perception.shots import ShotStage
    from player.core.perception import Perception

    film = Path(shutil.copy(damaged_mkv, tmp_path / "film.mkv"))
    p = Perception(stages_factory=lambda: ([ShotStage()], []))
    problems: list[str] = []
    p.problem.connect(problems.append)
    p.open(film, 20.0)

    def finished() -> bool:
        return p.session._lookahead is not None and p.session._lookahead.finished  # noqa: SLF001

    wait_for(finished, timeout=60)
    wait_for(lambda: problems, timeout=5)
    p.seek(2.0)  # the damage is read again: nothing more is said
    wait_for(finished, timeout=60)
    QCoreApplication.processEvents()  # the damage found again was queued before the end
    assert len(problems) == 1 and problems[0].startswith("Part of film.mkv could not be read ("), \
        problems
    wait_for(lambda: p.session._worker.queued() == 0, timeout=30)  # noqa: SLF001
    p.close()
    assert not p.from_cache  # set when it decides to save (on a thread of its own)
    assert not list((private_cache / "observations").glob("*.json"))


def test_with_a_model_the_damage_of_picture_and_sound_is_said_as_one(
        tmp_path: Path, cut_mkv: Path, private_cache: Path) -> None:
    """With --model the sound is searched for dialogue first; a film cut short has lost both,
    and the listener hears it once."""
    from models.perception.shots import ShotStage
    from models.pipeline.offline import find_dialogue
    from tests.scripted_vlm import ScriptedVlm
    from tests.support import prepare_film

    film = Path(shutil.copy(cut_mkv, tmp_path / cut_mkv.name))
    said: list[str] = []
    assert find_dialogue(film, lambda _line: None).damage  # the sound stops at the cut too
    prepare_film(film, tmp_path / "cut.vtt", 2.0, [ShotStage()], said.append,
                 engine=ScriptedVlm(["A test pattern."]), model="scripted")
    assert [s for s in said if "could not be read" in s] == [
        "Part of cut.mkv could not be read (from about 0:10 to the end); descriptions there "
        "may be missing."], said
