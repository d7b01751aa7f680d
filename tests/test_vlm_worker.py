"""The vision-language model in the analysis worker: one thread owns it with the detectors,
questions are served by priority, look-ahead questions are batched, describe-now answers stream
sentence by sentence; and the planner that picks which look-ahead frames the model describes."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models.pipeline.questions import MAX_ROOM, UNKNOWN_ROOM, GapPlanner
from models.pipeline.worker import NO_FRAME, VLM, AnalysisWorker, Priority, Request, Result
from models.schedule import GapMap
from models.types import Gap, Observation
from models.vlm import VlmRequest
from tests.scripted_vlm import ScriptedVlm
from tests.support import wait_until

IMAGE = np.full((32, 48, 3), 120, dtype=np.uint8)


class Slow:
    """A real stage of the perception protocol that takes a while and notes each frame's time."""

    name = "slow"

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.seen: list[float] = []

    def problem(self) -> str:
        return ""

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        time.sleep(self.seconds)
        self.seen.append(t)
        return [Observation(t, "slow", "done")]

    def flush(self) -> list[Observation]:
        return []

    def reset(self) -> None:
        self.seen.clear()


def question(t: float, priority: Priority = Priority.GAP, stream: bool = False,
             prompt: str = "Describe this frame.", max_words: int | None = None) -> Request:
    return Request(priority, t, NO_FRAME, kind=VLM,
                   vlm=VlmRequest(IMAGE, prompt, max_words=max_words), stream=stream)


class Collector:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, result: Result) -> None:
        with self.lock:
            self.results.append(result)
            self.times.append(time.monotonic())

    def texts(self) -> list[str]:
        return [o.text for r in self.results for o in r.observations if o.kind == VLM]


def attached(worker: AnalysisWorker, engine: ScriptedVlm) -> None:
    worker.attach_vlm(engine)
    wait_until(lambda: worker.has_vlm)


def test_the_first_sentence_arrives_before_the_model_has_finished() -> None:
    gate = threading.Event()
    engine = ScriptedVlm(["A man opens ", "the door. ", "He steps ", "outside."], gate,
                         release_after=3)
    got = Collector()
    with AnalysisWorker([], on_result=got) as worker:
        attached(worker, engine)
        worker.submit(question(2.0, Priority.NOW, stream=True))
        wait_until(lambda: got.results)
        # The model is still held before its last piece: the first sentence is already out.
        assert got.texts() == ["A man opens the door."]
        assert not got.results[0].final and engine.finished_streams == 0
        gate.set()
        wait_until(lambda: any(r.final for r in got.results))
    partial = [r for r in got.results if not r.final]
    final = [r for r in got.results if r.final]
    assert [o.text for r in partial for o in r.observations] == ["A man opens the door.",
                                                                  "He steps outside."]
    assert len(final) == 1 and final[0].observations[0].text == \
        "A man opens the door. He steps outside."
    assert all(r.request.t == 2.0 for r in got.results)


def test_a_streamed_answer_is_cleaned_and_kept_to_its_word_budget() -> None:
    engine = ScriptedVlm(["The image shows a red car. ", "It drives along a wide road past "
                          "tall trees and houses. ", "A dog follows."])
    got = Collector()
    with AnalysisWorker([], on_result=got) as worker:
        attached(worker, engine)
        worker.submit(question(1.0, Priority.NOW, stream=True, max_words=8))
        wait_until(lambda: any(r.final for r in got.results))
    sentences = [o.text for r in got.results if not r.final for o in r.observations]
    assert sentences[0] == "A red car."
    assert sum(len(s.split()) for s in sentences) <= 8
    assert "A dog follows." not in sentences


def test_lookahead_questions_are_answered_in_batches_after_the_urgent_ones() -> None:
    engine = ScriptedVlm(["A street at night."])
    stage = Slow(0.3)
    got = Collector()
    with AnalysisWorker([stage], on_result=got, vlm_batch=4) as worker:
        attached(worker, engine)
        worker.submit(Request(Priority.LOOKAHEAD, 0.0, IMAGE))  # keeps the worker busy
        wait_until(lambda: worker.queued() == 0)
        for t in (1.0, 2.0, 3.0, 4.0, 5.0):
            worker.submit(question(t))
        worker.submit(Request(Priority.LOOKAHEAD, 6.0, IMAGE))
        worker.submit(question(7.0, Priority.NOW, stream=True))
        assert worker.wait_idle(20)
    order = [(r.request.kind, r.request.t) for r in got.results if r.final]
    assert order[0] == ("frame", 0.0)
    assert order[1] == ("vlm", 7.0)  # describe now first
    assert [t for kind, t in order[2:7]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert order[7] == ("frame", 6.0)  # look-ahead detectors last
    assert engine.batches == [4, 1]
    assert got.texts().count("A street at night.") == 7  # 5 batched + streamed sentence + final


def test_batch_size_one_answers_one_at_a_time() -> None:
    engine = ScriptedVlm(["A kitchen."])
    got = Collector()
    with AnalysisWorker([Slow(0.3)], on_result=got, vlm_batch=1) as worker:
        attached(worker, engine)
        worker.submit(Request(Priority.LOOKAHEAD, 0.0, IMAGE))
        wait_until(lambda: worker.queued() == 0)
        for t in (1.0, 2.0, 3.0):
            worker.submit(question(t))
        assert worker.wait_idle(20)
    assert engine.batches == [1, 1, 1]


def test_the_model_is_used_and_closed_on_the_worker_thread() -> None:
    first, second = ScriptedVlm(["One."]), ScriptedVlm(["Two."])
    got = Collector()
    worker = AnalysisWorker([], on_result=got, device="cpu")
    attached(worker, first)
    worker.submit(question(1.0))
    assert worker.wait_idle(10)
    worker.attach_vlm(second)
    worker.submit(question(2.0))
    assert worker.wait_idle(10)
    assert first.closed.is_set() and not second.closed.is_set()
    assert first.threads == {"analysis-cpu"}
    assert got.texts() == ["One.", "Two."]
    worker.stop()
    assert second.closed.is_set()


def test_without_a_model_questions_get_empty_answers() -> None:
    got = Collector()
    with AnalysisWorker([], on_result=got) as worker:
        worker.submit(question(1.0))
        assert worker.wait_idle(10)
    assert len(got.results) == 1 and got.results[0].observations == ()


def test_a_failing_model_is_reported_then_switched_off() -> None:
    engine = ScriptedVlm([], fail=RuntimeError("CUDA error: device-side assert"))
    got = Collector()
    problems: list[tuple[str, str]] = []
    with AnalysisWorker([], on_result=got, on_problem=lambda n, m: problems.append((n, m)),
                        vlm_batch=1) as worker:
        attached(worker, engine)
        for t in (1.0, 2.0, 3.0, 4.0):
            worker.submit(question(t))
        assert worker.wait_idle(10)
        assert not worker.has_vlm
    assert len(got.results) == 4 and all(not r.observations for r in got.results)
    assert "device-side assert" in got.results[0].notes[0]
    assert engine.closed.is_set()
    assert problems and problems[0][0] == "vision-language model"
    assert "3 times in a row" in problems[0][1]


def test_notes_from_the_model_reach_the_results() -> None:
    engine = ScriptedVlm(["A beach."])
    engine.notes.append("The GPU ran out of memory; the model now runs on the CPU.")
    got = Collector()
    with AnalysisWorker([], on_result=got) as worker:
        attached(worker, engine)
        worker.submit(question(1.0))
        worker.submit(question(2.0))
        assert worker.wait_idle(10)
    notes = [n for r in got.results for n in r.notes]
    assert notes == ["The GPU ran out of memory; the model now runs on the CPU."]


def test_cancel_vlm_drops_only_lookahead_questions() -> None:
    engine = ScriptedVlm(["A hall."])
    got = Collector()
    with AnalysisWorker([Slow(0.4)], on_result=got) as worker:
        attached(worker, engine)
        worker.submit(Request(Priority.LOOKAHEAD, 0.0, IMAGE))
        wait_until(lambda: worker.queued() == 0)
        for t in (1.0, 2.0):
            worker.submit(question(t))
        worker.submit(question(3.0, Priority.NOW, stream=True))
        assert worker.cancel_vlm(Priority.GAP) == 2
        assert worker.wait_idle(10)
    assert {r.request.t for r in got.results if r.request.kind == VLM} == {3.0}


# -- the planner -----------------------------------------------------------------------------

def planner_for(gaps: list[Gap], covered: float = 100.0, has_audio: bool = True,
                **options: float) -> GapPlanner:
    m = GapMap()
    m.update(gaps, [(0.0, covered)], has_audio=has_audio)
    return GapPlanner(m.room_at, m.gap_at, m.next_gap, **options)


def test_one_question_per_pause_with_its_room() -> None:
    p = planner_for([Gap(2.0, 5.0), Gap(10.0, 30.0)], max_outstanding=10)
    first = p.consider(2.5)
    assert first is not None and first.start == 2.5 and first.seconds == pytest.approx(2.5)
    assert p.consider(3.0) is None  # the same pause
    assert p.consider(6.0) is None  # dialogue, and the next pause is 4 s away
    ahead = p.consider(7.5)  # dialogue, but a pause starts in 2.5 s: describe for it
    assert ahead is not None and ahead.start == 10.0 and ahead.t == 7.5
    assert ahead.seconds == MAX_ROOM  # a 20 s pause is filled a piece at a time
    assert p.consider(11.0) is None  # already asked for this pause
    later = p.consider(16.5)  # a long pause: again after min_interval
    assert later is not None and later.start == 16.5


def test_short_pauses_are_left_alone() -> None:
    p = planner_for([Gap(2.0, 3.0)], max_outstanding=10)
    assert p.consider(2.2) is None
    assert p.consider(0.5) is None


def test_shot_changes_ask_again_in_a_long_pause() -> None:
    p = planner_for([Gap(0.0, 60.0)], max_outstanding=10)
    assert p.consider(1.0) is not None
    assert p.consider(2.0, shot_change=True) is None  # too soon even for a new shot
    assert p.consider(3.5, shot_change=True) is not None
    assert p.consider(5.0) is None


def test_outstanding_questions_are_bounded_and_reset_after_a_seek() -> None:
    p = planner_for([Gap(0.0, 100.0)], max_outstanding=1)
    assert p.consider(1.0) is not None
    assert p.consider(20.0) is None  # the first answer has not come back
    p.answered()
    assert p.consider(20.0) is not None
    p.reset()
    assert p.outstanding == 0
    assert p.consider(21.0) is not None  # the pause is new again after a seek


def test_unknown_sound_and_silent_films() -> None:
    p = planner_for([], covered=0.0, max_outstanding=10)
    q = p.consider(50.0)
    assert q is not None and q.seconds == UNKNOWN_ROOM
    silent = planner_for([], has_audio=False, max_outstanding=10)
    q = silent.consider(3.0)
    assert q is not None and q.seconds == MAX_ROOM and math.isfinite(q.seconds)
    assert silent.consider(5.0) is None
    assert silent.consider(9.5) is not None


# -- the real transformers code on a tiny random-weight model -----------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny")


def test_a_real_model_streams_and_batches_in_the_worker(tiny_model: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from models.vlm.hf import HfVlm

    engine = HfVlm(tiny_model, device="cpu")
    engine.load()
    got = Collector()
    with AnalysisWorker([], on_result=got, vlm_batch=2) as worker:
        worker.attach_vlm(engine)
        worker.submit(question(1.0, Priority.NOW, stream=True))
        worker.submit(question(2.0))
        worker.submit(question(3.0, prompt="What is in this picture?"))
        assert worker.wait_idle(120)
    finals = {r.request.t: r for r in got.results if r.final}
    assert set(finals) == {1.0, 2.0, 3.0}
    alone = engine.describe(VlmRequest(IMAGE, "Describe this frame."))
    assert [o.text for o in finals[2.0].observations] == ([alone] if alone else [])
    assert all(r.seconds > 0 for r in finals.values())


class WrongCount(ScriptedVlm):
    """A broken engine: its batch answers have the wrong length (a bug in an engine)."""

    def describe_batch(self, requests):
        super().describe_batch(requests)
        return []


class CloseFails(ScriptedVlm):
    def close(self) -> None:
        super().close()
        raise RuntimeError("the driver is gone")


def test_a_bug_in_answering_does_not_end_the_worker() -> None:
    """An engine that breaks the contract: the request still gets its (empty) result, and the
    worker goes on serving the detectors."""
    got = Collector()
    with AnalysisWorker([Slow(0.0)], on_result=got) as worker:
        attached(worker, WrongCount(["A street."]))
        token = worker.submit(question(1.0))
        worker.submit(Request(Priority.LOOKAHEAD, 2.0, IMAGE))
        assert worker.wait_idle(10)
        by_token = {r.request.token: r for r in got.results}
        assert by_token[token].observations == ()
        assert any(r.request.kind == "frame" and r.observations for r in got.results)


def test_a_model_that_fails_to_close_is_still_switched_off() -> None:
    problems = []
    got = Collector()
    engine = CloseFails(["x"], fail=RuntimeError("out of memory"))
    with AnalysisWorker([Slow(0.0)], on_result=got,
                        on_problem=lambda name, text: problems.append(name)) as worker:
        attached(worker, engine)
        for i in range(3):
            worker.submit(question(float(i)))
            assert worker.wait_idle(10)
        assert engine.closed.is_set() and not worker.has_vlm
        assert problems == ["vision-language model"]
        worker.submit(Request(Priority.LOOKAHEAD, 5.0, IMAGE))  # the detectors still work
        assert worker.wait_idle(10)
        assert got.results[-1].observations[0].text == "done"


def test_a_cancelled_stream_stops_writing() -> None:
    """A newer question cancels the answer being streamed: no sentence of it comes after the
    cancel, and its final result holds only what was said before."""
    gate = threading.Event()
    engine = ScriptedVlm(["One. ", "Two. ", "Three."], gate, release_after=1)
    got = Collector()
    with AnalysisWorker([], on_result=got) as worker:
        attached(worker, engine)
        token = worker.submit(question(1.0, Priority.NOW, stream=True))
        try:
            wait_until(lambda: got.results)
            assert got.texts() == ["One."]
            assert worker.cancel(lambda r: r.token == token) == 0  # nothing queued; it streams
        finally:
            gate.set()
        assert worker.wait_idle(10)
        finals = [r for r in got.results if r.final]
        assert [r.final for r in got.results].count(True) == 1
        assert [o.text for o in finals[0].observations] == ["One."]
        assert "Two." not in got.texts() and "Three." not in got.texts()
        assert engine.finished_streams == 0  # the engine's stream was closed early


def test_tokens_are_unique_across_workers() -> None:
    with AnalysisWorker([], on_result=lambda r: None) as a, \
            AnalysisWorker([], on_result=lambda r: None) as b:
        tokens = [a.submit(question(0.0)), b.submit(question(0.0)), a.submit(question(0.0))]
    assert len(set(tokens)) == 3


def _people(*boxes: tuple[float, float, float, float]) -> Observation:
    people = [{"id": i + 1, "box": box, "new": True} for i, box in enumerate(boxes)]
    return Observation(1.0, "people", f"{len(people)} people", data={"people": people})


def test_each_person_is_labelled_once_and_a_tiny_one_when_seen_bigger() -> None:
    from models.pipeline.questions import label_requests

    image = np.zeros((360, 640, 3), dtype=np.uint8)
    labelled: set[int] = set()
    asked = label_requests(image, [_people((0.1, 0.1, 0.4, 0.9), (0.8, 0.5, 0.81, 0.52))],
                           labelled)
    assert [pid for pid, _ in asked] == [1] and labelled == {1}  # 2 is a few pixels wide
    crop = asked[0][1].image
    assert 0.3 * 640 <= crop.shape[1] <= 0.4 * 640 and crop.shape[0] > 0.8 * 360
    later = _people((0.1, 0.1, 0.4, 0.9), (0.6, 0.2, 0.9, 0.95))  # no longer "new"
    for person in later.data["people"]:
        person["new"] = False
    assert [pid for pid, _ in label_requests(image, [later], labelled)] == [2]
    assert label_requests(image, [later], labelled) == []


def test_stopping_with_a_model_that_fails_to_close_still_stops() -> None:
    engine = CloseFails(["x"])
    worker = AnalysisWorker([], on_result=lambda r: None)
    attached(worker, engine)
    worker.stop()  # the close raises inside; the worker stops all the same
    assert engine.closed.is_set() and worker.stopped and not worker.has_vlm


def test_a_worker_that_stops_late_closes_its_model_itself() -> None:
    """stop() gives up waiting for an answer being written; the thread closes its model once
    that answer is done, so the model's memory is not left to the garbage collector."""
    gate = threading.Event()
    engine = ScriptedVlm(["One. ", "Two."], gate, release_after=1)
    got = Collector()
    worker = AnalysisWorker([], on_result=got)
    attached(worker, engine)
    worker.submit(question(1.0, Priority.NOW, stream=True))
    wait_until(lambda: got.results)
    worker.stop(timeout=0.2)  # still writing: gave up waiting
    assert not engine.closed.is_set()
    gate.set()
    wait_until(lambda: engine.closed.is_set())
    assert not worker.has_vlm
