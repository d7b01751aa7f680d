"""Layered cues (several at one moment, as ``narrate prepare`` writes them, one per verbosity
level) open with no problem message and are all said, the most important first."""

from __future__ import annotations

from tests import media
from tests.support import wait_for

TRACK = """WEBVTT
Kind: descriptions

d1 level=1 priority=2
00:00:01.000 --> 00:00:03.500
A person in the centre.

d2 level=3 priority=0
00:00:01.000 --> 00:00:02.600
Mostly grey.
"""


def test_layered_cues_open_without_problems_and_are_all_said(make_controller, tmp_path):
    clip = media.make_clip(tmp_path, name="layers.mp4", seconds=8.0)
    (tmp_path / "layers.descriptions.vtt").write_text(TRACK, encoding="utf-8")
    c = make_controller(live_analysis=False, verbosity=3)
    messages: list[tuple[str, str]] = []
    c.message.connect(lambda text, kind: messages.append((kind, text)))
    assert c.open(clip)
    def said() -> list[str]:
        return [r.text for r in c.speech.records if r.source == "track"]

    wait_for(lambda: len(said()) >= 2, timeout=15)
    assert said() == ["A person in the centre.", "Mostly grey."]
    assert [text for kind, text in messages if kind == "error"] == []
    assert ("info", "Loaded 2 descriptions from layers.descriptions.vtt.") in messages
