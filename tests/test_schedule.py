"""Fitting descriptions into pauses: word budgets, speed-up, shortening, waiting, dropping."""

from __future__ import annotations

import math

import pytest

from models.schedule import (
    MAX_DEFER,
    GapMap,
    clauses,
    decide,
    shorten,
    word_budget,
)
from models.types import Gap


def test_word_budget_is_about_three_words_a_second():
    assert word_budget(2.0) == 6
    assert word_budget(0.2) == 0


def test_clauses_and_shortening_keep_the_most_important_part_first():
    text = "A woman in a red coat walks to the door, carrying a bag, while a dog barks."
    assert clauses(text)[0] == "A woman in a red coat walks to the door"
    assert shorten(text, 10) == "A woman in a red coat walks to the door."
    assert shorten(text, 13) == "A woman in a red coat walks to the door, carrying a bag."
    assert shorten(text, 3) == ""
    assert shorten("Short.", 3) == "Short."


@pytest.mark.parametrize("room,duration,short,mode,expected", [
    (3.0, 2.0, None, "duck", ("speak", 1.0, False)),
    (2.0, 2.3, None, "duck", ("speak", 1.15, False)),      # at most 20% faster
    (2.0, 3.0, 1.5, "duck", ("speak", 1.0, True)),         # shortened fits
    (2.0, 3.0, 2.3, "duck", ("speak", 1.15, True)),        # shortened and a little faster
    (0.0, 2.0, None, "duck", ("wait", 1.0, False)),        # in dialogue: wait for a pause
    (1.0, 3.0, None, "pause", ("pause", 1.0, False)),      # extended mode pauses the film
    (None, 5.0, None, "duck", ("wait", 1.0, False)),       # not analysed yet: unknown is
    (None, 5.0, None, "pause", ("wait", 1.0, False)),      # not room, so wait for it
    (math.inf, 9.0, None, "duck", ("speak", 1.0, False)),  # no sound track at all
])
def test_decide(room, duration, short, mode, expected):
    d = decide(late=0.0, waited=0.0, room=room, duration=duration, short_duration=short,
               mode=mode)
    assert (d.action, round(d.speed, 3), d.short) == expected


def test_stale_and_waited_too_long_are_dropped():
    assert decide(1.5, 1.5, 5.0, 1.0, None, "duck").reason == "stale"
    assert decide(0.0, MAX_DEFER + 0.1, 0.0, 1.0, None, "duck").action == "drop"


def test_gap_map_room():
    m = GapMap()
    assert m.room_at(1.0) is None  # nothing analysed
    m.update([Gap(0.0, 2.0), Gap(5.0, 9.0)], [(0.0, 9.0)])
    assert m.room_at(1.5) == pytest.approx(0.5)
    assert m.room_at(3.0) == 0.0
    assert m.room_at(6.0) == pytest.approx(3.0)
    assert m.room_at(9.5) is None
    assert m.next_gap(2.5) == Gap(5.0, 9.0)
    m.update([], [(0.0, 9.0)], has_audio=False)
    assert m.room_at(100.0) == math.inf


def test_place_waits_for_pauses_and_never_overlaps():
    m = GapMap()
    m.update([Gap(0.0, 2.0), Gap(5.0, 9.0), Gap(12.0, 13.0)], [(0.0, 20.0)])
    from models.schedule import place

    out = place(starts=[0.5, 3.0, 5.5, 11.5], durations=[1.0, 1.5, 1.0, 4.0],
                short_durations=[None, None, None, 2.0], gaps=m)
    assert [(p.placed, round(p.start, 2)) for p in out[:3]] == [(True, 0.5), (True, 5.0),
                                                                (True, 6.5)]
    assert out[3].placed is False and out[3].reason == "no room"
    for a, b in zip(out, out[1:], strict=False):
        if a.placed and b.placed:
            assert a.start + a.duration <= b.start + 1e-9


def test_no_room_at_or_after_the_films_end():
    m = GapMap()
    m.update([Gap(0.0, 30.0)], [(0.0, 20.0)], end=20.0)  # the last pause runs to the end
    assert m.room_at(18.0) == pytest.approx(2.0)
    assert m.room_at(20.0) == 0.0 and m.room_at(25.0) == 0.0
    m.update([], [(0.0, 20.0)], has_audio=False, end=20.0)  # no sound: room up to the end only
    assert m.room_at(19.5) == pytest.approx(0.5)
    assert m.room_at(20.5) == 0.0


def test_place_never_past_the_films_end():
    """On a 20 s film, descriptions at 18 to 19.5 s used to be placed at 20.0, 25.6, 28.4 s."""
    from models.schedule import AFTER_THE_END, place

    m = GapMap()
    m.update([], [(0.0, 20.0)], has_audio=False, end=20.0)
    out = place(starts=[17.0, 18.0, 19.0, 19.5, 21.0], durations=[1.5, 2.6, 2.8, 0.3, 1.0],
                short_durations=[None] * 5, gaps=m)
    for p in out:
        if p.placed:
            assert p.start + p.duration <= 20.0 + 1e-9
    assert [p.placed for p in out] == [True, False, False, True, False]
    assert out[4].reason == AFTER_THE_END


def test_unknown_dialogue_is_waited_for_then_left_out_or_paused_for():
    from models.schedule import NOT_KNOWN

    d = decide(0.0, MAX_DEFER + 0.1, None, 1.0, None, "duck")
    assert (d.action, d.reason) == ("drop", NOT_KNOWN)
    assert decide(0.0, MAX_DEFER + 0.1, None, 1.0, None, "pause").action == "pause"


def test_when_detection_failed_what_it_missed_is_room():
    m = GapMap()
    m.update([Gap(0.0, 2.0)], [(0.0, 3.0)])
    assert m.room_at(5.0) is None
    m.detection_failed = True
    assert m.room_at(5.0) == math.inf
    assert m.room_at(2.5) == 0.0  # what it did find still counts


def test_automatic_mode_pauses_only_for_important_ones_after_their_wait():
    from models.schedule import AUTO_WAIT, important

    assert important(2, 2) and important(1, 1) and not important(1, 2)
    d = decide(0.0, AUTO_WAIT - 0.1, 0.0, 2.0, None, "auto", important=True)
    assert d.action == "wait"  # first, a pause in the dialogue may still come
    d = decide(0.0, AUTO_WAIT, 0.0, 2.0, None, "auto", important=True)
    assert (d.action, d.reason) == ("pause", "important")
    assert decide(0.0, AUTO_WAIT, 0.0, 2.0, None, "auto", important=True,
                  may_pause=False).action == "wait"  # paused often enough this minute
    assert decide(0.0, MAX_DEFER + 0.1, 0.0, 2.0, None, "auto").action == "drop"  # minor
    assert decide(0.0, 0.0, 3.0, 2.0, None, "auto", important=True).action == "speak"


def test_place_holds_the_film_for_important_ones_in_automatic_mode():
    from models.schedule import AUTO_WAIT, place

    m = GapMap()
    m.update([], [(0.0, 30.0)], end=30.0)  # dialogue all through
    out = place(starts=[1.0, 2.0, 3.0], durations=[2.0, 2.0, 2.0], short_durations=[None] * 3,
                gaps=m, mode="auto", important=[True, False, True], pauses_a_minute=1)
    assert (out[0].placed, out[0].paused) == (True, True)
    assert out[0].start == pytest.approx(1.0 + AUTO_WAIT, abs=0.06)  # tried every 50 ms
    assert out[1].placed is False  # minor: left out
    assert out[2].placed is False  # important, but the film was held once this minute
    held = place(starts=[1.0], durations=[2.0], short_durations=[None], gaps=m, mode="pause")
    assert (held[0].paused, held[0].start) == (True, 1.0)  # extended mode: at once
