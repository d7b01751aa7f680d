"""Live scene analysis in the player, with the real models on the bundled demo (real people,
a street sign, title cards): descriptions are composed ahead of the playhead and spoken in the
pauses, and "describe now" answers from what the models see in the frame on screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import pump, wait_for

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"


@pytest.fixture
def controller(make_controller):
    return make_controller


@pytest.fixture
def demo(tmp_path) -> Path:
    """The demo without its description track: everything said comes from live analysis."""
    copy = tmp_path / "street.mp4"
    shutil.copy(DEMO, copy)
    return copy


def test_live_analysis_reads_the_street_sign_in_a_pause(controller, demo):
    c = controller(verbosity=2)
    c.open(demo)
    wait_for(lambda: c.perception.available, timeout=30)
    c.playback.seek_absolute(14.0)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 19.5, timeout=30)
    said = [r for r in c.speech.records if r.source == "auto"]
    assert any("MAIN STREET" in r.text for r in said), [r.text for r in said]
    sign = next(r for r in said if "MAIN STREET" in r.text)
    assert 15.5 <= sign.media_start <= 17.5
    # The sign was read in the pause between the lines of dialogue (13.5-15.8 s, 19.0 s).
    assert sign.media_start >= 15.8 and (sign.media_end or 99) <= 19.05


def test_describe_now_sees_the_man_in_the_car(controller, demo):
    c = controller(narration=False)
    c.open(demo)
    wait_for(lambda: c.perception.available and c.media is not None, timeout=30)
    c.playback.seek_absolute(6.0)
    wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - 6.0) < 0.5, timeout=5)
    pump(0.5)  # the picture after the seek is on screen
    said = []
    c.narrator.said.connect(said.append)
    c.describe_now()
    wait_for(lambda: said, timeout=10)
    text = said[0].text
    assert said[0].source == "now"
    assert "a person" in text.lower() or "one" in text.lower(), text
    assert "no vision-language model" in text, text  # honest about where it comes from


def test_without_live_analysis_nothing_is_made_up(controller, demo):
    c = controller(live_analysis=False)
    c.open(demo)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 3.0, timeout=10)
    assert c.speech.records == [] and not c.perception.available


def test_a_second_viewing_narrates_from_the_first_instant(controller, demo, tmp_path):
    first = controller(speed=4.0)  # watch quickly: the analysis must cover the whole film
    first.open(demo)
    wait_for(lambda: first.perception.session._lookahead is not None  # noqa: SLF001
             and first.perception.session._lookahead.finished, timeout=60)  # noqa: SLF001
    wait_for(lambda: first.perception.session._worker.queued() == 0, timeout=30)  # noqa: SLF001
    first.close()
    cache = tmp_path / "cache" / "video-narrator" / "observations"
    wait_for(lambda: list(cache.glob("*.json")), timeout=10)
    second = controller()
    second.open(demo)
    wait_for(lambda: second.perception.from_cache, timeout=10)
    texts = [d.text for d in second.narrator.timeline.descriptions]
    assert any("Video Narrator demo" in t for t in texts), texts
    # The title is said at once, not after the models have loaded.
    rec = wait_for(lambda: next((r for r in second.speech.records if r.source == "auto"), None),
                   timeout=10)
    assert "Video Narrator demo" in rec.text and rec.media_start < 1.5


def test_analysis_that_falls_behind_jumps_ahead_of_the_playhead(controller, demo):
    c = controller(narration=False)
    c.open(demo)
    wait_for(lambda: c.perception.session._lookahead is not None, timeout=30)  # noqa: SLF001
    la = c.perception.session._lookahead  # noqa: SLF001
    assert la.position < 20.0
    c.perception.keep_ahead(25.0)  # as if the film were at 25 s and the analysis far behind
    assert la.position >= 25.0
    c.perception.keep_ahead(10.0)  # ahead of the playhead: nothing changes
    assert la.position >= 25.0


@pytest.mark.parametrize("notes", [[], ["Pose detection is off: its model failed to load."]])
def test_an_analysis_without_every_stage_is_not_cached(qapp, demo, tmp_path, monkeypatch, notes):
    """A viewing whose pose model failed to load must not leave its weaker analysis for every
    later viewing (that would go on without pose once the model is mended)."""
    from models.perception.shots import ShotStage
    from player.core.perception import Perception

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    p = Perception(stages_factory=lambda: ([ShotStage()], list(notes)))
    p.open(demo, 32.0)
    wait_for(lambda: p.session._lookahead is not None and p.session._lookahead.finished,  # noqa: SLF001
             timeout=60)
    wait_for(lambda: p.session._worker.queued() == 0, timeout=30)  # noqa: SLF001
    p.close()
    cache = tmp_path / "cache" / "video-narrator" / "observations"
    if notes:
        pump(1.0)
        assert not list(cache.glob("*.json"))
    else:
        wait_for(lambda: list(cache.glob("*.json")), timeout=10)


def test_cached_model_answers_are_keyed_by_which_model_wrote_them(tmp_path):
    from models.pipeline.config import cache_config

    one, two, copy = (tmp_path / d / "model.gguf" for d in ("a", "b", "c"))
    for path, content in ((one, b"GGUF one"), (two, b"GGUF two"), (copy, b"GGUF one")):
        path.parent.mkdir()
        path.write_bytes(content)
    assert cache_config(str(one)) != cache_config(str(two))  # same name, other weights
    assert cache_config(str(one)) == cache_config(str(copy))  # the same file moved
    (tmp_path / "x" / "model").mkdir(parents=True)
    (tmp_path / "y" / "model").mkdir(parents=True)
    assert cache_config(str(tmp_path / "x" / "model")) != cache_config(str(tmp_path / "y" / "model"))
    assert cache_config("smolvlm-256m")["vlm"] == "smolvlm-256m"  # a catalog name as it is
    assert "vlm" not in cache_config("")


def test_what_was_seen_of_the_last_film_never_reaches_the_next(qapp, demo, tmp_path,
                                                                monkeypatch):
    """Frames of film A still in the worker when film B opens are dropped: they must not count
    as B's analysis (which would start B before its opening was looked at) nor be said in B."""
    from player.core.perception import Perception
    from tests import media

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    other = media.make_clip(tmp_path, name="other.mp4", seconds=8.0)
    p = Perception()
    seen: list[float] = []
    p.analysed.connect(seen.append)
    p.open(demo, 32.0, at=20.0)
    wait_for(lambda: any(t >= 20.0 for t in seen), timeout=60)  # film A is being analysed
    p.stop_lookahead()
    seen.clear()
    p.open(other, 8.0)
    wait_for(lambda: seen and max(seen) >= 3.0, timeout=60)
    assert all(t < 8.5 for t in seen), seen
    assert all(o.t < 8.5 for o in p.observations()), [o for o in p.observations() if o.t >= 8.5]
    p.close()


def test_a_track_without_a_usable_cue_gives_way_to_live_analysis(controller, demo):
    """A description track in which no cue can be read: the player says so and describes the
    film itself, as it does when the track cannot be read at all."""
    track = demo.with_suffix(".descriptions.vtt")
    track.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:00.500\nBackwards.\n\nno times here\n",
                     encoding="utf-8")
    c = controller(verbosity=2)
    messages: list[str] = []
    c.message.connect(lambda text, _kind: messages.append(text))
    c.open(demo)
    assert any("holds no description that can be used" in m and "Live scene analysis" in m
               for m in messages), messages
    wait_for(lambda: any(r.source == "auto" for r in c.speech.records), timeout=40)


def test_without_a_model_answers_are_short_and_say_the_limit_once(controller, demo):
    """Without a vision-language model, "describe now" and "ask" gave canned refusals of 10 to
    19 s, longer than the picture they were about, and repeated sentences."""
    from models.brief import ANSWER_WORDS, sentences

    c = controller(narration=False, wait_for_narrator=False)
    c.open(demo)
    wait_for(lambda: c.perception.available and c.media is not None, timeout=30)
    c.playback.seek_absolute(6.0)
    wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - 6.0) < 0.5, timeout=5)
    pump(0.5)
    said = []
    c.narrator.said.connect(said.append)
    for question in (None, "Who is in the car?", "What colour is the car?", None):
        before = len(said)
        if question is None:
            c.describe_now()
        else:
            c.ask(question)
        wait_for(lambda before=before: len(said) > before, timeout=15)
    now, first, second, again = (d.text for d in said)
    assert "no vision-language model" in now  # where the answer comes from, once
    assert "can't answer questions" in first  # the limit, once
    for text in (second, again):
        assert "can't answer questions" not in text and "vision-language" not in text
    limit = len("Without a vision-language model I can't answer questions. I see:".split())
    assert len(first.split()) <= limit + ANSWER_WORDS + 12  # the longest first sentence kept
    for text in (now, second, again):
        assert len(text.split()) <= ANSWER_WORDS + 12, text
        parts = [s.lower() for s in sentences(text)]
        assert len(parts) == len(set(parts)), text  # nothing said twice


def test_quitting_while_the_detectors_load_waits_for_them(qapp, tmp_path, monkeypatch):
    """Terminal mode quit a second after it started once ended in an abort (exit status -6):
    the detectors were still loading on a thread of their own while Python shut down."""
    from player.app import LaunchOptions, build_controller
    from player.core.settings import Settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, Settings(live_analysis=True))
    assert c.perception.loading  # the detectors take seconds to load
    c.close()
    assert not c.perception.loading
    loaded = c.perception.session._loaded_worker  # noqa: SLF001 - what the loading made was stopped
    assert loaded is None
