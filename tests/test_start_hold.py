"""A first viewing waits at its start until live analysis has looked at the opening, so the
demo's title card (0 to 4 s) is read while it is on screen; Space starts the film at once; a
player whose analysis cannot look, or that waited long enough, goes on by itself. Real libmpv,
real detectors, real speech."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from player.core import start_hold
from player.core.perception import Perception
from player.core.start_hold import StartHold
from tests.support import wait_for

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"


@pytest.fixture
def demo(tmp_path) -> Path:
    """The demo without its description track: the narrator describes it by itself."""
    copy = tmp_path / "street.mp4"
    shutil.copy(DEMO, copy)
    return copy


def opened(c, path: Path) -> list[str]:
    """Open ``path`` in player ``c``; the messages it gives, as they come."""
    messages: list[str] = []
    c.message.connect(lambda text, _kind: messages.append(text))
    c.open(path)
    wait_for(lambda: c.media is not None, timeout=10)
    return messages


def test_the_title_card_is_read_because_the_film_waits_for_the_narrator(make_controller, demo):
    c = make_controller(verbosity=2)
    messages = opened(c, demo)
    assert c.playback.pause is True, messages
    assert c.playback.time_pos < 0.1  # loaded paused: not a frame of the opening was missed
    assert any("looking at the first seconds" in m and "press Space" in m for m in messages)
    wait_for(lambda: c.playback.pause is False, timeout=30)
    assert messages[-1] == "Playing street.mp4, 32 seconds long.", messages
    wait_for(lambda: c.playback.time_pos > 3.5, timeout=15)
    said = [r for r in c.speech.records if r.source == "auto"]
    title = [r for r in said if "Video Narrator demo" in r.text]
    assert title, [r.text for r in said]
    assert title[0].media_start < 1.5, title[0]


def test_space_starts_the_film_at_once(make_controller, demo):
    c = make_controller()
    messages = opened(c, demo)
    assert c.playback.pause is True
    c.play_pause()
    assert c.playback.pause is False
    assert messages[-1] == "Playing street.mp4, 32 seconds long."
    c.play_pause()  # an ordinary pause from here on
    assert c.playback.pause is True and messages[-1] == "Paused."


@pytest.mark.parametrize("settings", [{"wait_for_narrator": False}, {"narration": False},
                                      {"live_analysis": False}])
def test_no_wait_when_the_narrator_will_not_describe_or_the_user_said_so(make_controller, demo,
                                                                          settings):
    c = make_controller(**settings)
    messages = opened(c, demo)
    assert c.playback.pause is False
    assert messages[-1] == "Playing street.mp4, 32 seconds long.", messages


def test_no_wait_with_a_description_track(make_controller):
    c = make_controller()
    messages = opened(c, DEMO)  # assets/demo.descriptions.vtt is found beside it
    assert c.playback.pause is False
    assert "Loaded 7 descriptions from demo.descriptions.vtt." in messages
    assert messages[-1] == "Playing demo.mp4, 32 seconds long.", messages


def test_turning_narration_off_while_waiting_starts_the_film(make_controller, demo):
    c = make_controller()
    opened(c, demo)
    assert c.playback.pause is True
    c.set_narration(False)
    assert c.playback.pause is False


def test_the_film_goes_on_when_the_detectors_fail_to_load(make_controller, demo):
    c = make_controller(live_analysis=False)  # a player, for its libmpv playback
    opened(c, demo)
    perception = Perception(stages_factory=lambda: ([], ["Pose is off: it failed to load."]))
    hold = StartHold(c.playback, perception)
    why: list[str] = []
    hold.released.connect(why.append)
    hold.begin(0.0, 32.0)
    assert c.playback.pause is True and hold.active
    perception.warm_up()
    wait_for(lambda: why, timeout=10)
    assert why == [start_hold.OFF] and c.playback.pause is False and not hold.active
    perception.close()


def test_the_film_goes_on_after_waiting_long_enough(make_controller, demo, monkeypatch):
    monkeypatch.setattr(start_hold, "HOLD_MAX", 0.3)  # the detectors take seconds to load
    c = make_controller()
    messages = opened(c, demo)  # on a busy machine, opening itself may take the 0.3 s
    assert any("looking at the first seconds" in m for m in messages), messages
    wait_for(lambda: c.playback.pause is False, timeout=5)
    assert messages[-1] == ("Playing street.mp4, 32 seconds long. The narrator is still "
                            "getting ready."), messages


def test_a_seek_from_the_slider_starts_the_film_at_once(make_controller, demo):
    c = make_controller()
    messages = opened(c, demo)
    assert c.playback.pause is True
    c.seek_to(10.0)
    assert c.playback.pause is False
    assert messages[-1] == "Playing street.mp4, 32 seconds long."
    wait_for(lambda: c.playback.time_pos > 10.0, timeout=10)


def test_the_opening_is_said_while_the_film_waits_then_it_plays(make_controller, tmp_path):
    """A scene full of dialogue from its first second: the film waited at its start while the
    narrator looked, that silence was not used, and then no pause came: nothing was said.
    Now the opening is said during the wait, and the film plays after it."""
    from tests.media import make_film

    lines = [(0.2, "Where were you last night? I waited for hours and hours."),
             (3.6, "I told you, the train was late again, like every night."),
             (7.0, "That is what you always say, every single time.")]
    film = make_film(tmp_path, lines, duration=10.0)
    c = make_controller(verbosity=2)
    started: list[float] = []
    c.playback.pause_changed.connect(
        lambda paused: started.append(c.playback.time_pos) if not paused else None)
    opened(c, film.path)
    opening = wait_for(lambda: [r for r in c.speech.records if r.source == "auto"], timeout=30)
    rec = opening[0]
    assert c.playback.pause is True and rec.media_start < 0.1  # said before the film starts
    wait_for(lambda: rec.wall_end, timeout=15)
    wait_for(lambda: started, timeout=5)  # the film plays (mpv says so a moment later)
    assert started[0] < 0.1  # from its beginning, after the opening
