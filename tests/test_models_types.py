"""Descriptions, gaps and timelines: validation and the queries the narrator makes."""

from __future__ import annotations

import math

import pytest

from models import Description, Gap, Observation, Timeline


def cue(start: float, level: int = 2, text: str = "", **kw: object) -> Description:
    return Description(start=start, text=text or f"cue at {start}", level=level, **kw)


@pytest.fixture
def timeline() -> Timeline:
    # given out of order on purpose: the timeline sorts them
    cues = [cue(10.0, 3), cue(2.0, 1), cue(5.0, 2), cue(7.5, 1), cue(12.0, 2)]
    return Timeline(cues, [Gap(8.0, 9.5), Gap(0.0, 1.5)])


def starts(cues: tuple[Description, ...]) -> list[float]:
    return [c.start for c in cues]


def test_timeline_accepts_lists_and_sorts(timeline: Timeline) -> None:
    assert isinstance(timeline.descriptions, tuple)
    assert starts(timeline.descriptions) == [2.0, 5.0, 7.5, 10.0, 12.0]
    assert [g.start for g in timeline.gaps] == [0.0, 8.0]
    assert len(timeline) == 5
    assert len(Timeline([], [])) == 0 and len(Timeline()) == 0


def test_for_level(timeline: Timeline) -> None:
    assert starts(timeline.for_level(1)) == [2.0, 7.5]
    assert starts(timeline.for_level(2)) == [2.0, 5.0, 7.5, 12.0]
    assert starts(timeline.for_level(3)) == [2.0, 5.0, 7.5, 10.0, 12.0]
    assert timeline.for_level(0) == ()


def test_due_is_open_at_start_and_closed_at_end(timeline: Timeline) -> None:
    assert starts(timeline.due(2.0, 7.5, 3)) == [5.0, 7.5]
    assert starts(timeline.due(1.9, 7.4, 1)) == [2.0]
    assert starts(timeline.due(0.0, 100.0, 2)) == [2.0, 5.0, 7.5, 12.0]
    assert timeline.due(12.0, 20.0, 3) == ()


def test_next_after_and_latest_before(timeline: Timeline) -> None:
    assert timeline.next_after(5.0, 3).start == 7.5
    assert timeline.next_after(7.5, 2).start == 12.0
    assert timeline.next_after(7.5, 1) is None
    assert timeline.latest_before(7.5, 2).start == 7.5
    assert timeline.latest_before(11.0, 2).start == 7.5
    assert timeline.latest_before(11.0, 3).start == 10.0
    assert timeline.latest_before(1.9, 3) is None


def test_gap_at(timeline: Timeline) -> None:
    assert timeline.gap_at(8.0) == Gap(8.0, 9.5)
    assert timeline.gap_at(9.0).duration == pytest.approx(1.5)
    assert timeline.gap_at(9.5) is None
    assert timeline.gap_at(5.0) is None
    assert timeline.gap_at(0.0) == Gap(0.0, 1.5)


def test_description_defaults_and_words() -> None:
    d = Description(start=1.5, text="  Two people  stand in a park. ")
    assert (d.level, d.priority, d.source, d.end, d.ident) == (2, 1, "track", None, "")
    assert d.words == 6


@pytest.mark.parametrize("kwargs, fragment", [
    ({"start": -1.0, "text": "x"}, "zero seconds or later"),
    ({"start": math.nan, "text": "x"}, "zero seconds or later"),
    ({"start": math.inf, "text": "x"}, "zero seconds or later"),
    ({"start": 0.0, "text": "   "}, "empty"),
    ({"start": 0.0, "text": "x", "level": 0}, "level"),
    ({"start": 0.0, "text": "x", "level": 4}, "level"),
    ({"start": 5.0, "text": "x", "end": 4.0}, "before it starts"),
])
def test_description_validation(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Description(**kwargs)


def test_description_end_equal_to_start_is_allowed() -> None:
    assert Description(start=3.0, text="x", end=3.0).end == 3.0


def test_gap_validation_and_contains() -> None:
    with pytest.raises(ValueError):
        Gap(2.0, 1.0)
    gap = Gap(1.0, 2.0)
    assert gap.contains(1.0) and gap.contains(1.99) and not gap.contains(2.0)


def test_values_are_frozen() -> None:
    d = cue(1.0)
    with pytest.raises(AttributeError):
        d.start = 2.0  # type: ignore[misc]
    obs = Observation(t=1.0, kind="scene", text="A cut.", data={"score": 0.9})
    assert obs == Observation(t=1.0, kind="scene", text="A cut.")
    assert obs.confidence == 1.0


def test_timelines_compare_by_content() -> None:
    assert Timeline([cue(2.0), cue(1.0)]) == Timeline((cue(1.0), cue(2.0)))
    assert Timeline([cue(1.0)]) != Timeline([cue(1.5)])
