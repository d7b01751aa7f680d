"""The analysis session: one set of rules for the player and for narrate prepare.

- The live path (the Qt adapter, as the player drives it) and prepare see the same things in
  the same film.
- The session runs without Qt: its threads' reports come back through the owner's queue.
- Every stage keeps the stage contract, and the shot detector is shared: a frame is measured
  once, however many stages ask about cuts, and sharing changes nothing they find.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.perception import Stage
from models.types import Observation
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"


def _cheap_stages() -> tuple[list[Stage], list[str]]:
    """Shots, scene and objects, sharing one shot detector, as default_stages builds them."""
    from models.perception.objects import ObjectStage
    from models.perception.scene import SceneStage
    from models.perception.shots import ShotStage

    shots = ShotStage()
    return [shots, SceneStage(cuts=shots), ObjectStage()], []


def _seen(observations: list[Observation]) -> list[tuple[float, str, str]]:
    return sorted((round(o.t, 3), o.kind, o.text) for o in observations)


def test_the_live_path_and_prepare_see_the_same_things(qapp, tmp_path, monkeypatch) -> None:
    from player.core.perception import Perception
    from tests.support import prepare_film

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    film = Path(shutil.copy(DEMO, tmp_path / "street.mp4"))
    said: list[str] = []
    _, report = prepare_film(film, tmp_path / "street.vtt", 2.0, _cheap_stages()[0],
                             said.append)
    assert report.ok, said
    from models.pipeline.config import cache_config
    from models.pipeline.store import ObservationStore

    prepared = ObservationStore.load(film, cache_config())
    assert prepared is not None, said
    live = Perception(_cheap_stages)
    try:
        live.session.offline = False
        live.start(film)  # as the player does on a cache miss: analyse ahead of the playhead

        def done() -> bool:
            la = live.session._lookahead  # noqa: SLF001
            return la is not None and la.finished and live.session.idle

        wait_for(done, timeout=120)
        looked = live.observations()
    finally:
        live.close()
    ours = [o for o in looked if o.kind != "vlm"]
    assert len(ours) > 20  # a real film: objects, scene, cuts
    assert _seen(ours) == _seen([o for o in prepared if o.kind != "vlm"])


def test_the_session_needs_no_qt_and_reports_on_its_owners_thread(tmp_path) -> None:
    """Describe now through a session driven by a plain queue, as a cluster worker would."""
    from models.pipeline.session import AnalysisSession, SessionEvents

    calls: queue.SimpleQueue = queue.SimpleQueue()
    answers: list[tuple[float, str, str]] = []
    done: list[float] = []
    events = SessionEvents(answer=lambda t, text: answers.append((t, text, _thread())),
                           answer_done=done.append)
    session = AnalysisSession(_cheap_stages, post=calls.put, events=events)
    session.warm_up()
    owner = _thread()
    try:
        _pump(calls, lambda: session.ready)
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[60:180, 100:220] = 200  # a bright square on black
        assert session.describe_now(3.0, frame)
        _pump(calls, lambda: done)
    finally:
        session.close()
    assert done == [3.0] and len(answers) == 1
    t, text, thread = answers[0]
    assert t == 3.0 and text and thread == owner


def test_the_analysis_and_prepare_load_no_qt() -> None:
    check = ("import sys, models.pipeline.session, models.pipeline.offline; "
             "from models.pipeline.config import default_stages; default_stages(); "
             "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'player'))))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _thread() -> str:
    import threading

    return threading.current_thread().name


def _pump(calls: queue.SimpleQueue, until, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < end, "the session did not report in time"
        try:
            calls.get(timeout=0.05)()
        except queue.Empty:
            pass


def _every_stage() -> list[Stage]:
    from models.pipeline.config import default_stages

    stages, _notes = default_stages()
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    built = _every_stage()
    assert {s.name for s in built} >= {"shots", "scene", "objects"}
    return built


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
    other = np.full((180, 320, 3), (30, 160, 40), np.uint8)
    return [base, np.roll(base, 3, axis=1), other, np.roll(other, 2, axis=0)]


def test_every_stage_keeps_the_stage_contract(stages) -> None:
    """What the worker relies on, for each stage: a name, a check that never raises, lists of
    observations from process, look and flush, and look leaving the stream as it was."""
    frames = _frames()
    for stage in stages:
        assert isinstance(stage, Stage) and stage.name, stage
        assert isinstance(stage.problem(), str)
        stage.reset()
        plain = [stage.process(0.5 * i, f) for i, f in enumerate(frames)]
        stage.reset()
        looked = []
        for i, f in enumerate(frames):
            looked.append(stage.process(0.5 * i, f))
            aside = stage.look(0.5 * i + 10.0, frames[-1 - i])  # describe now, elsewhere
            assert isinstance(aside, list) and all(isinstance(o, Observation) for o in aside)
        assert [_seen(x) for x in looked] == [_seen(x) for x in plain], stage.name
        assert isinstance(stage.flush(), list)
        stage.rewind()
        stage.reset()
        tiny = stage.process(9.0, np.zeros((4, 4, 3), np.uint8))  # too small: nothing, no crash
        assert tiny == [] or all(isinstance(o, Observation) for o in tiny)
        stage.reset()


def test_a_stage_written_without_the_base_class_gets_the_defaults() -> None:
    from models.perception import as_stage

    class Plain:
        name = "plain"

        def process(self, t, frame):
            return [Observation(t, "scene", "x")]

    stage = as_stage(Plain())
    assert stage.problem() == "" and stage.flush() == []
    assert stage.look(1.0, None)[0].t == 1.0  # look falls back to process
    stage.rewind()  # and rewind to reset, which it lacks: nothing happens
    assert as_stage(stage) is stage


def test_the_shot_detector_measures_each_frame_once_and_sharing_changes_nothing(
        monkeypatch) -> None:
    from models.perception.scene import SceneStage
    from models.perception.shots import ShotStage
    from models.pipeline.reader import FrameReader

    frames = [(f.t, f.image) for f in FrameReader(str(DEMO), fps=2.0, max_width=320).frames()]
    assert len(frames) > 20

    def run(shared: bool) -> tuple[list, list, int]:
        measured = []
        real = ShotStage._detect

        def counting(self, t, frame):
            measured.append(t)
            return real(self, t, frame)

        monkeypatch.setattr(ShotStage, "_detect", counting)
        shots = ShotStage()
        scene = SceneStage(cuts=shots if shared else None)
        cuts, found = [], []
        for t, image in frames:
            cuts += shots.process(t, image)
            found += scene.process(t, image)
        monkeypatch.undo()
        return _seen(cuts), _seen(found), len(measured)

    cuts_alone, scene_alone, measured_alone = run(shared=False)
    cuts_shared, scene_shared, measured_shared = run(shared=True)
    assert measured_alone == 2 * len(frames) and measured_shared == len(frames)
    assert cuts_shared == cuts_alone and scene_shared == scene_alone
    assert cuts_alone, "the demo has cuts"
