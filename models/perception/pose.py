"""People: how many, where, how far, standing or sitting, and what their arms and legs are doing.

Engine (measured on a 2-core CPU, 640x360 frames): mediapipe's BlazePose models shipped in the
wheel, the person detector (``pose_detection.tflite``) and the full landmark model
(``pose_landmark_full.tflite``), run through mediapipe's own graphs ``PoseDetectionCpu`` and
``PoseLandmarkByRoiCpu``. mediapipe's ready-made ``Pose`` solution follows only one person, so
this stage drives the two halves itself:

1. Proposals. With the object detector (:class:`~models.perception.objects.ObjectStage`, shared:
   one network run a frame serves both stages), its person boxes are the proposals, the largest
   first: it finds people at every size, down to about 30 pixels tall, where mediapipe's person
   detector finds mostly the largest. Without it, mediapipe's detector runs on the whole frame
   and on overlapping square tiles of a wide frame (it sees a letterboxed 224x224 square, and on
   a whole 16:9 frame it finds mostly the largest person: two people side by side gave one
   detection, three or four gave two). Either way, faces found by the BlazeFace detectors (see
   :mod:`models.perception.faces`) that no person explains become extra proposals, with a body
   region guessed below the face.
2. Landmarks. Each proposal, after merging proposals for the same body, gets one run of the
   landmark model on its rotated region (a detector's box: a square on its centre, upright);
   the model's own presence check drops proposals that are not people. A detector's person too
   small for landmarks (under ``landmark_height`` pixels), beyond ``max_people`` landmark runs,
   or whose landmarks fail, is kept as a box alone when it looks like a whole body
   (:func:`plausible`): counted, placed, followed and seen walking or running, with no posture
   and no gestures (a body that small cannot be judged).

Costs about 45 ms for the proposals plus about 20 ms per person; HOG people detection (tried as
the alternative) is slower and misses people cut off by the frame edge, which is most people in
films. Known limits: people whose face is tiny (under about 15 pixels) or who are seen only from
the waist down are often missed; a thin upright object (a pole, a bicycle leaning on a railing)
now and then passes as a person.

Everything read from the landmarks is this module's own geometry: posture from the torso's angle
and the thighs and knees, gestures from wrists, elbows and shoulders, and, across frames of the same
tracked person, waving (the wrist swinging while raised), walking (the ankles swapping places or
the body moving across the frame) and running (the body crossing the frame at
:data:`RUN_SPEED` of its own heights a second or more).

Ids: the tracker follows each person from frame to frame, and :mod:`models.perception.identity`
turns its short-lived tracks into stable ids for the whole video with a colour signature of the
person's clothes and hair, so someone who leaves the picture or is cut away from keeps their id
when they come back (and someone else standing where they stood gets another one).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.perception import Stage
from models.perception.faces import (
    MIN_SIDE,
    FaceDetector,
    FaceOptions,
    as_rgb,
    clip_box,
    follows_on,
    model_folder,
    open_graph,
    position_of,
    square_tiles,
)
from models.perception.identity import (
    Assignment,
    Identities,
    IdentityOptions,
    Signature,
    body_regions,
    signature,
)
from models.perception.shots import ShotStage
from models.perception.tracking import Tracker, iou
from models.types import Observation

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
"""A box (x0, y0, x1, y1), in pixels or fractions of the frame as said where it is used."""
NEAR, FAR = 0.6, 0.25
"""Apparent height, as a fraction of the frame's, over which a person is near and under which
they are far."""

DETECTOR_MODEL = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARK_MODEL = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"

# BlazePose landmark indices (the person's own left and right).
NOSE = 0
L_EAR, R_EAR = 7, 8
L_SHOULDER, R_SHOULDER = 11, 12
L_ELBOW, R_ELBOW = 13, 14
L_WRIST, R_WRIST = 15, 16
L_HIP, R_HIP = 23, 24
L_KNEE, R_KNEE = 25, 26
L_ANKLE, R_ANKLE = 27, 28
ARMS = ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST))
LEGS = ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE))

_DETECT_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "DETECTIONS:detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image"
       output_stream: "DETECTIONS:detections" }
"""

_LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
output_stream: "LANDMARKS:landmarks"
input_side_packet: "MODEL_COMPLEXITY:model_complexity"
input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
node { calculator: "PoseLandmarkByRoiCpu" input_stream: "IMAGE:image" input_stream: "ROI:roi"
       output_stream: "LANDMARKS:landmarks"
       input_side_packet: "MODEL_COMPLEXITY:model_complexity"
       input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation" }
"""


# ---------------------------------------------------------------------------------------------
# Geometry on one set of landmarks: an array (33, 3) of x and y in pixels and visibility 0..1.


def _seen(lm: np.ndarray, *idx: int, vis: float = 0.5) -> bool:
    return bool(np.all(lm[list(idx), 2] >= vis))


def _mid(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return (lm[a, :2] + lm[b, :2]) / 2


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """The angle at ``b`` (degrees) between b->a and b->c."""
    u, v = a[:2] - b[:2], c[:2] - b[:2]
    den = float(np.linalg.norm(u) * np.linalg.norm(v))
    if den == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(u, v)) / den))))


def _from_vertical(v: np.ndarray) -> float:
    """Angle (degrees, 0..90) between vector ``v`` and the vertical."""
    return math.degrees(math.atan2(abs(float(v[0])), abs(float(v[1])) + 1e-9))


def _torso(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Mid-shoulder and mid-hip points, from whichever sides are visible."""
    sh = [i for i in (L_SHOULDER, R_SHOULDER) if _seen(lm, i)]
    hp = [i for i in (L_HIP, R_HIP) if _seen(lm, i)]
    if not sh or not hp:
        return None
    return lm[sh, :2].mean(axis=0), lm[hp, :2].mean(axis=0)


def body_scale(lm: np.ndarray) -> float:
    """A length (pixels) for normalising: the torso, or the shoulders when the hips are hidden."""
    torso = _torso(lm)
    if torso is not None:
        return max(float(np.linalg.norm(torso[0] - torso[1])), 1.0)
    if _seen(lm, L_SHOULDER, R_SHOULDER):
        return max(1.5 * float(np.linalg.norm(lm[L_SHOULDER, :2] - lm[R_SHOULDER, :2])), 1.0)
    return 1.0


def posture(lm: np.ndarray) -> str:
    """"standing", "sitting", "lying" or "unknown" from one set of landmarks (pixels).

    Lying: the torso is more than 60 degrees from vertical. Otherwise the legs decide: a leg is
    straight when its thigh is within 30 degrees of vertical and the knee opens over 150 degrees
    (or the ankle is hidden), bent when the thigh leans over 55 degrees or the knee sits hardly
    lower than the hip. Any straight leg means standing; only bent legs mean sitting.
    """
    torso = _torso(lm)
    if torso is None:
        return "unknown"
    shoulders, hips = torso
    torso_len = float(np.linalg.norm(shoulders - hips))
    if torso_len < 1:
        return "unknown"
    if _from_vertical(shoulders - hips) > 60:
        return "lying"
    straight = bent = 0
    for hip, knee, ankle in LEGS:
        if not _seen(lm, hip, knee):
            continue
        thigh = lm[knee, :2] - lm[hip, :2]
        drop = float(thigh[1]) / torso_len
        lean = _from_vertical(thigh)
        if lean > 55 or drop < 0.35:
            bent += 1
        elif lean < 30 and (not _seen(lm, ankle) or _angle(lm[hip], lm[knee], lm[ankle]) > 150):
            straight += 1
    if straight:
        return "standing"
    if bent:
        return "sitting"
    return "unknown"


def gestures(lm: np.ndarray) -> list[str]:
    """Gestures readable from one set of landmarks: "hands on head", "arms raised" (both) or
    "arm raised" (one), "pointing" (one arm straight out sideways) or "arms outstretched"."""
    out: list[str] = []
    if not _seen(lm, L_SHOULDER, R_SHOULDER):
        return out
    shoulder_w = float(np.linalg.norm(lm[L_SHOULDER, :2] - lm[R_SHOULDER, :2]))
    scale = max(shoulder_w, 0.6 * body_scale(lm), 1.0)
    shoulder_y = float(min(lm[L_SHOULDER, 1], lm[R_SHOULDER, 1]))
    head_pts = [i for i in (NOSE, L_EAR, R_EAR) if _seen(lm, i)]
    head = lm[head_pts, :2].mean(axis=0) if head_pts else None
    wrists = [w for _, _, w in ARMS if _seen(lm, w)]
    if head is not None and len(wrists) == 2 and all(
            float(np.linalg.norm(lm[w, :2] - head)) < 0.8 * scale
            and lm[w, 1] < shoulder_y for w in wrists):
        return ["hands on head"]
    top = float(head[1]) if head is not None else shoulder_y - 0.5 * scale
    raised = [w for w in wrists if lm[w, 1] < min(top, shoulder_y - 0.5 * scale)]
    if len(raised) == 2:
        out.append("arms raised")
    elif raised:
        out.append("arm raised")
    out_arms = 0
    for s, e, w in ARMS:
        if not _seen(lm, s, e, w):
            continue
        reach = lm[w, :2] - lm[s, :2]
        level = _from_vertical(reach) > 60  # within 30 degrees of horizontal
        if _angle(lm[s], lm[e], lm[w]) > 150 and level and np.linalg.norm(reach) > 0.9 * scale:
            out_arms += 1
    if out_arms == 1:
        out.append("pointing")
    elif out_arms == 2:
        out.append("arms outstretched")
    return out


@dataclass(frozen=True)
class Sample:
    """One tracked person in one frame, kept for the gestures that need several frames."""

    t: float
    landmarks: np.ndarray | None
    """None for a person seen only as the object detector's box (too small for landmarks)."""
    box: Box
    """Pixels, (x0, y0, x1, y1)."""


def _reversals(values: Sequence[float], amplitude: float) -> int:
    """How often a series turns back by more than ``amplitude`` (peak to trough)."""
    turns, direction, extreme = 0, 0, values[0] if values else 0.0
    for v in values[1:]:
        if direction >= 0 and v > extreme:
            extreme = v
            direction = 1 if direction == 0 and v - values[0] > amplitude else direction
        elif direction <= 0 and v < extreme:
            extreme = v
            direction = -1 if direction == 0 and values[0] - v > amplitude else direction
        if direction >= 0 and extreme - v > amplitude:
            turns += 1 if direction == 1 else 0
            direction, extreme = -1, v
        elif direction <= 0 and v - extreme > amplitude:
            turns += 1 if direction == -1 else 0
            direction, extreme = 1, v
    return turns


def waving(history: Sequence[Sample]) -> bool:
    """A raised hand (wrist above its elbow) swinging sideways and back at least twice."""
    if len(history) < 4:
        return False
    for s, e, w in ARMS:
        xs = []
        for smp in history:
            lm = smp.landmarks
            if lm is None or not _seen(lm, s, e, w) or lm[w, 1] > lm[e, 1]:
                continue
            xs.append(float(lm[w, 0] - lm[e, 0]) / body_scale(lm))
        if len(xs) >= 4 and _reversals(xs, 0.25) >= 2:
            return True
    return False


RUN_SPEED = 1.5
"""Body heights a second across the picture from which a person runs: people walk at about
0.8 of their height a second (1.4 m/s) and run at two or more."""


def travel(history: Sequence[Sample]) -> float:
    """How far the body's centre moved across the picture from the first sample to the last,
    in pixels (right is positive)."""
    first, last = history[0], history[-1]
    return ((last.box[0] + last.box[2]) - (first.box[0] + first.box[2])) / 2


def speed(history: Sequence[Sample]) -> float:
    """How fast the body travels across the picture, in its own heights a second (0 for a
    history too short to tell)."""
    if len(history) < 3:
        return 0.0
    dt = history[-1].t - history[0].t
    if dt <= 0:
        return 0.0
    height = max(float(np.mean([s.box[3] - s.box[1] for s in history])), 1.0)
    return abs(travel(history)) / height / dt


def running(history: Sequence[Sample], frame_width: float) -> bool:
    """Running: the body crosses the picture at :data:`RUN_SPEED` or more, over a tenth of the
    frame's width (a camera that pans with a runner keeps them still: they then walk or stand,
    as their legs say)."""
    if len(history) < 3:
        return False
    return speed(history) >= RUN_SPEED and abs(travel(history)) > 0.1 * frame_width


def standing_still(history: Sequence[Sample]) -> bool:
    """A body seen only as a box stands still: followed for a second or more, upright (the
    box at least 1.6 times as tall as wide; a seated body is squarer) and hardly moving (under
    a tenth of its height a second)."""
    if len(history) < 3 or history[-1].t - history[0].t < 1.0:
        return False
    upright = all(s.box[3] - s.box[1] >= 1.6 * (s.box[2] - s.box[0]) for s in history)
    return upright and speed(history) < 0.1


def walking(history: Sequence[Sample], frame_width: float, reach: float = 0.05) -> bool:
    """Walking: the ankles swap places (side view) or rise in turn, or the body travels across
    the frame at more than a quarter of its height a second, over ``reach`` of its width."""
    if len(history) < 3:
        return False
    if speed(history) > 0.25 and abs(travel(history)) > reach * frame_width:
        return True
    gaps_x, gaps_y = [], []
    for smp in history:
        lm = smp.landmarks
        if lm is not None and _seen(lm, L_ANKLE, R_ANKLE, vis=0.6):
            scale = body_scale(lm)
            gaps_x.append(float(lm[L_ANKLE, 0] - lm[R_ANKLE, 0]) / scale)
            gaps_y.append(float(lm[L_ANKLE, 1] - lm[R_ANKLE, 1]) / scale)
    if len(gaps_x) < 4:
        return False
    return _reversals(gaps_x, 0.3) >= 1 or _reversals(gaps_y, 0.2) >= 2


def plausible(box: Box, width: int, height: int) -> bool:
    """Whether a detector's box, with no landmarks to confirm it, can stand for a person: a
    small (far) body is taller than it is wide (a walker two to three times), and a small box at
    the frame's edge is a fragment of something cut off (a corner of furniture, a hand), not a
    person far away. A large box may be anything a near person shows."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    if bh >= FAR * height:
        return True  # near enough to be cut off by the frame, and wide at the shoulders
    edge = box[0] <= 2 or box[1] <= 2 or box[2] >= width - 2 or box[3] >= height - 2
    return bh >= 0.8 * bw and not edge


# ---------------------------------------------------------------------------------------------
# The stage


@dataclass
class PoseOptions:
    """Settings for :class:`PoseStage`.

    ``model_root``: the folder holding ``mediapipe/modules/...`` (default: the installed
    mediapipe package). ``min_score``: the least person-detector confidence for a proposal.
    ``max_people``: at most this many landmark runs per frame (the largest people first).
    ``max_side``: frames are scaled down to this many pixels on the long side first.
    ``tiles``: also look at square tiles of wide frames. ``faces``: use faces as extra proposals.
    ``history``: seconds of each person's past used for waving and walking.
    ``identity``: the thresholds for knowing people again (see :class:`IdentityOptions`).

    With the object detector (``objects``), its person boxes are the proposals:
    ``landmark_height``: the least box height in pixels (of the frame as scaled to
    ``max_side``) for a landmark run; smaller people, and people over ``max_people``, are kept
    as boxes alone (counted, placed, tracked; no posture or gestures), at most ``max_boxes``
    people in all, those the detector scores under ``box_score`` left out.
    """

    model_root: Path | None = None
    min_score: float = 0.6
    max_people: int = 6
    max_side: int = 640
    tiles: bool = True
    faces: bool = True
    history: float = 2.5
    identity: IdentityOptions = field(default_factory=IdentityOptions)
    landmark_height: int = 48
    max_boxes: int = 20
    box_score: float = 0.45


@dataclass
class _Person:
    landmarks: np.ndarray | None  # (33, 3): x, y pixels, visibility; None: a detector box alone
    box: Box  # pixels
    score: float


class PoseStage(Stage):
    """Counts people and describes each one's place, distance, posture and gestures.

    Emits one ``"people"`` observation per frame (``count`` 0 included). ``id`` values stay with
    the same person for the whole video: through missed frames, absences and shot changes (see
    :mod:`models.perception.identity`); ``new`` is True on the first frame a person is seen.
    ``reset`` forgets everyone; a frame earlier than the last one (a seek without a reset)
    drops the tracks but keeps the people known so far. ``look`` sees one frame apart from the
    stream (describe now) and leaves the tracks alone.
    """

    name = "pose"

    def __init__(self, options: PoseOptions | None = None,
                 cuts: ShotStage | None = None, objects: Any = None) -> None:
        self.options = options or PoseOptions()
        # The object detector, shared (see :meth:`ObjectStage.detections`): its person boxes
        # are the proposals; without it, mediapipe's own person detector finds them.
        self._objects = objects
        self._graphs: tuple[Any, Any] | None = None
        self._faces = FaceDetector(FaceOptions(model_root=self.options.model_root, tiles=False))
        self._problem: str | None = None
        self._tracker = Tracker(max_missed=2)
        self._identities = Identities(self.options.identity)
        self._cuts = cuts or ShotStage()  # cuts end the tracks: across one, appearance alone decides
        self._history: dict[int, deque[Sample]] = {}
        self._last: tuple[float, tuple[int, ...]] | None = None  # time, shape of the last frame

    # -- loading --------------------------------------------------------------------------

    def problem(self) -> str:
        if self._problem is None:
            self._problem = self._load()
        return self._problem

    def _load(self) -> str:
        root, problem = model_folder(self.options.model_root, [DETECTOR_MODEL, LANDMARK_MODEL],
                                     "pose detection")
        if root is None:
            return problem
        try:
            detect = open_graph(_DETECT_GRAPH, Path(root), ["detections"])
            landmarks = open_graph(_LANDMARK_GRAPH, Path(root), ["landmarks"],
                                   {"model_complexity": 1, "enable_segmentation": False})
        except Exception as exc:  # mediapipe raises RuntimeError and friends; the stage goes off
            log.warning("pose models failed to load", exc_info=True)
            return f"pose detection is off: the models failed to load ({exc})"
        self._graphs = (detect, landmarks)
        if self.options.faces and self._faces.problem():
            log.info("pose: no face proposals: %s", self._faces.problem())
        return ""

    # -- one frame ------------------------------------------------------------------------

    def _proposals(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Regions to run the landmark model on: (score, centre x, centre y, side, rotation),
        pixels and radians, as mediapipe's PoseDetectionToRoi computes them."""
        assert self._graphs is not None
        h, w = rgb.shape[:2]
        # Tiles of a wide frame each hold the full height, so together they replace the whole.
        windows = [(x, y, s, s) for x, y, s in square_tiles(w, h)] if self.options.tiles else []
        windows = windows or [(0, 0, w, h)]
        out = []
        for x, y, tw, th in windows:
            crop = rgb if (tw, th) == (w, h) else np.ascontiguousarray(rgb[y:y + th, x:x + tw])
            for det in self._graphs[0].process({"image": crop}).detections or []:
                score = float(det.score[0]) if det.score else 0.0
                kps = det.location_data.relative_keypoints
                if score < self.options.min_score or len(kps) < 2:
                    continue
                hx, hy = x + kps[0].x * tw, y + kps[0].y * th
                cx, cy = x + kps[1].x * tw, y + kps[1].y * th
                side = 2.5 * math.hypot(cx - hx, cy - hy)
                rot = math.pi / 2 - math.atan2(-(cy - hy), cx - hx)
                rot -= 2 * math.pi * math.floor((rot + math.pi) / (2 * math.pi))
                out.append((score, hx, hy, side, rot))
        out.sort(key=lambda p: -p[0])
        kept: list[tuple[float, float, float, float, float]] = []
        for p in out:
            if all(math.hypot(p[1] - k[1], p[2] - k[2]) > 0.3 * max(p[3], k[3]) for k in kept):
                kept.append(p)
        return kept

    def _landmarks(self, rgb: np.ndarray, cx: float, cy: float, side: float,
                   rot: float) -> np.ndarray | None:
        from mediapipe.framework.formats import rect_pb2

        assert self._graphs is not None
        h, w = rgb.shape[:2]
        roi = rect_pb2.NormalizedRect(x_center=cx / w, y_center=cy / h, width=side / w,
                                      height=side / h, rotation=rot)
        result = self._graphs[1].process({"image": rgb, "roi": roi}).landmarks
        if result is None:
            return None
        return np.array([[p.x * w, p.y * h, p.visibility] for p in result.landmark])

    @staticmethod
    def _box(lm: np.ndarray, w: int, h: int) -> tuple[float, float, float, float] | None:
        """Pixel box around the visible landmarks, grown to take in the top of the head."""
        vis = lm[:, 2] >= 0.5
        if vis.sum() < 4:
            return None
        pts = lm[vis, :2]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        head = 0.0
        if _seen(lm, L_EAR, R_EAR):
            head = 0.6 * float(np.linalg.norm(lm[L_EAR, :2] - lm[R_EAR, :2]))
        pad = 0.04 * (x1 - x0)
        box = (max(0.0, x0 - pad), max(0.0, y0 - max(head, 0.04 * (y1 - y0))),
               min(float(w), x1 + pad), min(float(h), y1 + 0.02 * (y1 - y0)))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        return box

    def _detected(self, t: float, frame: np.ndarray) -> list[tuple[float, Box]] | None:
        """The object detector's people in ``frame`` as (score, box in fractions), largest
        first; None without a working detector (mediapipe's then proposes)."""
        objects = self._objects
        if objects is None or objects.problem():
            return None
        try:
            found = objects.detections(t, frame)
        except Exception:  # noqa: BLE001 - the detector failing leaves mediapipe's proposals
            log.warning("pose: the object detector failed; mediapipe proposes", exc_info=True)
            return None
        people = [(float(d.score), tuple(d.box)) for d in found if d.label == "person"]
        people.sort(key=lambda p: -(p[1][2] - p[1][0]) * (p[1][3] - p[1][1]))
        return people

    def _people(self, rgb: np.ndarray,
                detected: list[tuple[float, Box]] | None = None) -> list[_Person]:
        h, w = rgb.shape[:2]
        people: list[_Person] = []
        left: list[tuple[float, Box]] = []  # the detector's people the landmarks do not explain
        opt = self.options

        def free(box: Box) -> bool:
            return all(iou(box, other.box) <= 0.45 for other in people)

        def add(score: float, cx: float, cy: float, side: float, rot: float,
                near: Box | None = None) -> bool:
            lm = self._landmarks(rgb, cx, cy, side, rot)
            if lm is None or not (_seen(lm, L_SHOULDER) or _seen(lm, R_SHOULDER)):
                return False
            box = self._box(lm, w, h)
            if box is None or not free(box):
                return False
            if near is not None and iou(box, near) < 0.3:
                return False  # the landmarks found another body, or none: the box is kept
            people.append(_Person(lm, box, score))
            return True

        if detected is None:
            for p in self._proposals(rgb)[:opt.max_people]:
                add(*p)
        else:
            boxes = [(score, (b[0] * w, b[1] * h, b[2] * w, b[3] * h)) for score, b in detected]
            runs = 0
            for score, b in boxes:
                bw, bh = b[2] - b[0], b[3] - b[1]
                if runs < opt.max_people and bh >= opt.landmark_height:
                    runs += 1
                    side = 1.25 * max(bw, bh)
                    if add(score, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, side, 0.0, near=b):
                        continue
                left.append((score, b))
        if self.options.faces and not self._faces.problem():
            for face in self._faces.detect(rgb):
                if sum(p.landmarks is not None for p in people) >= opt.max_people:
                    break
                fx0, fy0, fx1, fy1 = face.box[0] * w, face.box[1] * h, face.box[2] * w, face.box[3] * h
                fcx, fcy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
                if any(b.box[0] <= fcx <= b.box[2] and b.box[1] <= fcy <= b.box[3]
                       for b in people):
                    continue
                fh = max(fx1 - fx0, fy1 - fy0)
                # An upright body: hips about three face heights below the face.
                add(face.score, fcx, fcy + 3.2 * fh, 10 * fh, 0.0)
        # The detector's people whom no landmarks explain: far away, or close and turned.
        for score, b in left:
            if len(people) >= opt.max_boxes:
                break
            if score >= opt.box_score and plausible(b, w, h) and free(b) and not any(
                    b[0] <= (o.box[0] + o.box[2]) / 2 <= b[2]
                    and b[1] <= (o.box[1] + o.box[3]) / 2 <= b[3] for o in people):
                people.append(_Person(None, b, score))
        return people

    def _describe(self, pid: int, person: _Person, t: float, w: int, h: int,
                  history: Sequence[Sample]) -> dict[str, Any]:
        """One person's entry; ``history``: their recent samples, this frame's last. A person
        seen as a detector's box alone gets where, how far and whether they move or stand
        still; with landmarks, their posture and gestures too."""
        lm = person.landmarks
        box = clip_box((person.box[0] / w, person.box[1] / h, person.box[2] / w, person.box[3] / h))
        # Apparent full height: a close-up cut off by the frame is still near.
        apparent = box[3] - box[1]
        # A near body, cut off by the frame, shifts its box whenever it turns or leans: it
        # must cross three times as far to be walking.
        reach = 0.15 if apparent > NEAR else 0.05
        moving = ["running"] if running(history, w) else \
            ["walking"] if walking(history, w, reach) else []
        if lm is not None and _seen(lm, L_SHOULDER, R_SHOULDER):
            apparent = max(apparent, 3.5 * float(
                np.linalg.norm(lm[L_SHOULDER, :2] - lm[R_SHOULDER, :2])) / h)
        torso = _torso(lm) if lm is not None else None
        if torso is not None:
            apparent = max(apparent, 3.0 * float(np.linalg.norm(torso[0] - torso[1])) / h)
        distance = "near" if apparent > NEAR else "far" if apparent < FAR else "middle"
        # A far body is too small to judge an arm by: its gestures would be guesses.
        found = gestures(lm) if lm is not None and distance != "far" else []
        if lm is not None and waving(history):
            found.append("waving")
        if lm is not None:
            stance = posture(lm)
        else:
            stance = "standing" if standing_still(history) else "unknown"
        return {"id": pid, "position": position_of(box), "distance": distance,
                "posture": stance, "gestures": found + moving,
                "box": [round(v, 4) for v in box],
                "visibility": round(float(lm[:, 2].mean()), 3) if lm is not None else 0.0}

    def landmarks(self, frame: np.ndarray) -> list[np.ndarray]:
        """The raw landmarks of everyone in ``frame``: one (33, 3) array each, x and y in pixels
        of the frame as scaled to ``max_side``, and visibility 0..1 (for tools and tests)."""
        if self.problem():
            return []
        rgb = as_rgb(frame, self.options.max_side)
        if rgb is None or min(rgb.shape[:2]) < MIN_SIDE:
            return []
        return [p.landmarks for p in self._people(rgb, self._detected(-1.0, frame))
                if p.landmarks is not None]

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        found = self._find(t, frame)
        if found is None:
            return []
        rgb, people = found
        h, w = rgb.shape[:2]
        self._check_continuity(t, rgb)
        ids = self._identify(t, rgb, people)
        self._history = {k: v for k, v in self._history.items()
                         if v and t - v[-1].t <= self.options.history}
        items = []
        for a, p in zip(ids, people, strict=True):
            history = self._history.setdefault(a.id, deque())
            history.append(Sample(t, p.landmarks, p.box))
            while history and t - history[0].t > self.options.history:
                history.popleft()
            items.append(self._describe(a.id, p, t, w, h, history) | self._seen_as(a))
        return [self._observation(t, people, items)]

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone (describe now: a frame from elsewhere in the film): the people,
        their ids by appearance, and what one frame shows (no waving or walking); the tracks
        of the stream are left as they were (someone not seen before joins the known people)."""
        found = self._find(t, frame)
        if found is None:
            return []
        rgb, people = found
        h, w = rgb.shape[:2]
        ids = self._identities.recognise(t, self._signatures(rgb, people))
        items = [self._describe(a.id, p, t, w, h, [Sample(t, p.landmarks, p.box)])
                 | self._seen_as(a) for a, p in zip(ids, people, strict=True)]
        return [self._observation(t, people, items)]

    def _seen_as(self, a: Any) -> dict[str, Any]:
        """Whether the person is new, and the colour of their clothes (the composer names
        people beyond the first few by it)."""
        return {"new": a.new, "clothes": self._identities.clothing_colour(a.id)}

    def _find(self, t: float, frame: np.ndarray) -> tuple[np.ndarray, list[_Person]] | None:
        """The frame as used and its people from left to right; None when the stage is off or
        the frame is not a picture."""
        if self.problem():
            return None
        rgb = as_rgb(frame, self.options.max_side)
        if rgb is None:
            log.warning("pose: skipped a frame that is not an image array (%r)",
                        getattr(frame, "shape", type(frame)))
            return None
        # A failure of the models is raised: the worker counts it and, when it goes on frame
        # after frame, switches the stage off and tells the user (one bad frame does not).
        people = self._people(rgb, self._detected(t, frame)) \
            if min(rgb.shape[:2]) >= MIN_SIDE else []
        people.sort(key=lambda p: (p.box[0] + p.box[2]) / 2)
        return rgb, people

    @staticmethod
    def _observation(t: float, people: list[_Person], items: list[dict[str, Any]]) -> Observation:
        n = len(items)
        text = "no people" if n == 0 else "1 person" if n == 1 else f"{n} people"
        conf = float(np.mean([p.score for p in people])) if people else 1.0
        return Observation(t, "people", text, conf, {"count": n, "people": items})

    @staticmethod
    def _signatures(rgb: np.ndarray, people: list[_Person]) -> list[Signature]:
        h, w = rgb.shape[:2]
        return [signature(rgb, body_regions(p.landmarks, p.box, w, h)) for p in people]

    def _identify(self, t: float, rgb: np.ndarray, people: list[_Person]) -> list[Assignment]:
        """Stable ids for this frame's people: tracks, then appearance."""
        h, w = rgb.shape[:2]
        tracks = self._tracker.update([(p.box[0] / w, p.box[1] / h, p.box[2] / w, p.box[3] / h)
                                       for p in people], t)
        signatures = self._signatures(rgb, people)
        return self._identities.assign(t, list(zip(tracks, signatures, strict=True)),
                                       live={tr.id for tr in self._tracker.tracks})

    def _check_continuity(self, t: float, rgb: np.ndarray) -> None:
        """Drop the tracks where the picture does not follow on from the last frame: a cut, a
        frame earlier than the last (a seek), a long hole or another frame size.
        Who is who is then decided by appearance alone; the people known so far stay known."""
        if follows_on(self._cuts, self._last, t, rgb) is False:
            self._drop_tracks()
        self._last = (t, rgb.shape)

    def _drop_tracks(self) -> None:
        self._tracker.reset()
        self._identities.drop_tracks()
        self._history.clear()

    def flush(self) -> list[Observation]:
        return []

    def rewind(self) -> None:
        """The stream jumps within the same film (a seek): new tracks, the same people."""
        self._drop_tracks()
        self._cuts.reset()
        self._last = None

    def reset(self) -> None:
        """Forget the stream and everyone in it: ids start again at 1."""
        self._drop_tracks()
        self._identities.reset()
        self._cuts.reset()
        self._last = None
