"""Real libmpv playback with null outputs: loading, controls, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.media.media_check import check_path
from player.media.playback import Playback, gain_to_mpv_volume
from tests import media
from tests.support import pump, wait_for


@pytest.fixture
def playback(qapp):
    pb = Playback(options={"vo": "null", "ao": "null"})
    yield pb
    pb.terminate()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("pb"), seconds=12.0)


class Events:
    def __init__(self, pb: Playback) -> None:
        self.failed: list[str] = []
        self.loaded: list[object] = []
        self.ended = 0
        pb.failed.connect(self.failed.append)
        pb.loaded.connect(self.loaded.append)
        pb.ended.connect(self._end)

    def _end(self) -> None:
        self.ended += 1


def test_plays_and_reports_media_info(playback, clip):
    ev = Events(playback)
    assert playback.open(clip)
    wait_for(lambda: ev.loaded)
    info = ev.loaded[0]
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (320, 240)
    assert info.video_codec == "h264"
    assert info.duration == pytest.approx(12.0, abs=0.1)
    wait_for(lambda: playback.mpv.time_pos and playback.mpv.time_pos > 0.3, timeout=5)
    assert ev.failed == []


def test_controls_change_mpv_properties(playback, clip):
    ev = Events(playback)
    playback.open(clip)
    wait_for(lambda: ev.loaded)
    playback.pause = True
    wait_for(lambda: playback.mpv.pause is True)
    playback.seek_absolute(6.0)
    wait_for(lambda: abs((playback.mpv.time_pos or 0) - 6.0) < 0.05)
    playback.seek_relative(-5.0)
    wait_for(lambda: abs((playback.mpv.time_pos or 0) - 1.0) < 0.05)
    playback.volume = 70
    assert playback.mpv.volume == pytest.approx(70)
    playback.volume = 500  # clamped to mpv's maximum
    assert playback.mpv.volume == pytest.approx(130)
    playback.speed = 1.5
    assert playback.mpv.speed == pytest.approx(1.5)
    playback.mute = True
    assert playback.mpv.mute is True
    assert playback.toggle_pause() is False
    wait_for(lambda: playback.mpv.pause is False)


def test_ducking_scales_mpv_volume_and_keeps_the_users_volume(playback, clip):
    ev = Events(playback)
    playback.open(clip)
    wait_for(lambda: ev.loaded)
    playback.volume = 80
    playback.set_duck(-11.0)
    expected = 80 * gain_to_mpv_volume(-11.0)
    assert playback.mpv.volume == pytest.approx(expected, abs=0.01)
    # mpv's volume curve is cubic: the amplitude factor is (volume/100)^3
    assert 20 * __import__("math").log10((expected / 80) ** 3) == pytest.approx(-11.0, abs=0.01)
    assert playback.volume == 80 and playback.ducked
    playback.set_duck(0.0)
    assert playback.mpv.volume == pytest.approx(80)
    assert not playback.ducked


def test_screenshot_of_a_flat_colour_frame(playback, tmp_path):
    red = media.make_clip(tmp_path, name="red.mp4", seconds=3, colour="red", audio=False)
    ev = Events(playback)
    playback.open(red)
    wait_for(lambda: ev.loaded)
    frame = wait_for(playback.frame_rgb, timeout=5)
    w, h, data = frame
    assert (w, h) == (320, 240)
    mid = (h // 2 * w + w // 2) * 3
    r, g, b = data[mid:mid + 3]
    assert r > 200 and g < 60 and b < 60


def test_end_of_file_is_reported(playback, tmp_path):
    short = media.make_clip(tmp_path, name="short.mp4", seconds=1.0)
    ev = Events(playback)
    playback.open(short)
    wait_for(lambda: ev.ended, timeout=6)
    assert ev.failed == []


BAD_FILES = {
    "missing": (lambda d: d / "no such file.mp4", "No file named no such file.mp4"),
    "folder": (lambda d: (d / "a folder.mp4").mkdir() or d / "a folder.mp4", "is a folder"),
    "zero": (media.make_zero_length, "is empty (zero bytes)"),
    "corrupt": (media.make_corrupt, "not a format the player can open"),
    "truncated": (media.make_truncated, "not a format the player can open"),
    "text": (media.make_text_file, "not a format the player can open"),
    "unknown codec": (media.make_unknown_codec, "cannot decode"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_files_give_a_clear_message_and_mpv_keeps_working(playback, clip, tmp_path, kind):
    make, expected = BAD_FILES[kind]
    bad = make(tmp_path)
    ev = Events(playback)
    playback.open(bad)
    wait_for(lambda: ev.failed, timeout=6)
    assert expected in ev.failed[0]
    assert Path(bad).name in ev.failed[0]
    # The same player then opens a good file.
    ev.loaded.clear()
    assert playback.open(clip)
    wait_for(lambda: ev.loaded and ev.loaded[-1].has_video, timeout=6)


def test_unreadable_file_is_refused_before_mpv(tmp_path, monkeypatch):
    f = media.make_clip(tmp_path, seconds=1)
    monkeypatch.setattr("os.access", lambda *_a, **_k: False)  # root can read anything
    assert "permission" in check_path(f)


def test_audio_only_and_silent_files_load(playback, tmp_path):
    ev = Events(playback)
    playback.open(media.make_audio_only(tmp_path))
    wait_for(lambda: ev.loaded)
    assert not ev.loaded[0].has_video and ev.loaded[0].has_audio
    silent = media.make_clip(tmp_path, name="silent.mp4", seconds=2, audio=False)
    playback.open(silent)
    wait_for(lambda: len(ev.loaded) == 2)
    assert ev.loaded[1].has_video and not ev.loaded[1].has_audio
    assert ev.failed == []


def test_path_with_spaces_and_non_ascii(playback, clip, tmp_path):
    odd = media.odd_name_copy(clip, tmp_path)
    ev = Events(playback)
    assert playback.open(odd)
    wait_for(lambda: ev.loaded)
    assert Path(ev.loaded[0].path).name == odd.name
    assert ev.failed == []
    pump(0.3)


def test_a_film_opened_after_the_last_one_ended_plays(qapp, tmp_path, clip):
    """At the end of a film mpv pauses (keep-open); that pause could land after the next film
    was opened, leaving it paused while the player said "Playing" (3 in 12 tries)."""
    short = media.make_clip(tmp_path, name="short.mp4", seconds=1.0)
    for _try in range(4):
        pb = Playback(options={"vo": "null", "ao": "null"})
        try:
            ev = Events(pb)
            pb.open(short)
            wait_for(lambda ev=ev: ev.ended, timeout=10)
            pump(0.15)  # the moment at which the late pause was seen to hit the next film
            ev.loaded.clear()
            pb.open(clip, paused=False)
            wait_for(lambda ev=ev: ev.loaded, timeout=10)
            wait_for(lambda pb=pb: (pb.mpv.time_pos or 0) > 0.3, timeout=5)
            assert pb.pause is False
        finally:
            pb.terminate()
