"""The feeder (models/pipeline/feeder.py): the look-ahead hands a film's frames to a worker."""


from __future__ import annotations

import time
from pathlib import Path

import pytest

from models.pipeline.feeder import LookAhead
from models.pipeline.store import ObservationStore
from models.pipeline.worker import AnalysisWorker, Priority, Result
from tests.support import Brightness, Collector, Slow, wait_until

FRAME = 1 / 25


def test_lookahead_finds_the_light_at_the_right_time(black_white: Path) -> None:
    store = ObservationStore()
    got = Collector()

    def on_result(result: Result) -> None:
        got.result(result)
        if result.request.kind == "frame":
            store.record(result.request.t, result.observations, 0.5)

    worker = AnalysisWorker([Brightness(), Slow(0.02)], on_result)
    look = LookAhead(black_white, worker, fps=2.0, max_queued=2)
    try:
        look.start()
        wait_until(lambda: look.finished and worker.wait_idle(0))
        scenes = store.between(0, 10, kinds=["scene"])
        assert [o.t for o in scenes] == pytest.approx([0.0, 0.52, 1.0, 1.52, 2.0, 2.52, 3.0,
                                                       3.52], abs=1e-6)
        for obs in scenes:
            assert obs.data["brightness"] < 0.1 if obs.t < 2 else obs.data["brightness"] > 0.9
        ((start, end),) = store.covered
        assert start == 0.0 and end == pytest.approx(4.02)
        assert store.latest(1.9, "scene").data["brightness"] < 0.1
        assert store.latest(2.0, "scene").data["brightness"] > 0.9
        assert worker.stats().done[Priority.LOOKAHEAD] == 8

        got.results.clear()
        look.seek(2.5)
        wait_until(lambda: look.finished and worker.wait_idle(0))
        kinds = [r.request.kind for r in got.results]
        assert kinds[0] == "flush"
        assert [r.request.t for r in got.results[1:]] == pytest.approx([2.52, 3.0, 3.52])
    finally:
        look.stop()
        worker.stop()


def test_lookahead_seek_while_running_keeps_the_backlog_short(small_clip: Path) -> None:
    got = Collector()
    worker = AnalysisWorker([Slow(0.03)], got.result)
    look = LookAhead(small_clip, worker, fps=5.0, max_queued=2)
    most = 0
    try:
        look.start()
        wait_until(lambda: len(got.results) >= 3)
        for _ in range(10):
            most = max(most, worker.queued(Priority.LOOKAHEAD))
            time.sleep(0.01)
        look.seek(8.0)
        wait_until(lambda: look.finished and worker.wait_idle(0), timeout=20)
    finally:
        look.stop()
        worker.stop()
    assert most <= 2
    kinds = [r.request.kind for r in got.results]
    after = [r.request.t for r in got.results[kinds.index("flush") + 1:]]
    assert after and min(after) >= 8.0 and after[0] == pytest.approx(8.0, abs=FRAME + 1e-6)
    assert len(after) == 10


def test_a_feeder_whose_thread_failed_is_over_so_prepare_never_waits_for_it(small_clip,
                                                                           monkeypatch) -> None:
    """narrate prepare waits until the film is over; a feeding thread that died (a bug, a
    library's crash) must count as over, or prepare would wait for ever."""
    got = Collector()
    worker = AnalysisWorker([Slow(0.0)], got.result)
    look = LookAhead(small_clip, worker, fps=2.0)

    def broken(*_args, **_kwargs):
        raise RuntimeError("the decoder broke")

    monkeypatch.setattr(look.reader, "get", broken)
    try:
        look.start()
        wait_until(lambda: look.over, timeout=10)
        assert not look.finished  # not every frame was handed over
    finally:
        look.stop()
        worker.stop()
