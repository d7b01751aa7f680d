"""The analysis worker (models/pipeline/worker.py) with small real stages of the perception
contract (a brightness meter, a slow one, one that fails) and the real stages' failures."""


from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pytest

from models.perception import Stage
from models.pipeline.worker import AnalysisWorker, Priority, Request
from models.types import Observation
from tests.people_media import frame_at
from tests.support import IMAGE, Brightness, Collector, Failing, Gate, Slow, Unavailable

FRAME = 1 / 25


def test_stages_follow_the_protocol() -> None:
    for stage in (Brightness(), Gate(), Slow(), Failing(), Unavailable()):
        assert isinstance(stage, Stage)


def test_describe_now_jumps_the_queue() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    try:
        tokens = [worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE)) for i in range(5)]
        assert gate.entered.wait(5)  # busy with the first
        now = worker.submit(Request(Priority.NOW, 42.0, IMAGE, kind="describe"))
        gap = worker.submit(Request(Priority.GAP, 21.0, IMAGE))
        assert worker.queued() == 6 and worker.queued(Priority.LOOKAHEAD) == 4
        gate.release.set()
        assert worker.wait_idle(5)
        assert got.times == [0.0, 42.0, 21.0, 1.0, 2.0, 3.0, 4.0]
        assert [r.request.token for r in got.results] == [tokens[0], now, gap, *tokens[1:]]
        assert got.results[1].request.kind == "describe"
        stats = worker.stats()
        assert stats.done == {Priority.NOW: 1, Priority.GAP: 1, Priority.LOOKAHEAD: 5}
        assert stats.stage_seconds["gate"] >= 0
    finally:
        gate.release.set()
        worker.stop()


def test_cancel_lookahead_drops_only_lookahead() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    try:
        for i in range(5):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert gate.entered.wait(5)
        worker.submit(Request(Priority.GAP, 10.0, IMAGE))
        assert worker.cancel_lookahead() == 4
        gate.release.set()
        assert worker.wait_idle(5)
        assert got.times == [0.0, 10.0]
    finally:
        gate.release.set()
        worker.stop()


def test_a_failing_stage_is_switched_off_and_the_others_go_on() -> None:
    got = Collector()
    failing = Failing()
    worker = AnalysisWorker([Brightness(), failing], got.result, on_problem=got.problem)
    try:
        for i in range(6):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert worker.wait_idle(5)
        assert failing.seen == 3
        assert [name for name, _ in got.problems] == ["failing"]
        assert "3 frames in a row" in got.problems[0][1]
        assert [len(r.observations) for r in got.results] == [1] * 6
        assert got.results[0].observations[0].data["brightness"] == pytest.approx(128 / 255)
        assert set(got.results[0].stage_seconds) == {"brightness", "failing"}
        assert set(got.results[5].stage_seconds) == {"brightness"}
        stats = worker.stats()
        assert stats.failures["failing"] == 3 and "failing" in stats.disabled
        assert worker.enabled == ("brightness",)
    finally:
        worker.stop()


def test_failures_must_come_in_a_row() -> None:
    got = Collector()
    failing = Failing(bad={0.0, 1.0, 3.0, 4.0})
    worker = AnalysisWorker([failing], got.result, on_problem=got.problem)
    try:
        for i in range(6):
            worker.submit(Request(Priority.LOOKAHEAD, float(i), IMAGE))
        assert worker.wait_idle(5)
        assert failing.seen == 6 and got.problems == []
        assert [len(r.observations) for r in got.results] == [0, 0, 1, 0, 0, 1]
    finally:
        worker.stop()


def _real_stage(name: str, monkeypatch: pytest.MonkeyPatch,
                fails: Callable[[int], bool]) -> Stage:
    """A real perception stage whose model raises on the calls (counted from 0) for which
    ``fails`` is true: rapidocr's reader for "text", mediapipe's graphs for "faces" and "pose"."""
    if name == "text":
        rapidocr = pytest.importorskip("rapidocr", reason="the perception extra is not installed")
        from models.perception.ocr import TextStage

        stage: Stage = TextStage(["rapidocr"])
        model, method = rapidocr.RapidOCR, "__call__"
    else:
        pytest.importorskip("mediapipe", reason="the perception extra is not installed")
        from mediapipe.python.solution_base import SolutionBase

        from models.perception.faces import FaceStage
        from models.perception.pose import PoseStage

        stage = FaceStage() if name == "faces" else PoseStage()
        model, method = SolutionBase, "process"
    assert stage.problem() == ""  # the models load before they are broken
    original = getattr(model, method)
    calls = itertools.count()

    def run_model(self: object, *args: object, **kwargs: object) -> object:
        if fails(next(calls)):
            raise RuntimeError("the model fell over")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(model, method, run_model)
    return stage


KIND = {"text": "text", "faces": "faces", "pose": "people"}


@pytest.mark.parametrize("name", ["text", "faces", "pose"])
def test_a_real_stage_whose_model_keeps_failing_is_switched_off_and_said(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _real_stage(name, monkeypatch, lambda call: True)
    got = Collector()
    worker = AnalysisWorker([stage, Brightness()], got.result, on_problem=got.problem)
    try:
        for i in range(5):
            worker.submit(Request(Priority.LOOKAHEAD, i * 0.5, frame_at(1.0 + i * 0.5)))
        assert worker.wait_idle(60)
        assert len(got.problems) == 1, got.problems
        assert got.problems[0][0] == stage.name
        assert "3 frames in a row" in got.problems[0][1]
        assert "the model fell over" in got.problems[0][1]
        assert worker.enabled == ("brightness",)
        assert worker.stats().failures[stage.name] == 3
        assert [[o.kind for o in r.observations] for r in got.results] == [["scene"]] * 5
    finally:
        worker.stop()


@pytest.mark.parametrize("name", ["text", "faces", "pose"])
def test_one_bad_frame_does_not_switch_a_real_stage_off(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _real_stage(name, monkeypatch, lambda call: call == 0)
    got = Collector()
    start = 1.0 if name == "text" else 5.0  # the title card, or the man in the car
    worker = AnalysisWorker([stage], got.result, on_problem=got.problem)
    try:
        for i in range(4):
            worker.submit(Request(Priority.LOOKAHEAD, i * 0.5, frame_at(start + i * 0.5)))
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    assert got.problems == [] and worker.stats().failures[stage.name] == 1
    kinds = [[o.kind for o in r.observations] for r in got.results]
    assert kinds[0] == [] and kinds[1] == [KIND[name]], kinds  # the next frame is seen
    seen = got.results[1].observations[0]
    if name == "text":
        assert any("Video Narrator demo" in line for line in seen.data["lines"]), seen
    else:
        assert seen.data["count"] == 1, seen


def test_describe_now_leaves_the_lookahead_as_it_was() -> None:
    """The look-ahead reads on while someone asks about a frame from elsewhere in the film: the
    stages look at that frame alone, so the look-ahead's next frame is compared with its own
    last one (no false cut) and the text it read is not read out again."""
    pytest.importorskip("rapidocr", reason="the perception extra is not installed")
    from models.perception.ocr import TextStage
    from models.perception.scene import SceneStage
    from models.perception.shots import ShotStage

    got = Collector()
    worker = AnalysisWorker([ShotStage(), SceneStage(), TextStage()], got.result,
                            on_problem=got.problem)

    def ask(request: Request) -> list[Observation]:
        worker.submit(request)
        assert worker.wait_idle(60)
        return list(got.results[-1].observations)

    # The worker only knows the times it is given: the demo's bicycle at a railing (under the
    # MAIN STREET sign) plays at 10 to 11 s of this film, and its title card at 9 s.
    try:
        first = ask(Request(Priority.LOOKAHEAD, 10.0, frame_at(21.0)))
        assert any("MAIN STREET" in o.text for o in first if o.kind == "text"), first
        ask(Request(Priority.LOOKAHEAD, 10.5, frame_at(21.5)))
        now = ask(Request(Priority.NOW, 9.0, frame_at(2.0), kind="now"))
        assert [o.kind for o in now] == ["scene", "text"], now
        assert "Video Narrator demo" in now[1].text and now[1].data["new"] is True
        assert now[0].data["motion"] == "still" and now[0].data["fade"] is None
        later = ask(Request(Priority.LOOKAHEAD, 11.0, frame_at(22.0)))
        assert [o.kind for o in later] == ["scene"], later  # no cut, no text read again
        assert later[0].data["motion"] == "still"
        # Asked about the sign while it is on screen: every line, known already.
        again = ask(Request(Priority.NOW, 10.8, frame_at(21.8), kind="now"))
        [text] = [o for o in again if o.kind == "text"]
        assert "MAIN STREET" in text.text and text.data["new"] is False
        last = ask(Request(Priority.LOOKAHEAD, 11.5, frame_at(22.5)))
        assert [o.kind for o in last] == ["scene"], last
    finally:
        worker.stop()
    assert got.problems == []


def test_a_stage_with_a_problem_is_off_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    got = Collector()
    with caplog.at_level(logging.WARNING, logger="models.pipeline.worker"):
        worker = AnalysisWorker([Unavailable(), Brightness()], got.result,
                                on_problem=got.problem)
        try:
            assert worker.wait_ready(5)
            assert worker.enabled == ("brightness",)
            worker.submit(Request(Priority.NOW, 1.0, IMAGE))
            assert worker.wait_idle(5)
        finally:
            worker.stop()
    assert got.problems == [("unavailable", Unavailable().problem())]
    assert len(got.results) == 1 and got.results[0].observations[0].kind == "scene"
    assert "pip install fancy-model" in caplog.text


def test_reset_stages_flushes_before_queued_work_and_stop_is_idempotent() -> None:
    got, gate = Collector(), Gate()
    worker = AnalysisWorker([gate], got.result)
    worker.submit(Request(Priority.LOOKAHEAD, 1.0, IMAGE))
    assert gate.entered.wait(5)
    worker.submit(Request(Priority.NOW, 2.0, IMAGE))
    token = worker.reset_stages()
    gate.release.set()
    assert worker.wait_idle(5)
    assert gate.calls == ["process 1.0", "flush", "reset", "process 2.0"]
    flush = got.results[1]
    assert flush.request.kind == "flush" and flush.request.token == token
    assert [o.kind for o in flush.observations] == ["held"]
    worker.stop()
    worker.stop()
    worker.submit(Request(Priority.NOW, 3.0, IMAGE))  # ignored, does not raise
    assert len(got.results) == 3


def test_a_seek_rewinds_stages_that_can_and_resets_the_others() -> None:
    class Rewinding(Gate):
        name = "rewinding"

        def rewind(self) -> None:
            self.calls.append("rewind")

    plain, rewinding = Gate(), Rewinding()
    plain.release.set()
    rewinding.release.set()
    got = Collector()
    with AnalysisWorker([plain, rewinding], got.result) as worker:
        worker.reset_stages(rewind=True)
        worker.reset_stages()
        assert worker.wait_idle(5)
    assert plain.calls == ["flush", "reset", "flush", "reset"]
    assert rewinding.calls == ["flush", "rewind", "flush", "reset"]
