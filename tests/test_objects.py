"""The objects stage (NanoDet, COCO-80) on real pictures, and how the composer says objects."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from models.perception import Stage
from models.perception.objects import (
    COCO_LABELS,
    MODEL_PATH,
    ObjectOptions,
    ObjectStage,
    decode,
    plural,
    suppress,
)
from models.pipeline.composer import Composer
from models.types import Observation
from tests.media import grace_hopper

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo.mp4"


@pytest.fixture(scope="module")
def stage() -> ObjectStage:
    s = ObjectStage()
    assert s.problem() == ""
    return s


def demo_frame(t: float) -> np.ndarray:
    """The bundled demo clip's frame at ``t`` seconds (real footage: a man in a car, a street)."""
    with av.open(str(DEMO)) as container:
        stream = container.streams.video[0]
        container.seek(int(max(0.0, t - 2) / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= t - 1e-3:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t}")


def labels(observations: list[Observation]) -> list[str]:
    (obs,) = observations
    assert obs.kind == "objects"
    assert obs.data["count"] == len(obs.data["objects"])
    return [o["label"] for o in obs.data["objects"]]


def test_the_stage_follows_the_protocol_and_ships_its_model(stage):
    assert isinstance(stage, Stage)
    assert MODEL_PATH.is_file() and len(COCO_LABELS) == 80
    assert (MODEL_PATH.parent / "NANODET_LICENSE.txt").read_text().count("MIT") >= 1


def test_a_photograph_of_a_person_with_a_tie(stage):
    image = grace_hopper()
    found = stage.look(1.0, image)[0].data["objects"]
    by_label = {o["label"]: o for o in found}
    assert set(by_label) == {"person", "tie"}
    assert by_label["person"]["score"] > 0.7
    # The tie is on her chest: low in the middle of the picture, inside the person's box.
    x0, y0, x1, y1 = by_label["tie"]["box"]
    assert 0.35 < (x0 + x1) / 2 < 0.65 and (y0 + y1) / 2 > 0.6
    px0, py0, px1, py1 = by_label["person"]["box"]
    assert px0 <= x0 and x1 <= px1 and py0 <= y0
    assert all(0 <= v <= 1 for o in found for v in o["box"])


def test_cars_in_the_demo_street_and_a_person_in_the_car(stage):
    assert "car" in labels(stage.look(21.0, demo_frame(21.0)))
    assert labels(stage.look(7.0, demo_frame(7.0))) == ["person"]


def test_a_black_frame_shows_nothing(stage):
    (obs,) = stage.look(0.0, np.zeros((720, 1280, 3), dtype=np.uint8))
    assert obs.data == {"count": 0, "objects": []} and obs.text == "no objects"


def test_tiny_and_4k_frames_work(stage):
    assert labels(stage.look(0.0, np.full((16, 16, 3), 128, dtype=np.uint8))) == []
    assert stage.look(0.0, np.zeros((4, 4, 3), dtype=np.uint8)) == []  # below any use
    big = np.asarray(np.repeat(np.repeat(grace_hopper()[:540, :480], 4, axis=0), 8, axis=1))
    assert big.shape[:2] == (2160, 3840)
    assert "person" in labels(stage.look(0.0, big))


def test_the_detector_samples_at_most_every_half_second(stage):
    stage.reset()
    frame = np.zeros((90, 160, 3), dtype=np.uint8)
    sampled = [t for t in (0.0, 0.2, 0.5, 0.7, 1.0, 1.49, 1.5) if stage.process(t, frame)]
    assert sampled == [0.0, 0.5, 1.0, 1.49]
    stage.look(1.6, frame)  # describe now leaves the stream's sampling alone
    assert stage.process(1.7, frame) == []
    stage.reset()
    assert stage.process(1.7, frame)


@pytest.mark.parametrize("content", [b"", b"not an onnx model" * 100, None])
def test_a_missing_or_damaged_model_switches_the_stage_off(tmp_path, content):
    path = tmp_path / "nanodet.onnx"
    if content is None:
        # A real ONNX model that is not NanoDet (the voice detector shipped beside it).
        path.write_bytes((MODEL_PATH.parent / "silero_vad.onnx").read_bytes())
    elif content:
        path.write_bytes(content)
    s = ObjectStage(ObjectOptions(model=path))
    assert "object detector's model file" in s.problem() and str(path) in s.problem()
    assert s.process(0.0, np.zeros((64, 64, 3), dtype=np.uint8)) == []


def test_suppression_keeps_one_box_per_thing_of_each_class_and_is_bounded():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([16, 16, 1, 16])
    assert list(suppress(boxes, scores, classes, 0.5, 100)) == [0, 2, 3]
    assert list(suppress(boxes, scores, classes, 0.5, 2)) == [0, 2]


# ----- bad input --------------------------------------------------------------------------------

def found(stage: ObjectStage, t: float, frame: np.ndarray) -> list[tuple]:
    return [(d.label, d.box, d.score) for d in stage.detections(t, frame)]


def close(a: list[tuple], b: list[tuple], box: float = 0.01, score: float = 0.02) -> bool:
    if [x[0] for x in a] != [y[0] for y in b]:
        return False
    return all(np.allclose(x[1], y[1], atol=box) and abs(x[2] - y[2]) < score
               for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("shape", [(8, 6, 3), (6, 8, 3), (1, 1, 3), (1, 1), (8, 8, 3), (0, 0, 3),
                                   (8, 3840, 3), (2160, 1, 3), (5, 5, 4), (20, 20, 2)])
def test_tiny_odd_and_empty_frames_never_raise(stage, shape):
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    stage.reset()
    for out in (stage.look(0.0, frame), stage.process(0.0, frame)):
        assert out == [] or (len(out) == 1 and out[0].kind == "objects"), out
    assert isinstance(stage.detections(0.5, frame), list)
    for junk in (None, "frame", [[1, 2], [3]], np.zeros((10, 10, 3, 2), np.uint8)):
        assert stage.look(0.0, junk) == [] and stage.detections(0.0, junk) == []


def test_a_4k_frame_sees_what_the_photograph_shows(stage):
    photo = grace_hopper()
    big = cv2.resize(photo, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    assert big.shape == (2160, 3840, 3) and big.dtype == np.uint8
    original, four_k = found(stage, 1.0, photo), found(stage, 2.0, big)
    assert [f[0] for f in original] == ["person", "tie"]
    assert close(four_k, original)
    black = stage.look(3.0, np.zeros((2160, 3840, 3), dtype=np.uint8))
    assert black[0].data["count"] == 0


def test_grayscale_rgba_and_float_frames(stage):
    photo = grace_hopper()
    colour = found(stage, 1.0, photo)
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert gray.ndim == 2
    for frame in (gray, gray[:, :, None]):
        assert {f[0] for f in found(stage, 2.0 + frame.ndim, frame)} >= {"person"}
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    assert found(stage, 4.0, rgba) == colour  # the alpha channel is dropped
    assert close(found(stage, 5.0, photo.astype(np.float32) / 255.0), colour, 1e-3, 1e-3)
    assert stage.look(6.0, np.zeros((720, 1280), np.uint8))[0].data["count"] == 0


@pytest.mark.parametrize("damage", ["truncated", "random", "missing", "empty file"])
def test_a_damaged_model_file_is_a_clear_problem(tmp_path, damage):
    path = tmp_path / "nanodet.onnx"
    model = MODEL_PATH.read_bytes()
    if damage == "truncated":
        path.write_bytes(model[: len(model) // 2])
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(len(model)))
    elif damage == "empty file":
        path.write_bytes(b"")
    s = ObjectStage(ObjectOptions(model=path))
    problem = s.problem()
    assert str(path) in problem and "object detector's model file" in problem
    assert ("missing" in problem) == (damage == "missing")
    if damage != "missing":
        assert "cannot be used" in problem and "reinstall video-narrator" in problem
    frame = grace_hopper()
    assert s.process(0.0, frame) == [] and s.look(0.0, frame) == []
    assert s.detections(0.0, frame) == [] and s.device == ""


def every_cell_scores(size: int = 416, score: float = 0.9) -> list[np.ndarray]:
    """NanoDet's six outputs for a picture where every cell scores ``score`` for every class."""
    rng = np.random.default_rng(0)
    outputs = []
    for stride in (32, 8, 16):  # matched by shape, not order
        cells = (-(-size // stride)) ** 2
        outputs += [np.full((1, cells, 80), score, np.float32),
                    rng.normal(size=(1, cells, 44)).astype(np.float32)]
    return outputs


def test_work_per_frame_is_bounded_when_everything_scores():
    outputs = every_cell_scores()
    assert sum(o.shape[1] * 80 for o in outputs[::2]) > 280_000  # boxes over the threshold
    boxes, scores, classes = decode(outputs, 416, 0.4, 1000)
    assert boxes.shape == (1000, 4) and scores.shape == classes.shape == (1000,)
    assert list(scores) == sorted(scores, reverse=True)
    assert len(suppress(boxes, scores, classes, 0.5, 100)) == 100
    boxes, scores, classes = decode(outputs, 416, 0.4, 7)
    assert len(boxes) == 7 and len(suppress(boxes, scores, classes, 0.5, 100)) <= 7
    assert len(decode(outputs, 416, 0.95, 1000)[0]) == 0
    assert len(decode(outputs, 416, 0.4, 0)[0]) == 0


def test_a_crowd_is_cut_to_max_objects():
    crowd = np.tile(grace_hopper(), (6, 6, 1))  # 36 people, a tie each
    s = ObjectStage()
    people = [d for d in s.detections(0.0, crowd) if d.label == "person"]
    assert len(people) > 20
    few = ObjectStage(ObjectOptions(max_objects=5))
    assert len(few.detections(0.0, crowd)) == 5
    (obs,) = few.look(0.0, crowd)
    assert obs.data["count"] == 5 == len(obs.data["objects"])
    narrow = ObjectStage(ObjectOptions(candidates=3))
    assert 0 < len(narrow.detections(0.0, crowd)) <= 3


# ----- one run of the network for a frame, shared with the pose stage ---------------------------

def counting(stage: ObjectStage, monkeypatch) -> list[int]:
    runs: list[int] = []
    run = stage._session.run

    def counted(*args, **kwargs):
        runs.append(1)
        return run(*args, **kwargs)

    monkeypatch.setattr(stage._session, "run", counted)
    return runs


def test_detections_and_process_of_one_frame_run_the_network_once(monkeypatch):
    s = ObjectStage()
    runs = counting(s, monkeypatch)
    photo = grace_hopper()
    shared = s.detections(1.0, photo)
    assert [d.label for d in shared] == ["person", "tie"] and len(runs) == 1
    (obs,) = s.process(1.0, photo)  # the objects stage's own turn: no second run
    assert obs.data["objects"] == [d.as_dict() for d in shared] and len(runs) == 1
    assert s.detections(1.0, photo) == shared and s.look(1.0, photo) == [obs]
    assert len(runs) == 1
    shared.clear()  # the caller's list is its own
    assert len(s.detections(1.0, photo)) == 2 and len(runs) == 1
    # Another moment, or another frame size at the same moment: the network runs again.
    assert s.process(1.2, photo) == [] and len(runs) == 1  # sampling as before: too soon
    assert len(s.detections(1.2, photo)) == 2 and len(runs) == 2
    assert s.process(1.2, photo) == [] and len(runs) == 2
    s.detections(1.2, photo[:300])
    assert len(runs) == 3
    # Whichever asks first pays: process first, then the pose stage's question.
    assert s.process(2.0, photo)[0].data["count"] == 2 and len(runs) == 4
    assert len(s.detections(2.0, photo)) == 2 and len(runs) == 4
    s.reset()
    assert len(s.detections(2.0, photo)) == 2 and len(runs) == 5


def test_the_shared_detections_of_an_unusable_frame_or_a_stage_off(monkeypatch, tmp_path):
    s = ObjectStage()
    runs = counting(s, monkeypatch)
    assert s.detections(0.0, np.zeros((4, 4, 3), np.uint8)) == [] and runs == []
    assert s.look(0.0, np.zeros((4, 4, 3), np.uint8)) == []
    off = ObjectStage(ObjectOptions(model=tmp_path / "none.onnx"))
    assert off.detections(0.0, grace_hopper()) == []


def test_plurals():
    assert [plural(w) for w in ("horse", "bus", "person", "knife", "sheep", "wine glass")] == [
        "horses", "buses", "people", "knives", "sheep", "wine glasses"]
    assert plural("dog", 1) == "dog"


# ----- the composer ----------------------------------------------------------------------------

def thing(label, x0, y0, x1, y1, score=0.7):
    return {"label": label, "box": [x0, y0, x1, y1], "score": score}


def objects(t, *things):
    return Observation(t, "objects", "", data={"count": len(things), "objects": list(things)})


def texts(descriptions):
    return [d.text for d in descriptions]


def test_objects_are_said_once_with_counts_and_places_while_they_stay():
    c = Composer()
    scene = [thing("dog", 0.1, 0.5, 0.3, 0.9), thing("bicycle", 0.4, 0.3, 0.6, 0.8),
             thing("truck", 0.7, 0.1, 0.95, 0.6), thing("person", 0.4, 0.1, 0.6, 0.9)]
    out = c.feed([objects(1.0, *scene)])
    # Most notable (here: largest) first.
    assert texts(out) == ["A truck on the right, a bicycle in the centre and a dog on the left."]
    assert out[0].level == 2
    for t in np.arange(1.5, 20.01, 0.5):  # they stay: nothing more, however long
        assert c.feed([objects(float(t), *scene)]) == []
    horses = [thing("horse", 0.05, 0.4, 0.25, 0.8), thing("horse", 0.1, 0.45, 0.3, 0.85)]
    assert texts(c.feed([objects(20.5, *horses)])) == ["Two horses on the left."]


def test_several_small_things_far_from_anyone_are_notable():
    c = Composer()
    kites = [thing("kite", x, 0.02, x + 0.03, 0.06) for x in (0.1, 0.5, 0.8)]
    crowd = [thing("person", x, 0.7, x + 0.05, 0.95) for x in (0.2, 0.3, 0.6)]
    (said,) = c.feed([objects(0.0, *kites, *crowd)])
    assert (said.text, said.level) == ("Three kites.", 2)


def test_people_are_not_said_as_objects_and_small_side_things_are_detail():
    c = Composer()
    assert c.feed([objects(0.0, thing("person", 0.4, 0.1, 0.6, 0.9))]) == []
    unsure = thing("umbrella", 0.02, 0.5, 0.06, 0.56, score=0.47)
    for t in (0.0, 0.25, 0.3):  # under OBJECT_LEAST: never named, however often found
        assert c.feed([objects(t, unsure)]) == []
    cup = thing("cup", 0.02, 0.02, 0.06, 0.06, score=0.55)
    assert c.feed([objects(0.5, cup)]) == []  # one uncertain sample is not enough
    (said,) = c.feed([objects(1.0, cup)])
    assert said.text == "A cup on the left." and said.level == 3 and said.priority == 0
    # More than three new kinds: the three most notable in one sentence, the others after.
    many = [thing(k, 0.35, 0.3, 0.65, 0.7) for k in ("car", "bus", "kite", "chair")]
    out = c.feed([objects(2.0, *many)])
    assert texts(out) == ["A car in the centre, a bus in the centre and a kite in the centre.",
                          "A chair in the centre."]
    assert [d.level for d in out] == [2, 3]


def test_never_no_one_in_view_while_the_detector_sees_people():
    crowd = [thing("person", x, 0.2, x + 0.1, 0.9) for x in (0.1, 0.4, 0.7)]
    shot_cut = Observation(3.0, "shot", "shot change")
    no_pose = Observation(3.0, "people", "0 people", data={"count": 0, "people": []})
    c = Composer()
    out = texts(c.feed([shot_cut, no_pose, objects(3.0, *crowd)]))
    assert out == ["New shot: three people in view."]
    assert not any("no one" in s.lower() for s in out)
    # With no one there for either, it is said.
    out = texts(c.feed([Observation(9.0, "shot", ""), Observation(9.0, "people", "", data={
        "count": 0, "people": []}), objects(9.0)]))
    assert out == ["New shot: no one is in view."]
    # A count from the frame before a cut is of the other shot.
    c.feed([Observation(25.0, "people", "", data={"count": 0, "people": []}),
            objects(25.0, *crowd)])
    out = texts(c.feed([Observation(25.5, "shot", ""), Observation(25.5, "people", "", data={
        "count": 0, "people": []})]))
    assert out == ["New shot: no one is in view."]
    now = Composer.describe([no_pose, objects(3.0, *crowd, thing("kite", 0.4, 0.0, 0.5, 0.1))],
                            3.2)
    assert now.startswith("Three people in view.") and "A kite" in now
    assert "no people" not in now.lower()


def test_when_the_people_stage_loses_everyone_the_detector_count_is_said():
    c = Composer()
    pose = [{"id": 1, "position": "left", "posture": "standing", "gestures": [],
             "box": [0.1, 0.2, 0.2, 0.9], "distance": "middle"}]
    c.feed([Observation(0.0, "shot", ""),
            Observation(0.0, "people", "", data={"count": 1, "people": pose})])
    two = [thing("person", 0.1, 0.2, 0.2, 0.9), thing("person", 0.6, 0.2, 0.7, 0.9)]
    said = []
    for t in (0.5, 1.0, 1.5):
        said += texts(c.feed([Observation(t, "people", "", data={"count": 0, "people": []}),
                              objects(t, *two)]))
    assert said == ["Two people in view."]
    # Without the detector's people, the same loss is said as it is.
    c = Composer()
    c.feed([Observation(0.0, "shot", ""),
            Observation(0.0, "people", "", data={"count": 1, "people": pose})])
    said = []
    for t in (0.5, 1.0):
        said += texts(c.feed([Observation(t, "people", "", data={"count": 0, "people": []}),
                              objects(t)]))
    assert said == ["Now no one is in view."]


def test_the_stage_and_composer_together_on_the_demo_street(stage):
    """Real footage through the real stage: the cars are said once, the person in the car is
    never said as an object, and the cyclist is said to ride the bicycle."""
    stage.reset()
    c = Composer()
    said = []
    for t in np.arange(19.0, 23.01, 0.5):
        said += texts(c.feed(stage.process(float(t), demo_frame(float(t)))))
    cars = [s for s in said if "car" in s.lower()]
    assert len(cars) == 1, said
    doing = ("rides", "sits", "holds")
    assert not any(("person" in s.lower() or "people" in s.lower())
                   and not any(v in s for v in doing) for s in said), said
    assert "A person rides a bicycle." in said, said


def test_the_player_runs_the_objects_stage():
    from models.pipeline.config import default_stages

    stages, notes = default_stages()
    assert any(isinstance(s, ObjectStage) for s in stages)
    assert not any(n.startswith("objects") for n in notes)
