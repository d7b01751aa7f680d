"""People at every size: the object detector's person boxes are the pose stage's proposals, so
people far away are counted, placed and followed (their walking and running too), and people
near enough still get posture and gestures from the landmarks. Real models on real people (the
demo's cyclist, pasted small and large).

The detector does not see the pasted cyclist under about 70 pixels (his crop is a rectangle of
street, not a person on a lawn), so "too small for landmarks" is made by raising the stage's
``landmark_height`` over the 80 pixels the people are pasted at: the same path a person 40
pixels tall in a real street takes."""

from __future__ import annotations

import numpy as np
import pytest

from models.perception.pose import (
    PoseOptions,
    PoseStage,
    Sample,
    plausible,
    running,
    standing_still,
    walking,
)
from tests.people_media import canvas, cyclist, place, stand

pytest.importorskip("mediapipe")
pytest.importorskip("onnxruntime")

XS = (0.12, 0.31, 0.5, 0.69, 0.88)


@pytest.fixture(scope="module")
def objects():
    from models.perception.objects import ObjectStage

    stage = ObjectStage()
    assert not stage.problem(), stage.problem()
    return stage


SMALL = PoseOptions(landmark_height=100)
"""People 80 pixels tall count as too small for landmarks (see the module's docstring)."""


def lawn(shift: int = 0, xs: tuple[float, ...] = XS, height: int = 80) -> np.ndarray:
    """Small people standing across the picture at ``xs``, moved ``shift`` pixels right."""
    picture = canvas()
    for x in xs:
        stand(picture, cyclist(), x + shift / 640, 0.6, height)
    return picture


def people(stage: PoseStage, t: float, frame: np.ndarray) -> list[dict]:
    (obs,) = stage.process(t, frame)
    assert obs.kind == "people" and obs.data["count"] == len(obs.data["people"])
    return obs.data["people"]


def test_far_people_are_counted_placed_and_not_judged(objects) -> None:
    """Five people too small for landmarks, found by the detector. Each is in its own place,
    far, and nothing is said of posture or arms."""
    far = people(PoseStage(SMALL, objects=objects), 0.0, lawn())
    assert len(far) == 5, far
    centres = sorted((p["box"][0] + p["box"][2]) / 2 for p in far)
    assert np.allclose(centres, XS, atol=0.04), centres
    assert all(p["distance"] == "far" and p["posture"] == "unknown" and not p["gestures"]
               for p in far), far
    assert len({p["id"] for p in far}) == 5


def test_a_near_person_still_gets_posture_from_the_landmarks(objects) -> None:
    picture = place(canvas(), cyclist(), 0.5, 320)
    (near,) = people(PoseStage(objects=objects), 0.0, picture)
    assert near["posture"] == "standing" and near["visibility"] > 0.5, near
    assert near["distance"] == "near"


def test_far_people_walking_and_running_across_the_picture(objects) -> None:
    """Small people moving right: 16 pixels each half second is walking (0.4 of their height
    a second), 70 is running (1.75 heights a second)."""
    for step, moving, xs in ((16, "walking", XS[:4]), (70, "running", XS[:2])):
        stage = PoseStage(SMALL, objects=objects)
        said: list[dict] = []
        for k in range(4):
            said = people(stage, 0.5 * k, lawn(shift=step * k - 40, xs=xs))
        assert len(said) == len(xs), said
        assert all(p["gestures"] == [moving] for p in said), (step, said)


def test_standing_still_is_neither_walking_nor_running(objects) -> None:
    stage = PoseStage(SMALL, objects=objects)
    first = people(stage, 0.0, lawn())
    assert {p["posture"] for p in first} == {"unknown"}  # one look cannot tell
    for k in range(1, 4):
        still = people(stage, 0.5 * k, lawn())
    assert len(still) == 5 and not any(p["gestures"] for p in still), still
    assert {p["posture"] for p in still} == {"standing"}, still


def test_without_the_detector_the_pose_stage_works_as_before(objects) -> None:
    """A pose stage built alone (mediapipe's own person detector) still finds a near person."""
    picture = place(canvas(), cyclist(), 0.5, 320)
    (alone,) = people(PoseStage(), 0.0, picture)
    assert alone["posture"] == "standing"


def test_a_small_box_at_the_edge_or_lying_wide_is_not_a_far_person() -> None:
    w, h = 640, 360
    assert plausible((100, 100, 115, 140), w, h)          # a small walker
    assert not plausible((570, 324, 640, 360), w, h)      # a fragment in the corner
    assert not plausible((100, 100, 160, 120), w, h)      # small and wide: not a whole body
    assert plausible((0, 40, 460, 360), w, h)             # a near person cut off by the frame


def test_the_pace_is_read_in_body_heights_a_second() -> None:
    def history(step: float, height: float = 40.0) -> list[Sample]:
        return [Sample(0.5 * k, None, (100 + step * k, 100, 115 + step * k, 100 + height))
                for k in range(4)]

    assert walking(history(12), 640) and not running(history(12), 640)
    assert running(history(45), 640)
    assert not walking(history(0), 640) and not running(history(0), 640)
    # The same pixels are a slow walk for someone near the camera.
    assert not running(history(45, height=300), 640)


def test_a_near_body_must_cross_further_to_be_walking() -> None:
    """A close-up shifts its box as the person turns: 90 pixels in 1.5 s (a seventh of the
    frame) is not a walk for a body 220 pixels tall, whose box the frame cuts (the stage asks a
    near body to cross 15% of the frame)."""
    sway = [Sample(0.5 * k, None, (200 + 30 * k, 140, 380 + 30 * k, 360)) for k in range(4)]
    assert walking(sway, 640, reach=0.05) and not walking(sway, 640, reach=0.15)


def test_a_gesture_follows_a_person_in_plain_words() -> None:
    from models.pipeline.phrases import person_detail

    p = {"posture": "standing", "gestures": ["arm raised"], "position": "right"}
    assert person_detail(p) == "standing with an arm raised on the right"
    p = {"posture": "unknown", "gestures": ["running"], "position": "left", "distance": "far"}
    assert person_detail(p) == "running on the left in the distance"


def test_standing_still_needs_an_upright_body_followed_for_a_second() -> None:
    def history(width: float, steps: int = 4, step: float = 0.0) -> list[Sample]:
        return [Sample(0.5 * k, None, (100 + step * k, 100, 100 + width + step * k, 160))
                for k in range(steps)]

    assert standing_still(history(25))
    assert not standing_still(history(25, steps=2))          # half a second: too soon
    assert not standing_still(history(50))                    # squarer: sitting, or a bag
    assert not standing_still(history(25, step=12))           # moving


class ManyPeople:
    """The detector's answer for a packed crowd: 310 person boxes, 10 of them large (the pose
    stage's bound on work is what is tested; the detector's own bound is tested with it)."""

    def problem(self) -> str:
        return ""

    def detections(self, t: float, frame: np.ndarray) -> list:
        from models.perception.objects import Detection

        boxes = [Detection("person", (0.1 * i, 0.0, 0.1 * i + 0.08, 0.3), 0.9) for i in range(10)]
        for row in range(10):
            for col in range(30):
                x, y = col / 30, 0.3 + row * 0.06
                boxes.append(Detection("person", (x, y, x + 0.02, y + 0.05), 0.9))
        return boxes


def test_hundreds_of_people_bound_the_work_per_frame() -> None:
    stage = PoseStage(objects=ManyPeople())
    runs: list[int] = []
    real = stage._landmarks

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    stage._landmarks = counted  # type: ignore[method-assign]
    crowd = people(stage, 0.0, canvas())
    opt = stage.options
    assert len(crowd) == opt.max_boxes  # 20 of the 310 are followed; the count is the detector's
    assert 0 < len(runs) <= opt.max_people  # landmarks for the largest few only
