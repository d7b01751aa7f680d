"""Narration through real libmpv and real espeak-ng: cues are spoken on time, the film is ducked
or paused while the narrator speaks, and nothing stale or unwanted is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from player.media.playback import gain_to_mpv_volume
from tests import media
from tests.support import pump, wait_for

CUES = [(1.0, 2.5, "Bars of colour.", 1),
        (4.0, 5.5, "A clock.", 2),
        (7.0, 8.5, "Moving shapes.", 3),
        (10.0, 11.5, "Still moving.", 2)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("narr")
    path = media.make_clip(folder, seconds=14.0)
    media.write_vtt(folder, CUES, name="clip.descriptions.vtt")
    return path


@pytest.fixture
def run(make_controller):
    # Live analysis has its own tests; here it would only add load.
    return lambda **settings: make_controller(**{"live_analysis": False, **settings})


def track_records(c):
    return [r for r in c.speech.records if r.source == "track"]


def test_cues_are_spoken_on_time_and_the_film_is_ducked(run, clip):
    c = run(verbosity=2, duck_db=-11.0, volume=80)
    assert c.open(clip)
    wait_for(lambda: track_records(c), timeout=10)
    # The film fades down to -11 dB within a fifth of a second of the narrator starting.
    ducked = 80 * gain_to_mpv_volume(-11.0)
    wait_for(lambda: abs(c.playback.mpv.volume - ducked) < 0.5, timeout=0.3)
    wait_for(lambda: len(track_records(c)) >= 2 and track_records(c)[1].wall_end, timeout=15)
    recs = track_records(c)
    assert [r.text for r in recs[:2]] == ["Bars of colour.", "A clock."]
    for rec, start in zip(recs, (1.0, 4.0), strict=False):
        # Synthesis takes a few milliseconds; the sentence starts within a fifth of a second.
        assert start - 0.05 <= rec.media_start <= start + 0.2, rec
    wait_for(lambda: not c.speech.speaking)
    wait_for(lambda: abs(c.playback.mpv.volume - 80) < 0.01, timeout=0.5)


def test_verbosity_brief_says_only_level_one(run, clip):
    c = run(verbosity=1)
    c.open(clip)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 8.7, timeout=15)
    assert [r.text for r in track_records(c)] == ["Bars of colour."]


def test_describe_now_in_pause_mode_pauses_the_film_and_resumes_after(run, clip):
    c = run(mode="pause", narration=False, live_analysis=False)
    pauses: list[bool] = []
    c.speech.started.connect(lambda _r: pauses.append(c.playback.mpv.pause))
    c.open(clip)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 4.2, timeout=10)
    c.describe_now()
    rec = wait_for(lambda: c.speech.records and c.speech.records[0].wall_end and
                   c.speech.records[0], timeout=15)
    assert rec.text.startswith("A clock.") and rec.source == "now"
    assert pauses == [True]
    # The film stood still while the narrator spoke...
    assert rec.media_end == pytest.approx(rec.media_start, abs=0.1)
    # ...and plays again after.
    wait_for(lambda: c.playback.mpv.pause is False)
    t = c.playback.mpv.time_pos
    wait_for(lambda: c.playback.mpv.time_pos > t + 0.3)


def test_seeking_past_cues_never_speaks_them_late(run, clip):
    c = run(verbosity=3)
    c.open(clip)
    wait_for(lambda: c.playback.mpv.time_pos is not None)
    c.playback.seek_absolute(8.9)  # 1.9 s after "Moving shapes.": stale
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 10.8, timeout=10)
    said = [r.text for r in track_records(c)]
    assert "Moving shapes." not in said and "Bars of colour." not in said
    assert said == ["Still moving."]


def test_seeking_back_speaks_a_cue_again(run, clip):
    c = run(verbosity=1)
    c.open(clip)
    wait_for(lambda: track_records(c), timeout=10)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 3.0, timeout=10)
    c.playback.seek_absolute(0.5)
    wait_for(lambda: len(track_records(c)) == 2, timeout=10)
    assert [r.text for r in track_records(c)] == ["Bars of colour.", "Bars of colour."]


def test_narration_off_is_silent_and_instant(run, clip):
    c = run()
    c.open(clip)
    wait_for(lambda: c.speech.speaking and track_records(c), timeout=10)
    c.set_narration(False)
    assert not c.speech.speaking
    assert track_records(c)[0].interrupted
    wait_for(lambda: abs(c.playback.mpv.volume - 100) < 0.01, timeout=0.5)  # a short fade
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 5.0, timeout=10)
    assert len(track_records(c)) == 1


def test_screen_reader_route_announces_instead_of_speaking(run, clip):
    c = run(speech_output="screen_reader")
    announced: list[str] = []
    c.message.connect(lambda text, kind: kind == "narration" and announced.append(text))
    c.open(clip)
    wait_for(lambda: announced, timeout=10)
    assert announced[0] == "Bars of colour."
    pump(0.3)
    assert c.speech.records == []


def test_describe_now_without_a_track_says_so_honestly(run, tmp_path):
    bare = media.make_clip(tmp_path, name="bare.mp4", seconds=4)
    c = run()
    c.open(bare)
    wait_for(lambda: c.media is not None)
    said = []
    c.narrator.said.connect(said.append)
    c.describe_now()
    assert "No description is available" in said[0].text


def test_broken_description_track_reports_lines_and_loads_the_rest(run, tmp_path):
    clip = media.make_clip(tmp_path, name="b.mp4", seconds=4)
    (tmp_path / "b.descriptions.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nGood cue.\n\n"
        "00:00:xx.000 --> 00:00:03.000\nBad time.\n\n"
        "00:00:03.000 --> 00:00:03.500\nAnother good cue.\n")
    c = run()
    messages = []
    c.message.connect(lambda text, kind: messages.append((kind, text)))
    c.open(clip)
    errors = [t for k, t in messages if k == "error"]
    assert any("b.descriptions.vtt, line 6" in t for t in errors), errors
    assert ("info", "Loaded 2 descriptions from b.descriptions.vtt.") in messages


def test_describe_now_after_a_cue_has_ended_repeats_the_latest_cue(run, clip):
    c = run()
    c.open(clip)
    desc = c.narrator.describe_now(13.0)  # the last cue ended at 11.5
    assert desc.text == "Still moving." and desc.start == 13.0 and desc.source == "now"


def test_speech_follows_film_speed_and_holds_when_the_user_pauses(run, clip):
    c = run(verbosity=1, speed=1.5)
    c.open(clip)
    rec = wait_for(lambda: next(iter(track_records(c)), None), timeout=10)
    assert rec.speed == pytest.approx(1.5)
    c.play_pause()  # the user pauses while the narrator speaks
    wait_for(lambda: c.speech._mpv.pause is True, timeout=2)  # noqa: SLF001
    pump(0.6)
    assert rec.wall_end is None  # held, not cut off
    c.play_pause()
    wait_for(lambda: rec.wall_end is not None, timeout=5)
    assert not rec.interrupted
    assert rec.paused_for >= 0.5
    assert rec.wall_end - rec.wall_start == pytest.approx(rec.duration + rec.paused_for, abs=0.3)


def test_follow_up_sentences_wait_for_the_one_being_said(run, clip):
    """A streamed answer's next sentence is said after the first, in pause mode with the film
    held through both; a new "describe now" drops follow-ups that were still waiting."""
    from models import Description

    c = run(mode="pause", narration=False)
    c.open(clip)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 1.0, timeout=10)
    c.narrator.deliver(Description(start=1.0, text="A man walks to the door.", source="now"))
    c.narrator.expect_more()  # as the controller does while the model is writing
    c.narrator.continue_with(Description(start=1.0, text="He opens it.", source="now"))
    c.narrator.finish_answer()  # the model has finished; both sentences are still said
    wait_for(lambda: len(c.speech.records) == 2 and c.speech.records[1].wall_end, timeout=20)
    first, second = c.speech.records
    assert [first.text, second.text] == ["A man walks to the door.", "He opens it."]
    assert not first.interrupted and second.wall_start >= first.wall_end - 0.05
    # The film stayed paused from the first sentence to the end of the second.
    assert second.media_end == pytest.approx(first.media_start, abs=0.1)
    wait_for(lambda: c.playback.mpv.pause is False)
    c.narrator.deliver(Description(start=2.0, text="A red car.", source="now"))
    c.narrator.expect_more()
    c.narrator.continue_with(Description(start=2.0, text="It drives away.", source="now"))
    c.narrator.deliver(Description(start=2.0, text="A blue door.", source="now"))
    wait_for(lambda: c.speech.records[-1].text == "A blue door." and
             c.speech.records[-1].wall_end, timeout=20)
    pump(0.5)
    assert "It drives away." not in [r.text for r in c.speech.records]


def test_a_streamed_answer_reaches_the_screen_reader_whole(run, clip):
    """With the screen reader as the only output, every sentence of a streamed answer is
    announced, not only the first two."""
    from models import Description

    c = run(speech_output="screen_reader", narration=False)
    announced: list[str] = []
    c.message.connect(lambda text, kind: kind == "narration" and announced.append(text))
    c.open(clip)
    wait_for(lambda: c.media is not None)
    sentences = ["A man walks to the door.", "He opens it.", "A dog runs out.", "It barks."]
    c.narrator.deliver(Description(start=1.0, text=sentences[0], source="now"))
    c.narrator.expect_more()
    for text in sentences[1:]:
        c.narrator.continue_with(Description(start=1.0, text=text, source="now"))
    c.narrator.finish_answer()
    pump(0.2)
    assert announced == sentences
    assert c.speech.records == []


def test_a_late_sentence_lets_the_film_go_on_and_is_still_said(run, clip):
    """The film is held for the next sentence only so long; a sentence that comes later is
    still said (the answer is not cut off by the wait)."""
    from models import Description

    c = run(mode="pause", narration=False)
    c.open(clip)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 1.0, timeout=10)
    c.narrator._hold_timer.setInterval(300)  # noqa: SLF001  (10 s in use)
    c.narrator.deliver(Description(start=1.0, text="A red car.", source="now"))
    c.narrator.expect_more()
    wait_for(lambda: c.speech.records and c.speech.records[0].wall_end, timeout=15)
    # Held at first, then the film goes on once the wait is over.
    wait_for(lambda: c.playback.mpv.pause is False, timeout=3)
    t = c.playback.mpv.time_pos
    wait_for(lambda: c.playback.mpv.time_pos > t + 0.2, timeout=5)
    c.narrator.continue_with(Description(start=1.0, text="It drives away.", source="now"))
    c.narrator.finish_answer()
    wait_for(lambda: len(c.speech.records) == 2 and c.speech.records[1].wall_end, timeout=15)
    assert c.speech.records[1].text == "It drives away."
    assert not c.speech.records[1].interrupted
    wait_for(lambda: c.playback.mpv.pause is False, timeout=3)


def test_someone_whose_introduction_was_not_heard_is_described_plainly(run, tmp_path):
    """'The person is back' means nothing to a listener who never heard the person arrive (that
    sentence was above their verbosity, or found no room): they hear the plain version, and
    the person is known to them from then on."""
    from models import Description

    clip = media.make_clip(tmp_path, seconds=9.0)
    story = [Description(1.0, "New shot: a person standing in the centre.", level=3,
                         source="auto", introduces=(1,)),
             Description(2.0, "The person is back, on the left.", level=1, source="auto",
                         refers=(1,), plain="New shot: a person standing on the left."),
             Description(5.0, "The person sits down.", level=2, source="auto", refers=(1,),
                         plain="A person sits down.")]
    heard = {}
    for verbosity in (2, 3):
        c = run(verbosity=verbosity)
        c.open(clip)
        wait_for(lambda c=c: c.media is not None, timeout=10)
        c.narrator.add_descriptions(story)
        wait_for(lambda c=c: (c.playback.mpv.time_pos or 0) > 7.5, timeout=15)
        heard[verbosity] = [r.text for r in c.speech.records if r.source == "auto"]
        c.close()
    assert heard[2] == ["New shot: a person standing on the left.", "The person sits down."]
    assert heard[3] == [d.text for d in story]


def test_no_description_starts_before_the_dialogue_under_it_is_known(run, clip):
    """Unknown is not room: a prepared film's first description was said over a woman
    talking, because dialogue detection had not yet covered the start."""
    from models.types import Gap

    c = run(verbosity=1)
    c.scanner.progress.disconnect()  # dialogue detection says nothing until the test does
    c.open(clip)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 2.0, timeout=10)
    assert track_records(c) == []  # the cue at 1.0 s waits: nothing is known there
    known_at = c.playback.mpv.time_pos
    c.narrator.gaps.update([Gap(0.0, 14.0)], [(0.0, 14.0)], end=14.0)
    rec = wait_for(lambda: track_records(c) and track_records(c)[0], timeout=5)
    assert rec.text == "Bars of colour." and rec.media_start >= known_at


def test_when_dialogue_detection_fails_descriptions_are_still_said(run, clip):
    c = run(verbosity=2)
    c.scanner.progress.disconnect()
    messages: list[str] = []
    c.message.connect(lambda text, _kind: messages.append(text))
    c.open(clip)
    c.scanner.failed.emit("Dialogue detection stopped: test. Descriptions are spoken at their "
                          "times, over any dialogue.")
    rec = wait_for(lambda: track_records(c) and track_records(c)[0], timeout=10)
    assert rec.text == "Bars of colour." and rec.media_start < 1.3
    assert any(m.startswith("Dialogue detection stopped") for m in messages)


def test_the_record_accounts_for_every_description(run, tmp_path):
    """--record missed descriptions that were neither spoken nor skipped (passed over by a
    seek, or after where playback stopped): each is now in one list or the other, with why."""
    import json

    from player.app import write_record

    folder = tmp_path / "rec"
    folder.mkdir()
    clip = media.make_clip(folder, seconds=14.0)
    media.write_vtt(folder, [(1.0, 2.0, "Bars of colour.", 1), (4.0, 5.0, "A clock.", 1),
                             (5.5, 6.0, "Shapes move.", 1), (12.5, 13.0, "The end.", 1)],
                    name="clip.descriptions.vtt")
    c = run(verbosity=1)
    c.open(clip)
    wait_for(lambda: len(track_records(c)) >= 2, timeout=15)  # the first two are said
    c.playback.seek_absolute(8.0)  # past "Shapes move."
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 9.0, timeout=10)
    out = tmp_path / "record.json"
    write_record(c, str(out))
    data = json.loads(out.read_text())
    spoken = {r["text"] for r in data["spoken"]}
    skipped = {s["text"]: s["reason"] for s in data["skipped"]}
    assert {"Bars of colour.", "A clock."} <= spoken
    assert "passed over" in skipped["Shapes move."]
    assert "not reached" in skipped["The end."]


def test_the_verbosity_is_said_by_the_voice_when_changed_and_at_the_start(run, clip):
    """V and Shift V changed the level silently for a listener of the narrator's own voice,
    and a later run started at "brief" without a word."""
    c = run(verbosity=1, narration=False)
    messages: list[str] = []
    c.message.connect(lambda text, _kind: messages.append(text))
    c.open(clip)
    rec = wait_for(lambda: [r for r in c.speech.records if r.source == "system"], timeout=10)
    assert rec[0].text == "Verbosity brief."
    assert any(m.startswith("Playing clip.mp4") and m.endswith("Verbosity brief.")
               for m in messages), messages
    c.change_verbosity(1)
    wait_for(lambda: any(r.text == "Verbosity standard." for r in c.speech.records), timeout=10)


def test_at_the_films_end_what_still_waits_is_left_out_with_the_reason(run, tmp_path):
    """A description that finds no room before the end is left out and listed, never said
    after the film has ended."""
    from models.schedule import AFTER_THE_END
    from models.types import Gap

    folder = tmp_path / "end"
    folder.mkdir()
    clip = media.make_clip(folder, seconds=4.0)
    media.write_vtt(folder, [(3.0, 3.5, "A long sentence at the very end of the film.", 1)],
                    name="clip.descriptions.vtt")
    c = run(verbosity=1, mode="duck")
    c.scanner.progress.disconnect()
    c.open(clip)
    c.narrator.gaps.update([Gap(0.0, 2.0)], [(0.0, 4.0)], end=4.0)  # dialogue from 2 s on
    wait_for(lambda: c.narrator.skips, timeout=15)
    assert [(s.desc.text, s.reason) for s in c.narrator.skips] == [
        ("A long sentence at the very end of the film.", AFTER_THE_END)]
    assert track_records(c) == []
