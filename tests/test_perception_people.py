"""People and faces stages, with the real mediapipe models on real people (from the demo clip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.perception import Stage
from models.perception.faces import FaceOptions, FaceStage, facing
from models.perception.pose import (
    L_ANKLE,
    L_ELBOW,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NOSE,
    R_ANKLE,
    R_ELBOW,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    PoseOptions,
    PoseStage,
    Sample,
    gestures,
    posture,
    walking,
    waving,
)
from models.perception.tracking import Tracker
from tests import people_media as media

pytest.importorskip("mediapipe", reason="the perception extra is not installed")


@pytest.fixture(scope="module")
def pose() -> PoseStage:
    stage = PoseStage()
    assert stage.problem() == ""
    return stage


@pytest.fixture(scope="module")
def faces() -> FaceStage:
    stage = FaceStage()
    assert stage.problem() == ""
    return stage


@pytest.fixture(scope="module")
def two_people() -> np.ndarray:
    picture = media.canvas()
    media.place(picture, media.car_man(), 0.18, 300)
    media.place(picture, media.cyclist(), 0.82, 300)
    return picture


@pytest.fixture(scope="module")
def standing(pose: PoseStage) -> np.ndarray:
    """Real landmarks (pixels) of the cyclist standing by his bicycle."""
    picture = media.place(media.canvas(), media.cyclist(), 0.5, 320)
    found = pose.landmarks(picture)
    assert len(found) == 1
    return found[0]


def people(stage: PoseStage, t: float, frame: np.ndarray) -> dict:
    [obs] = stage.process(t, frame)
    assert obs.kind == "people" and obs.t == t
    assert obs.data["count"] == len(obs.data["people"])
    return obs.data


def test_both_stages_follow_the_protocol(pose: PoseStage, faces: FaceStage) -> None:
    for stage in (pose, faces):
        assert isinstance(stage, Stage)
        assert stage.flush() == []


def test_the_man_in_the_car_is_one_person_with_one_face_towards_the_camera(
        pose: PoseStage, faces: FaceStage) -> None:
    pose.reset()
    faces.reset()
    data = people(pose, 5.0, media.frame_at(5.0))
    assert data["count"] == 1
    [man] = data["people"]
    assert set(man) == {"id", "new", "position", "distance", "posture", "gestures", "box",
                        "visibility", "clothes"}
    assert man["clothes"] in ("", "black")  # a dark suit, if one colour clearly holds
    assert man["new"] is True
    assert man["position"] == "centre" and man["distance"] == "near"
    assert all(0 <= v <= 1 for v in man["box"]) and 0 < man["visibility"] <= 1
    [obs] = faces.process(5.0, media.frame_at(5.0))
    assert obs.kind == "faces" and obs.text == "1 face"
    [face] = obs.data["faces"]
    assert set(face) == {"id", "new", "facing", "box", "score"}
    assert face["facing"] == "camera" and face["score"] > 0.7


def test_two_people_side_by_side_and_nobody(pose: PoseStage, two_people: np.ndarray) -> None:
    pose.reset()
    data = people(pose, 0.0, two_people)
    assert data["count"] == 2
    assert [p["position"] for p in data["people"]] == ["left", "right"]
    assert len({p["id"] for p in data["people"]}) == 2
    assert data["people"][1]["posture"] == "standing"  # the cyclist
    pose.reset()
    assert people(pose, 0.0, media.canvas())["count"] == 0
    assert people(pose, 1.0, media.frame_at(16.2))["count"] == 0  # the road seen from above
    assert pose.process(2.0, media.canvas())[0].text == "no people"


def test_faces_of_two_people(faces: FaceStage) -> None:
    picture = media.canvas()
    media.place(picture, media.car_man(), 0.2, 300)
    media.place(picture, media.car_man()[:, ::-1], 0.8, 300)
    faces.reset()
    [obs] = faces.process(0.0, picture)
    assert obs.data["count"] == 2 and obs.text == "2 faces"
    assert faces.process(0.5, media.canvas())[0].data["count"] == 0


def test_ids_stay_with_the_man_in_the_car(pose: PoseStage, faces: FaceStage) -> None:
    pose.reset()
    faces.reset()
    person_ids, face_ids = set(), set()
    for t, frame in media.frames(5.0, 6.0)[::2]:
        data = people(pose, t, frame)
        assert data["count"] == 1
        person_ids.add(data["people"][0]["id"])
        face_ids |= {f["id"] for f in faces.process(t, frame)[0].data["faces"]}
    assert person_ids == {1} and face_ids == {1}


def test_a_person_crossing_the_picture_keeps_one_id(pose: PoseStage) -> None:
    pose.reset()
    crop = media.cyclist()
    seen = []
    for i in range(10):
        picture = media.place(media.canvas(), crop, 0.12 + i * 0.085, 300)
        data = people(pose, i * 0.2, picture)
        seen.extend(data["people"])
        if i == 4:  # a frame where he is hidden: the track survives it
            people(pose, i * 0.2 + 0.1, media.canvas())
    assert len(seen) >= 9
    assert {p["id"] for p in seen} == {1}
    assert seen[0]["position"] == "left" and seen[-1]["position"] == "right"
    assert any("walking" in p["gestures"] for p in seen)
    pose.reset()
    assert people(pose, 0.0, media.place(media.canvas(), crop, 0.5, 300))["people"][0]["id"] == 1


def test_a_person_on_their_side_is_lying(pose: PoseStage) -> None:
    pose.reset()
    turned = np.ascontiguousarray(np.rot90(media.frame_at(20.0)))
    data = people(pose, 0.0, turned)
    assert data["count"] == 1 and data["people"][0]["posture"] == "lying"


def test_posture_from_real_landmarks(standing: np.ndarray) -> None:
    assert posture(standing) == "standing"
    # Sitting: the same body with its thighs swung forward to horizontal, shins hanging down.
    sitting = standing.copy()
    for hip, knee, ankle in ((23, L_KNEE, L_ANKLE), (24, R_KNEE, R_ANKLE)):
        thigh = float(np.linalg.norm(standing[knee, :2] - standing[hip, :2]))
        shin = float(np.linalg.norm(standing[ankle, :2] - standing[knee, :2]))
        sitting[knee, :2] = sitting[hip, :2] + (thigh, 0.05 * thigh)
        sitting[ankle, :2] = sitting[knee, :2] + (0, shin)
        sitting[[knee, ankle], 2] = 1.0
    assert posture(sitting) == "sitting"
    hidden = standing.copy()
    hidden[23:, 2] = 0.0  # nothing below the waist: cannot tell
    assert posture(hidden) == "unknown"


def _move(lm: np.ndarray, idx: int, xy: np.ndarray) -> None:
    lm[idx, :2] = xy
    lm[idx, 2] = 1.0


def test_gestures_from_real_landmarks(standing: np.ndarray) -> None:
    lm = standing.copy()
    lm[[L_SHOULDER, R_SHOULDER, NOSE], 2] = 1.0
    width = abs(lm[L_SHOULDER, 0] - lm[R_SHOULDER, 0])
    up = np.array([0.0, -1.2 * width])
    raised = lm.copy()
    for s, e, w in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        _move(raised, e, raised[s, :2] + up)
        _move(raised, w, raised[s, :2] + 2.2 * up)
    assert gestures(raised) == ["arms raised"]
    on_head = lm.copy()
    for w, side in ((L_WRIST, 1), (R_WRIST, -1)):
        _move(on_head, w, on_head[NOSE, :2] + (0.3 * side * width, -0.2 * width))
    assert gestures(on_head) == ["hands on head"]
    pointing = lm.copy()
    out = np.sign(pointing[R_SHOULDER, 0] - pointing[L_SHOULDER, 0]) * width
    _move(pointing, R_ELBOW, pointing[R_SHOULDER, :2] + (0.9 * out, 0))
    _move(pointing, R_WRIST, pointing[R_SHOULDER, :2] + (1.8 * out, 0.05 * width))
    assert "pointing" in gestures(pointing)


def test_waving_and_walking_need_several_frames(standing: np.ndarray) -> None:
    box = (0.0, 0.0, 100.0, 300.0)
    width = abs(standing[L_SHOULDER, 0] - standing[R_SHOULDER, 0])
    history = []
    for i in range(8):
        lm = standing.copy()
        _move(lm, R_ELBOW, lm[R_SHOULDER, :2] + (0, -0.5 * width))
        _move(lm, R_WRIST, lm[R_ELBOW, :2] + ((-1) ** i * 0.6 * width, -width))
        history.append(Sample(i * 0.15, lm, box))
    assert waving(history) and not waving(history[:2])
    assert not waving([Sample(i * 0.15, standing, box) for i in range(8)])
    steps = []
    for i in range(8):
        lm = standing.copy()
        mid = (lm[L_ANKLE, :2] + lm[R_ANKLE, :2]) / 2
        stride = (-1) ** i * 0.5 * width
        _move(lm, L_ANKLE, mid + (stride, 0))
        _move(lm, R_ANKLE, mid - (stride, 0))
        steps.append(Sample(i * 0.15, lm, box))
    assert walking(steps, 640) and not walking(steps[:1], 640)
    assert not walking([Sample(i * 0.15, standing, box) for i in range(8)], 640)


def test_facing_from_keypoints() -> None:
    front = np.array([[40, 50], [60, 50], [50, 60], [50, 70], [30, 55], [70, 55]], float)
    assert facing(front) == "camera"
    turned = front.copy()
    turned[2, 0] = 38  # the nose swings towards the picture's left
    assert facing(turned) == "left"
    turned[2, 0] = 62
    assert facing(turned) == "right"


def test_tracker_ids_survive_a_short_gap_and_reset() -> None:
    tracker = Tracker(max_missed=2)
    assert tracker.update([(0.1, 0.1, 0.3, 0.9), (0.6, 0.1, 0.8, 0.9)], 0.0) == [1, 2]
    assert tracker.update([(0.62, 0.1, 0.82, 0.9)], 0.1) == [2]
    assert tracker.update([], 0.2) == []
    assert tracker.update([(0.12, 0.1, 0.32, 0.9), (0.65, 0.1, 0.85, 0.9)], 0.3) == [1, 2]
    for t in (0.4, 0.5, 0.6):
        tracker.update([], t)
    assert tracker.update([(0.1, 0.1, 0.3, 0.9)], 0.7) == [3]
    assert tracker.update([(0.1, 0.1, 0.3, 0.9)], 0.1) == [1]  # back in time: a seek
    tracker.reset()
    assert tracker.update([(0.5, 0.5, 0.6, 0.6)], 0.0) == [1]


def test_odd_frames_do_not_break_the_stages(pose: PoseStage, faces: FaceStage,
                                            two_people: np.ndarray) -> None:
    import cv2

    for stage in (pose, faces):
        stage.reset()
        tiny = stage.process(0.0, np.zeros((24, 32, 3), np.uint8))
        assert tiny[0].data["count"] == 0
        assert stage.process(0.1, np.zeros((360, 640, 3), np.uint8))[0].data["count"] == 0
        assert stage.process(0.2, np.zeros((0, 0, 3), np.uint8)) == []
    big = cv2.resize(two_people, (3840, 2160), interpolation=cv2.INTER_LINEAR)
    data = people(pose, 1.0, big)
    assert data["count"] == 2 and all(0 <= v <= 1 for p in data["people"] for v in p["box"])
    grey = cv2.cvtColor(media.frame_at(5.0), cv2.COLOR_RGB2GRAY)
    pose.reset()
    assert people(pose, 2.0, grey)["count"] == 1
    assert faces.process(2.0, grey)[0].data["count"] == 1


def test_missing_models_switch_the_stages_off(tmp_path: Path) -> None:
    for stage in (PoseStage(PoseOptions(model_root=tmp_path)),
                  FaceStage(FaceOptions(model_root=tmp_path))):
        assert "not found" in stage.problem() and str(tmp_path) in stage.problem()
        assert stage.process(0.0, media.frame_at(5.0)) == []
        assert stage.flush() == []
        stage.reset()


def test_a_far_body_is_too_small_to_judge_an_arm_by(standing: np.ndarray) -> None:
    """The same raised arms: said of someone near, not of a figure far away (cartoon birds
    and distant crowds gave "arm raised" and "points" from guessed landmarks)."""
    from models.perception.pose import PoseStage, _Person

    lm = standing.copy()
    lm[[L_SHOULDER, R_SHOULDER, NOSE], 2] = 1.0
    width = abs(lm[L_SHOULDER, 0] - lm[R_SHOULDER, 0])
    up = np.array([0.0, -1.2 * width])
    for s, e, w in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        _move(lm, e, lm[s, :2] + up)
        _move(lm, w, lm[s, :2] + 2.2 * up)
    xs, ys = lm[:, 0], lm[:, 1]
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    body = box[3] - box[1]
    stage = PoseStage()
    near = stage._describe(1, _Person(lm, box, 0.9), 0.0, 640, int(body * 1.2), [])
    far = stage._describe(2, _Person(lm, box, 0.9), 0.0, 640, int(body * 8), [])
    assert near["distance"] != "far" and near["gestures"] == ["arms raised"]
    assert far["distance"] == "far" and far["gestures"] == []
