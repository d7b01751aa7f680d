"""A vision-language model in the player: describe now and questions go to the model (a tiny
random-weight SmolVLM-architecture model built here, loaded by the real transformers code)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from player.app import LaunchOptions, build_controller
from player.core.settings import Settings
from tests.support import pump, wait_for
from tests.tiny_vlm import build_tiny_vlm

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny")


@pytest.fixture
def controller(qapp, tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, Settings(narration=False, vlm_model=str(tiny_model)))
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    c.open(video)
    wait_for(lambda: c.perception.available and c.perception.has_vlm and c.media is not None,
             timeout=60)
    c.playback.seek_absolute(6.0)
    wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - 6.0) < 0.5, timeout=5)
    pump(0.3)
    yield c
    c.close()


def test_describe_now_and_questions_go_to_the_model(controller):
    c = controller
    said = []
    c.narrator.said.connect(said.append)
    c.describe_now()
    wait_for(lambda: said, timeout=30)
    assert said[0].source == "now" and said[0].text.strip()
    assert "no vision-language model" not in said[0].text
    c.ask("What is the man doing?")
    wait_for(lambda: len(said) == 2, timeout=30)
    assert said[1].source == "answer" and said[1].text.strip()
    assert "can't answer questions" not in said[1].text


def test_a_broken_model_is_reported_and_the_detectors_still_answer(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, Settings(narration=False, vlm_model=str(broken)))
    try:
        messages = []
        c.message.connect(lambda text, kind: messages.append(text))
        wait_for(lambda: any("vision-language model could not be used" in m
                             for m in messages), timeout=30)
        assert not c.perception.has_vlm
    finally:
        c.close()


def use_model(c, engine) -> None:
    """Give the player ``engine`` (a ScriptedVlm) as its model; wait until it is in use."""
    c.perception.use_engine(engine, "scripted")
    wait_for(lambda: c.perception.has_vlm, timeout=10)


def open_demo(c, tmp_path: Path, at: float = 6.0, paused: bool = False) -> None:
    """Open a copy of the demo (no description track beside it) and go to ``at``. ``paused``:
    the film stands still from the start while the look-ahead works ahead (on a loaded machine,
    a playing film could outrun it and make it jump). With narration on, give the player
    wait_for_narrator=False: these tests pause and play the film themselves, and the film's
    wait at its start would end at a moment of its own."""
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    c.open(video)
    wait_for(lambda: c.media is not None, timeout=20)  # a seek before the file is loaded is lost
    if paused:
        c.playback.pause = True
    wait_for(lambda: c.perception.available, timeout=60)
    c.playback.seek_absolute(at)
    wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - at) < 0.5, timeout=5)
    pump(0.3)


def test_the_first_sentence_is_spoken_while_the_model_is_still_writing(make_controller,
                                                                        tmp_path):
    """The model's answer streams: speech starts on its first sentence, and the next follows
    straight after it, without cutting it off."""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=True, live_analysis=True, wait_for_narrator=False)
    open_demo(c, tmp_path)
    c.playback.pause = True
    gate = threading.Event()
    engine = ScriptedVlm(["A man walks to ", "the door. ", "He opens ", "it."], gate,
                         release_after=2)
    use_model(c, engine)
    said = []
    c.narrator.said.connect(said.append)
    c.describe_now()
    wait_for(lambda: said, timeout=20)
    assert said[0].text.endswith("A man walks to the door.") and said[0].source == "now"
    assert engine.finished_streams == 0  # the model has not finished its answer
    gate.set()
    wait_for(lambda: len(said) == 2, timeout=20)
    assert said[1].text == "He opens it." and said[1].source == "now"
    wait_for(lambda: len(c.speech.records) >= 2 and c.speech.records[1].wall_end, timeout=20)
    first, second = c.speech.records[:2]
    assert not first.interrupted
    assert second.wall_start >= first.wall_end - 0.05
    assert any(p.startswith("Describe this video frame") and "Our detectors found" in p
               for p in engine.prompts)


def test_the_model_describes_the_pauses_ahead_of_the_playhead(make_controller, tmp_path):
    """Look-ahead: the model is asked about frames in the pauses ahead, and its descriptions
    join the narration, placed in those pauses."""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    engine = ScriptedVlm(["A narrow street with parked cars."])
    open_demo(c, tmp_path, at=0.0, paused=True)
    use_model(c, engine)
    found = lambda: [d for d in c.narrator.timeline.descriptions if d.source == "vlm"]  # noqa: E731
    wait_for(lambda: len(found()) >= 2, timeout=40)
    descs = found()
    assert all(d.text == "A narrow street with parked cars." for d in descs)
    assert all(d.level == 1 and d.end is not None and d.end > d.start for d in descs)
    gaps = c.narrator.gaps
    for d in descs:
        room = gaps.room_at(d.start)
        assert room is None or room > 0, f"{d.start} is not in a pause"
    assert any("at most" in p and "words" in p for p in engine.prompts)
    assert c.perception.vlm_seconds > 0  # the pace of the model is measured
    # The analysis cache is keyed by the model: another model's answers are not saved with it.
    store = c.perception.session._store
    assert store.between(0, 1e9, kinds=["vlm"])
    c.perception.set_vlm("")
    assert store.between(0, 1e9, kinds=["vlm"]) == [] and store.between(0, 1e9)
    assert "vlm" not in c.perception.cache_config


def test_new_people_get_a_label_from_the_model(make_controller, tmp_path):
    """A person the detectors see for the first time is cropped and shown to the model, once,
    and the composer (tests/test_composer.py checks the sentences) calls them by its answer."""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    engine = ScriptedVlm(["A street."], label="The man in the grey jacket.")
    open_demo(c, tmp_path, at=0.0, paused=True)
    use_model(c, engine)
    composer = c.perception.session._composer
    wait_for(lambda: composer.label_of(1), timeout=40)
    assert composer.label_of(1) == "the man in the grey jacket"
    asked = [p for p in engine.prompts if p.startswith("This picture shows one person")]
    assert asked and len(asked) == len(set(c.perception.session._labelled))
    # The model gives everyone the same label here: the composer keeps labels unique, so the
    # next person's is refused and they stay "the second person".
    wait_for(lambda: 2 in c.perception.session._labelled, timeout=40)
    assert composer.label_of(2) == ""
    assert len(asked) >= 1 and all(p == asked[0] for p in asked)


def test_the_model_can_be_turned_off_in_the_settings(controller):
    from dataclasses import replace

    c = controller
    messages = []
    c.message.connect(lambda text, kind: messages.append(text))
    c.apply_settings(replace(c.settings, vlm_model=""))
    assert not c.perception.has_vlm
    assert any("No vision-language model" in m for m in messages)
    said = []
    c.narrator.said.connect(said.append)
    c.ask("What is on the table?")
    wait_for(lambda: said, timeout=30)
    assert "can't answer questions" in said[0].text


def test_while_the_model_loads_the_answer_says_so(make_controller, tmp_path, tiny_model,
                                                  monkeypatch):
    """Describe now before the model has loaded: the detectors answer, and the listener is
    told the model is still loading (not that there is none)."""
    import models.vlm.loader as loader

    gate = threading.Event()
    real_open = loader.open_vlm

    def slow_open(name, *more):  # the real loader, held back until the test lets it go
        gate.wait(30)
        return real_open(name, *more)

    monkeypatch.setattr(loader, "open_vlm", slow_open)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    c = make_controller(narration=True, live_analysis=True, wait_for_narrator=False,
                        vlm_model=str(tiny_model))
    try:
        open_demo(c, tmp_path)
        assert c.perception.vlm_loading and not c.perception.has_vlm
        said = []
        c.narrator.said.connect(said.append)
        c.describe_now()
        wait_for(lambda: said, timeout=20)
        assert "still loading" in said[0].text
        assert "no vision-language model is set up" not in said[0].text
    finally:
        gate.set()
    wait_for(lambda: c.perception.has_vlm, timeout=60)
    assert not c.perception.vlm_loading


def test_a_model_that_fails_to_load_is_not_said_to_be_loading(make_controller, tmp_path):
    c = make_controller(narration=False, live_analysis=True, vlm_model=str(tmp_path / "none"))
    wait_for(lambda: not c.perception.vlm_loading, timeout=30)
    assert not c.perception.has_vlm


def test_a_model_on_a_gpu_gets_its_own_worker_thread(make_controller, tmp_path):
    """One worker per device: with the model on a GPU, the detectors keep their CPU thread and
    the model answers on a thread of its own, in bigger batches. (No GPU here: the engine only
    says it runs on one; this checks where the work goes.)"""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, at=0.0, paused=True)
    engine = ScriptedVlm(["A street."], device="cuda:0")
    c.perception.use_engine(engine, "scripted-gpu")
    wait_for(lambda: c.perception.has_vlm, timeout=10)
    gpu = c.perception.session._gpu_worker
    assert gpu is not None and gpu.device == "cuda:0" and gpu.vlm_batch == 8
    assert c.perception.session._planner.max_outstanding == 4
    wait_for(lambda: any(d.source == "vlm" for d in c.narrator.timeline.descriptions),
             timeout=40)
    assert engine.threads == {"analysis-cuda:0"}
    # Back to a model on the CPU: the GPU worker goes, and its model is closed.
    cpu_engine = ScriptedVlm(["A road."])
    c.perception.use_engine(cpu_engine, "scripted-cpu")
    assert c.perception.session._gpu_worker is None
    wait_for(engine.closed.is_set, timeout=10)  # closed on the worker's way out, not here
    said = []
    c.perception.answer.connect(lambda t, text: said.append(text))
    c.describe_now()
    wait_for(lambda: said, timeout=20)
    assert said[0] == "A road." and cpu_engine.threads == {"analysis-cpu"}


def test_leaving_a_gpu_model_answers_what_it_was_asked_without_waiting(make_controller,
                                                                        tmp_path):
    """The model on the GPU is busy writing when the user switches to another: the window does
    not wait for it, and the describe now it was answering is answered by the detectors."""
    import time

    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, paused=True)
    gate = threading.Event()
    engine = ScriptedVlm(["A man walks. "], gate, release_after=0, device="cuda:0")
    c.perception.use_engine(engine, "scripted-gpu")
    wait_for(lambda: c.perception.has_vlm, timeout=10)
    answers, done = [], []
    c.perception.answer.connect(lambda t, text: answers.append(text))
    c.perception.answer_done.connect(done.append)
    try:
        c.describe_now()
        wait_for(lambda: c.perception.answering and engine.prompts, timeout=20)
        started = time.monotonic()
        c.perception.use_engine(ScriptedVlm(["A road."]), "scripted-cpu")
        assert time.monotonic() - started < 1.0  # the stop happens off the Qt thread
        pump(0.1)
        assert len(answers) == 1 and answers[0] and not c.perception.answering
        assert done
    finally:
        gate.set()
    wait_for(engine.closed.is_set, timeout=10)
    pump(0.3)
    assert len(answers) == 1  # the old model's late answer is not said


def test_a_newer_describe_now_replaces_the_answer_being_written(make_controller, tmp_path):
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, paused=True)
    gate = threading.Event()
    engine = ScriptedVlm(["A man walks. ", "He waves. "], gate, release_after=1)
    use_model(c, engine)
    first, more = [], []
    c.perception.answer.connect(lambda t, text: first.append(text))
    c.perception.answer_more.connect(lambda t, text: more.append(text))
    try:
        c.describe_now()
        wait_for(lambda: first, timeout=20)
        assert first == ["A man walks."]
        c.describe_now()  # the user asks again before the first answer is complete
    finally:
        gate.set()
    wait_for(lambda: len(first) == 2 and not c.perception.answering, timeout=20)
    assert first[1] == "A man walks."
    assert more == ["He waves."]  # from the second answer only; the first stopped writing


def test_in_pause_mode_the_film_waits_between_the_sentences_of_an_answer(make_controller,
                                                                         tmp_path):
    """Extended mode: the film pauses for the answer and stays paused while the model writes
    its next sentence, instead of playing a moment and stopping again; then it goes on."""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=True, live_analysis=True, wait_for_narrator=False, mode="pause")
    open_demo(c, tmp_path)
    gate = threading.Event()
    engine = ScriptedVlm(["Cars pass. ", "A man crosses the street."], gate, release_after=1)
    use_model(c, engine)
    pumped = []  # each pause change, with the answer's sentences said to the end by then
    c.playback.pause_changed.connect(lambda paused: pumped.append(
        (paused, [r.text for r in c.speech.records if r.wall_end and r.source == "now"])))
    c.playback.pause = True
    c.playback.pause = False
    # mpv reports a change of its pause on its own thread: the film must be seen playing
    # before the press, or the press's pause may reach us merged with this one (seen on a
    # loaded machine).
    wait_for(lambda: pumped and pumped[-1][0] is False, timeout=10)
    pump(0.3)
    pumped.clear()
    try:
        c.describe_now()
        wait_for(lambda: c.speech.records and c.speech.records[-1].wall_end
                 and "Cars pass." in c.speech.records[-1].text, timeout=20)
        pump(0.5)  # the first sentence has been said; the second is not written yet
        assert c.playback.pause, "the film went on between two sentences of the answer"
    finally:
        gate.set()
    wait_for(lambda: any("crosses" in r.text and r.wall_end for r in c.speech.records),
             timeout=20)
    wait_for(lambda: any(not paused for paused, _ in pumped), timeout=5)
    # Paused once, and resumed only once both sentences had been said (a live description
    # said after the answer may pause it again: narration is on).
    assert pumped[0] == (True, [])
    assert pumped[1] == (False, ["Cars pass.", "A man crosses the street."])


def test_a_failing_model_is_switched_off_and_the_player_knows(make_controller, tmp_path):
    from models.vlm.base import VlmError
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, paused=True)
    engine = ScriptedVlm(["x"], fail=VlmError("The model failed while describing: no memory"))
    use_model(c, engine)
    messages, answers = [], []
    c.message.connect(lambda text, kind: messages.append(text))
    c.perception.answer.connect(lambda t, text: answers.append(text))
    for i in range(3):
        c.describe_now()
        wait_for(lambda n=i: len(answers) > n, timeout=20)
    wait_for(lambda: not c.perception.has_vlm, timeout=10)
    assert not c.perception.vlm_loading  # not said to be loading: it is off
    assert any("The vision-language model is off" in m for m in messages)
    assert not any("failed: The model failed" in m for m in messages)
    assert all(a for a in answers)  # the detectors answered each time


def test_with_live_analysis_off_no_model_is_loaded_until_it_is_turned_on(make_controller,
                                                                          tmp_path, tiny_model):
    from dataclasses import replace

    c = make_controller(narration=False, live_analysis=False, vlm_model=str(tiny_model))
    pump(0.5)
    assert not c.perception.vlm_loading and not c.perception.has_vlm
    said = []
    c.narrator.said.connect(said.append)
    open_demo_file = tmp_path / "street.mp4"
    shutil.copy(DEMO, open_demo_file)
    c.open(open_demo_file)
    wait_for(lambda: c.media is not None, timeout=20)
    c.ask("What is he holding?")
    assert "live scene analysis is off" in said[-1].text
    c.apply_settings(replace(c.settings, live_analysis=True))
    wait_for(lambda: c.perception.has_vlm and c.perception.available, timeout=60)


def test_a_model_chosen_while_another_waits_for_the_detectors_replaces_it(qapp):
    """Two models chosen one after the other before the detectors are ready: the first is
    closed, not leaked, and the second is the one attached."""
    from player.core.perception import Perception
    from tests.scripted_vlm import ScriptedVlm

    release = threading.Event()

    def slow_stages():
        release.wait(30)
        return [], []

    p = Perception(slow_stages)
    try:
        p.warm_up()
        first, second = ScriptedVlm(["A."]), ScriptedVlm(["B."])
        p.use_engine(first, "first")
        p.use_engine(second, "second")
        assert first.closed.is_set() and not second.closed.is_set()
        release.set()
        wait_for(lambda: p.has_vlm, timeout=10)
        assert p.session._model_worker is not None and p.session._vlm == "second"
    finally:
        release.set()
        p.close()


def test_pressing_describe_now_twice_answers_once_for_the_latest_frame(qapp):
    """The first request is dropped (or its result ignored): one answer, about the second
    frame, and nothing from either frame leaks into the look-ahead's findings."""
    import time

    from models.types import Observation
    from player.core.perception import Perception

    class Probe:
        name = "probe"

        def problem(self) -> str:
            return ""

        def process(self, t, frame):
            time.sleep(0.2)
            return [Observation(t, "text", f"frame {int(frame[0, 0, 0])}",
                                data={"lines": [f"frame {int(frame[0, 0, 0])}"], "new": True,
                                      "box": (0, 0, 1, 1)})]

        def flush(self):
            return []

        def reset(self) -> None:
            pass

    p = Perception(lambda: ([Probe()], []))
    answers = []
    p.answer.connect(lambda t, text: answers.append((t, text)))
    try:
        p.warm_up()
        wait_for(lambda: p.available, timeout=20)
        for value, t in ((10, 1.0), (20, 2.0)):
            p.describe_now(t, (8, 8, bytes([value]) * 8 * 8 * 3))
            pump(0.05)  # the first is being analysed when the second comes
        wait_for(lambda: answers, timeout=10)
        pump(0.6)
        assert len(answers) == 1 and answers[0][0] == 2.0
        assert p.observations() == []
    finally:
        p.close()


def test_an_answer_cut_off_by_something_else_is_not_resumed(make_controller, tmp_path):
    """The user asks the time while the model's answer is being said: the answer's later
    sentences are not said after the time, out of context."""
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=True, live_analysis=True, wait_for_narrator=False)
    open_demo(c, tmp_path, paused=True)
    gate = threading.Event()
    engine = ScriptedVlm(["A man walks. ", "He waves. "], gate, release_after=1)
    use_model(c, engine)
    said = []
    c.narrator.said.connect(lambda d: said.append(d.text))
    try:
        c.describe_now()
        wait_for(lambda: any("A man walks." in s for s in said), timeout=20)
        c.say_time()
    finally:
        gate.set()
    wait_for(lambda: not c.perception.answering, timeout=20)
    wait_for(lambda: any(" of " in r.text and r.wall_end for r in c.speech.records), timeout=20)
    pump(0.5)  # time enough for a next sentence to start
    assert not any("He waves." in s for s in said)


def test_a_note_from_the_model_is_said_once(make_controller, tmp_path):
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, paused=True)
    messages = []
    c.message.connect(lambda text, kind: messages.append(text))
    engine = ScriptedVlm(["A street."])
    engine.notes.append("Frames are cut into tiles, which is slower on this computer.")
    use_model(c, engine)
    answers = []
    c.perception.answer.connect(lambda t, text: answers.append(text))
    c.describe_now()
    wait_for(lambda: answers, timeout=20)
    pump(0.3)
    assert sum("cut into tiles" in m for m in messages) == 1


def test_a_stale_switch_off_does_not_touch_the_model_chosen_since(qapp):
    """The old model's third failure is reported after the user chose another one: the new
    one stays; only when the model in use fails is the narrator left without one."""
    from player.core.perception import Perception
    from tests.scripted_vlm import ScriptedVlm

    p = Perception(lambda: ([], []))
    try:
        p.warm_up()
        old, new = ScriptedVlm(["A."]), ScriptedVlm(["B."])
        wait_for(lambda: p.session._built, timeout=10)
        p.use_engine(old, "old")
        p.use_engine(new, "new")
        told = []
        p.problem.connect(told.append)
        p.session._on_vlm_off(old, "it failed 3 times in a row")
        assert p.has_vlm and p.session._vlm == "new" and p.session._vlm_name == "new"
        assert told == []  # the model in use is fine: nothing to tell
        p.session._on_vlm_off(new, "it failed 3 times in a row")
        assert not p.has_vlm and not p.vlm_loading
        assert len(told) == 1 and "The vision-language model is off: it failed 3" in told[0]
    finally:
        p.close()


def test_describe_now_says_when_the_picture_is_not_ready(make_controller, tmp_path):
    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, paused=True)
    c.playback.frame_rgb = lambda: None  # mpv has not shown a frame (yet)
    said = []
    c.narrator.said.connect(lambda d: said.append(d.text))
    c.describe_now()
    assert said and "picture is not ready yet" in said[-1]


def test_label_questions_without_an_answer_are_asked_again_twice_at_most(qapp):
    from models.pipeline.jobs import LabelJob
    from models.pipeline.worker import NO_FRAME, VLM, Priority, Request, Result
    from player.core.perception import Perception

    p = Perception(lambda: ([], []))
    try:
        p.session._labelled.add(7)
        for attempt in range(3):
            p.session._labelled.add(7)
            p.session._vlm_jobs[100 + attempt] = LabelJob(7, None)
            p.session._on_model_result(Result(Request(Priority.GAP, 1.0, NO_FRAME, kind=VLM,
                                              token=100 + attempt), (), 0.0))
            assert (7 in p.session._labelled) == (attempt == 2)
    finally:
        p.close()


def test_an_analysis_that_changed_model_midway_is_not_cached(qapp, tmp_path, monkeypatch):
    """Saved under the new model's name it would lack that model's answers for the first part,
    and the next viewing would never ask for them."""
    from models.pipeline.store import ObservationStore
    from models.types import Observation
    from player.core.perception import Perception

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    p = Perception(lambda: ([], []))
    try:
        p.session._path, p.session._duration = str(video), 10.0
        p.session._store = ObservationStore([Observation(2.0, "vlm", "A street.")], covered=[(0, 10)])
        p.session._vlm_name = "first"
        p.set_vlm("")  # the model changes while the film is analysed
        p.session.save_cache()
        assert not p.from_cache and not (tmp_path / "cache").exists()
        p.session._mixed_models = False  # the same store, one model: saved
        p.session.save_cache()
        wait_for(lambda: ObservationStore.cache_file(video, p.cache_config).exists(), timeout=10)
    finally:
        p.close()


def test_an_older_models_answer_is_not_cached_under_the_new_models_name(qapp):
    """An answer the old model was still writing when the user chose another one is said, but
    kept out of the analysis saved under the new model's name (so that analysis is not saved);
    when the new model fails to load, the old one goes on under its own name."""
    from models.pipeline.jobs import GapJob
    from models.pipeline.questions import GapQuestion
    from models.pipeline.store import ObservationStore
    from models.pipeline.worker import NO_FRAME, VLM, Priority, Request, Result
    from models.types import Observation
    from player.core.perception import Perception

    def answer(p, token, model):
        p.session._vlm_jobs[token] = GapJob(GapQuestion(3.0, 3.0, 4.0), None, model)
        p.session._on_model_result(Result(Request(Priority.GAP, 3.0, NO_FRAME, kind=VLM, token=token),
                                  (Observation(3.0, "vlm", "A street."),), 1.0))

    p = Perception(lambda: ([], []))
    said = []
    p.descriptions.connect(lambda descs: said.extend(d.text for d in descs))
    try:
        p.session._store = ObservationStore([], covered=[(0, 10)])
        p.session._vlm = p.session._vlm_name = "old"
        answer(p, 1, "old")
        assert [o.text for o in p.session._store if o.kind == "vlm"] == ["A street."]
        p.session._vlm_name = "new"  # chosen, still loading; the old model finishes an answer
        p.session._store.drop_kind(VLM)
        p.session._mixed_models = False
        answer(p, 2, "old")
        assert said == ["A street.", "A street."]
        assert not [o for o in p.session._store if o.kind == "vlm"]
        assert p.session._mixed_models
        p.session._on_vlm_failed("new")  # the new one could not be loaded: the old one goes on
        assert p.session._vlm_name == "old" and not p.vlm_loading
    finally:
        p.close()


def test_a_question_gets_what_was_said_in_the_film_just_before_as_context(make_controller,
                                                                          tmp_path):
    """The model hears what the narrator said in the last half minute of film before the
    frame: not older sentences, and not ones said later in the film (before a seek back)."""
    from models import Description
    from tests.scripted_vlm import ScriptedVlm

    c = make_controller(narration=False, live_analysis=True)
    open_demo(c, tmp_path, at=0.5, paused=True)
    engine = ScriptedVlm(["A street."])
    use_model(c, engine)

    def say_at(t: float, text: str) -> None:
        c.playback.seek_absolute(t)
        wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - t) < 0.3, timeout=5)
        c.narrator.deliver(Description(t, text, source="system"))

    def prompt_at(t: float) -> str:
        c.playback.seek_absolute(t)
        wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - t) < 0.3, timeout=5)
        pump(0.3)
        question = f"What is there at {t} seconds?"
        c.ask(question)
        return wait_for(lambda: next((p for p in engine.prompts if question in p), None),
                        timeout=30)  # labels for people are asked for too

    say_at(0.5, "A title card reads hello.")
    say_at(20.0, "A red bus passes.")
    late = prompt_at(31.5)
    assert "A red bus passes." in late and "hello" not in late, late
    early = prompt_at(5.0)
    assert "hello" in early and "red bus" not in early, early
