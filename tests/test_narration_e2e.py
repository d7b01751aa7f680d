"""End to end: a film with known dialogue, played by real libmpv, with real dialogue detection
(Silero VAD) and real espeak-ng narration. The recorder of what was spoken and when must show:
no narration over dialogue in inline mode, starts within 0.1 s of the plan, the film ducked
while the narrator speaks, pause and resume in extended mode, and nothing stale after a seek.
"""

from __future__ import annotations

import pytest

from player.media.playback import gain_to_mpv_volume
from tests import media
from tests.media import DENSE, LINES, Film, make_film
from tests.support import wait_for

RATE = 16000










@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Film:
    folder = tmp_path_factory.mktemp("e2e")
    f = make_film(folder, LINES, duration=22.0)
    return f


@pytest.fixture
def run(make_controller):
    """A player speaking description tracks; inline ("duck") mode unless a test says."""
    return lambda **settings: make_controller(**{"live_analysis": False, "mode": "duck",
                                                 **settings})


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def test_inline_narration_fits_the_pauses_and_ducks_the_film(run, film, tmp_path):
    first_end = film.speech[0][1]
    cues = [
        (1.0, 3.0, "Two people stand in a kitchen.", 1),       # during dialogue: must wait
        (first_end + 2.2, 0, "The man looks at his watch.", 1),  # in the long pause
        (14.0, 0, "She turns away and leaves the room, slamming the door behind her.", 1),
    ]
    vtt = media.write_vtt(tmp_path, [(s, (e or s + 2), text, lvl) for s, e, text, lvl in cues],
                          name="film.descriptions.vtt")
    c = run(duck_db=-11.0, volume=80)
    duck_volumes = []
    c.speech.started.connect(lambda _r: duck_volumes.append(None))
    c.open(film.path, vtt)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 21.0, timeout=40)
    recs = [r for r in c.speech.records if r.source == "track"]
    said = [r.text for r in recs]
    assert said[0] == "Two people stand in a kitchen."
    assert "The man looks at his watch." in said
    for rec in recs:
        assert rec.media_end is not None
        span = (rec.media_start, rec.media_end)
        for line in film.speech:
            assert overlap(span, line) < 0.05, f"{rec.text!r} at {span} talks over {line}"
        assert abs(rec.media_start - rec.planned) <= 0.1, (rec.text, rec.media_start, rec.planned)
    # The first one waited for the end of the first line (plus the 0.15 s padding).
    assert recs[0].media_start == pytest.approx(first_end + 0.15, abs=0.25)
    # Skips are recorded with a reason; nothing is said twice.
    assert len(said) == len(set(said))
    assert all(s.reason for s in c.narrator.skips)


def test_ducking_follows_speech_with_short_fades(run, film, tmp_path):
    import time

    from PySide6.QtCore import QTimer

    vtt = media.write_vtt(tmp_path, [(4.0, 6.0, "The man looks at his watch.", 1)],
                          name="film.descriptions.vtt")
    c = run(duck_db=-11.0, volume=80)
    volumes: list[tuple[float, float]] = []
    timer = QTimer()
    timer.timeout.connect(lambda: volumes.append((time.monotonic(), c.playback.mpv.volume)))
    timer.start(10)
    c.open(film.path, vtt)
    rec = wait_for(lambda: next((r for r in c.speech.records if r.wall_end), None), timeout=20)
    wait_for(lambda: time.monotonic() > rec.wall_end + 0.4, timeout=2)
    timer.stop()
    ducked = 80 * gain_to_mpv_volume(-11.0)
    during = [v for t, v in volumes if rec.wall_start + 0.2 < t < rec.wall_end - 0.05]
    before = [v for t, v in volumes if t < rec.wall_start - 0.3]
    after = [v for t, v in volumes if t > rec.wall_end + 0.3]
    assert during and all(abs(v - ducked) < 0.5 for v in during), during
    assert before and all(abs(v - 80) < 0.5 for v in before)
    assert after and all(abs(v - 80) < 0.5 for v in after)
    # The fades are short ramps, not jumps: some values lie between the two levels.
    assert any(ducked + 1 < v < 79 for _t, v in volumes)


def test_extended_mode_pauses_the_film_and_resumes_on_speech_end(run, film, tmp_path):
    # A long description in the 1 s pause before the third line: it cannot fit.
    long_text = ("The man sets his bag on the table, takes off his coat, and sits down "
                 "slowly while she watches him from the doorway.")
    start = film.speech[1][1] + 0.2
    vtt = media.write_vtt(tmp_path, [(start, start + 1, long_text, 1)],
                          name="film.descriptions.vtt")
    c = run(mode="pause")
    paused_at_start = []
    c.speech.started.connect(lambda _r: paused_at_start.append(c.playback.mpv.pause))
    c.open(film.path, vtt)
    rec = wait_for(lambda: next((r for r in c.speech.records if r.wall_end), None), timeout=30)
    assert rec.text == long_text and rec.mode == "pause"
    assert paused_at_start == [True]
    assert rec.media_end == pytest.approx(rec.media_start, abs=0.1)  # the film stood still
    wait_for(lambda: c.playback.mpv.pause is False, timeout=2)
    t = c.playback.mpv.time_pos
    wait_for(lambda: c.playback.mpv.time_pos > t + 0.3, timeout=3)


def test_inline_mode_drops_what_cannot_fit(run, film, tmp_path):
    long_text = ("The man sets his bag on the table, takes off his coat, and sits down "
                 "slowly while she watches him from the doorway.")
    start = film.speech[1][1] + 0.2  # a short pause, then dialogue until 13 s + line
    vtt = media.write_vtt(tmp_path, [(start, start + 1, long_text, 1)],
                          name="film.descriptions.vtt")
    c = run(mode="duck")
    c.open(film.path, vtt)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > film.speech[2][1] + 0.5, timeout=30)
    for rec in c.speech.records:
        for line in film.speech:
            assert overlap((rec.media_start, rec.media_end or rec.media_start), line) < 0.05
    spoken = [r.text for r in c.speech.records]
    short = "The man sets his bag on the table."
    # Either the shortened sentence found room, or nothing was said and the skip says why.
    if spoken:
        assert spoken == [short]
    else:
        assert [s.reason for s in c.narrator.skips] == ["no room"]


def test_no_sound_track_means_every_moment_is_free(run, tmp_path):
    clip = media.make_clip(tmp_path, name="silent.mp4", seconds=6.0, audio=False)
    media.write_vtt(tmp_path, [(1.0, 2.0, "A test card.", 1)], name="silent.descriptions.vtt")
    c = run()
    c.open(clip)
    rec = wait_for(lambda: next(iter(c.speech.records), None), timeout=10)
    assert abs(rec.media_start - 1.0) <= 0.1
    assert c.narrator.gaps.has_audio is False




@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Film:
    """Two people talking almost without a pause (the longest pause is under a second)."""
    return make_film(tmp_path_factory.mktemp("dense"), DENSE, duration=18.0)


def test_automatic_mode_pauses_briefly_for_what_matters(run, dense, tmp_path):
    """A dialogue-dense scene: inline mode says nothing; automatic mode pauses the film
    briefly for the important descriptions (a describer's essential cue, text on screen) and
    drops the minor ones, never speaking over the dialogue."""
    vtt = media.write_vtt(tmp_path, [
        (1.0, 2.0, "Two people sit at a restaurant table.", 1),   # essential: level 1
        (5.0, 6.0, "Candles flicker on the table between them.", 3),  # minor: detailed only
        (9.0, 10.0, "He slides an envelope across the table.", 1),
    ], name="film.descriptions.vtt")
    c = run(mode="auto", verbosity=3)
    c.open(dense.path, vtt)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 15.0, timeout=60)
    recs = [r for r in c.speech.records if r.source == "track"]
    said = [r.text for r in recs]
    assert said == ["Two people sit at a restaurant table.",
                    "He slides an envelope across the table."], said
    for rec in recs:
        assert rec.mode == "pause"
        assert rec.media_end == pytest.approx(rec.media_start, abs=0.1)  # the film stood still
    assert [s.desc.text for s in c.narrator.skips] == ["Candles flicker on the table between "
                                                       "them."]


def test_automatic_mode_pauses_no_more_often_than_the_limit(run, dense, tmp_path):
    vtt = media.write_vtt(tmp_path, [
        (1.0, 2.0, "Two people sit at a restaurant table.", 1),
        (9.0, 10.0, "He slides an envelope across the table.", 1),
    ], name="film.descriptions.vtt")
    c = run(mode="auto", auto_pauses=1)
    c.open(dense.path, vtt)
    wait_for(lambda: (c.playback.mpv.time_pos or 0) > 15.0, timeout=60)
    said = [r.text for r in c.speech.records if r.source == "track"]
    assert said == ["Two people sit at a restaurant table."]
    assert [s.reason for s in c.narrator.skips] == ["no room"]
