"""A description track with one absurdly long cue, played by the real player (libmpv with null
outputs, real espeak-ng): the cue is cut and reported, and nothing else is held back by it."""

from __future__ import annotations

import time

from tests import media
from tests.support import wait_for

LONG = ("A man walks along the road past the houses and the trees. " * 400)[:22_999] + "."
CUES = [(0.5, 1.0, "A test card.", 2),
        (2.0, 2.5, "Bars of colour.", 2),
        (2.6, 5.0, LONG, 2),
        (6.0, 6.5, "The end.", 2)]


def test_a_23000_character_cue_holds_nothing_back(make_controller, tmp_path):
    clip = media.make_clip(tmp_path, seconds=8.0)
    media.write_vtt(tmp_path, CUES, name="clip.descriptions.vtt")
    c = make_controller(live_analysis=False)
    messages: list[str] = []
    c.message.connect(lambda text, _kind: messages.append(text))
    assert c.open(clip)
    assert any("cue d3 is 23,000 characters long" in m for m in messages), messages

    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 3.0, timeout=15)
    asked = time.monotonic()
    c.say_time()
    said = wait_for(lambda: next((r for r in c.speech.records if r.source == "system"), None),
                    timeout=5)
    assert said.wall_start - asked < 1.0, "the time waited behind the long cue"

    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 7.5, timeout=15)
    spoken = [r.text for r in c.speech.records if r.source == "track"]
    assert spoken[:2] == ["A test card.", "Bars of colour."]
    assert "The end." in spoken, (spoken, c.narrator.skips)
    begin = time.monotonic()
    c.close()
    assert time.monotonic() - begin < 1.0
