"""Faces: how many, where, and which way each one looks, from mediapipe's face detectors.

Engine: the two BlazeFace models shipped in the mediapipe wheel, run through mediapipe's own
graphs (``FaceDetectionShortRangeCpu`` for faces close to the camera, ``FaceDetectionFullRangeCpu``
for smaller, further ones). Both run on the whole frame, and the full-range one also on square
tiles of a wide frame, since the detectors see a letterboxed square and small faces in a 16:9
frame would otherwise shrink below what they can find. Detections from all passes are merged by
overlap. On a 2-core CPU this costs about 15 to 30 ms for a 640x360 frame.

Which way a face looks comes from its six keypoints (eyes, nose tip, mouth, ear tragions): the nose
sits between the eyes and between the ears for a face turned to the camera, and moves towards one
side as the head turns. "left" and "right" are as the viewer sees the picture: "left" means the
face is turned towards the left edge of the frame. "away" is reported when the eye keypoints come
out in mirrored order, which the detector produces for the back or far side of a head.

This module also holds the small pieces shared with :mod:`models.perception.pose`: frame
normalisation, tiling and the loader for mediapipe graphs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.perception import Stage
from models.perception.identity import (
    Assignment,
    Identities,
    Signature,
    face_regions,
    signature,
)
from models.perception.shots import ShotStage
from models.perception.tracking import Tracker, iou
from models.types import Observation

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'video-narrator[perception]'"
MIN_SIDE = 40
"""Frames smaller than this (either side, in pixels) are too small to show anyone."""

SHORT_RANGE_MODEL = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
FULL_RANGE_MODEL = "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by pose.py)


def mediapipe_root() -> Path | None:
    """The folder that holds the installed ``mediapipe`` package, or None when not installed."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def missing_models(root: Path, models: Sequence[str]) -> str:
    """"" when every model file exists under ``root``; otherwise a message naming the first."""
    for rel in models:
        path = root / rel
        if not path.is_file() or path.stat().st_size == 0:
            return f"model file not found: {path}"
    return ""


def open_graph(config: str, root: Path, outputs: list[str],
               side_inputs: dict[str, Any] | None = None) -> Any:
    """Start a mediapipe graph whose model paths resolve under ``root``.

    mediapipe's ``SolutionBase`` resets the resource folder to its own package on construction;
    the subclass points it at ``root`` just before the graph starts, when the models load.
    """
    from mediapipe.python._framework_bindings import resource_util
    from mediapipe.python.solution_base import SolutionBase

    class _RootedGraph(SolutionBase):
        def _initialize_graph_interface(self, *args: Any, **kwargs: Any) -> Any:
            resource_util.set_resource_dir(str(root))
            return super()._initialize_graph_interface(*args, **kwargs)

    return _RootedGraph(graph_config=config, outputs=outputs, side_inputs=side_inputs)


def as_rgb(frame: Any, max_side: int) -> np.ndarray | None:
    """``frame`` as a contiguous RGB uint8 array no larger than ``max_side``; None if unusable.

    Grey (H, W) or (H, W, 1) frames become RGB, an alpha channel is dropped, other dtypes are
    clipped to 0..255, and large frames are scaled down (keeping the aspect ratio).
    """
    import cv2

    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.size == 0:
        return None
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr.astype(np.float32)), 0, 255).astype(np.uint8)
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        arr = cv2.resize(arr, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr)


def square_tiles(width: int, height: int, overlap: float = 0.35) -> list[tuple[int, int, int]]:
    """Square windows (x, y, side) covering a frame whose long side is well over its short one.

    Empty for frames close to square, which the models see well enough whole.
    """
    side = min(width, height)
    long = max(width, height)
    if long < side * 1.25:
        return []
    n = max(2, math.ceil((long - side) / (side * (1 - overlap))) + 1)
    starts = [round(i * (long - side) / (n - 1)) for i in range(n)]
    if width >= height:
        return [(s, 0, side) for s in starts]
    return [(0, s, side) for s in starts]


def position_of(box: Sequence[float]) -> str:
    """"left", "centre" or "right": which third of the frame the box's centre is in."""
    cx = (box[0] + box[2]) / 2
    return "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"


def nms(items: list[tuple[float, tuple[float, float, float, float], Any]],
        threshold: float = 0.3) -> list[tuple[float, tuple[float, float, float, float], Any]]:
    """Keep the best-scoring of overlapping (score, box, payload) items.

    Two boxes overlap when their IoU reaches ``threshold`` or when most of the smaller one lies
    inside the larger (two passes may frame the same face at different sizes).
    """
    kept: list[tuple[float, tuple[float, float, float, float], Any]] = []
    for item in sorted(items, key=lambda it: -it[0]):
        if all(iou(item[1], k[1]) < threshold and _inside(item[1], k[1]) < 0.6 for k in kept):
            kept.append(item)
    return kept


def _inside(a: Sequence[float], b: Sequence[float]) -> float:
    """The share of the smaller of two boxes that lies inside the other."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def follows_on(cuts: ShotStage, last: tuple[float, tuple[int, ...]] | None, t: float,
               rgb: np.ndarray) -> bool | None:
    """Whether the frame at ``t`` follows on from the ``last`` one (its time and shape), so the
    tracks of moving boxes can go on: False at a cut (``cuts`` sees every frame), at a frame
    earlier than the last, after a hole of more than ``cuts.options.max_gap`` seconds or at a
    change of frame size; None for the first frame."""
    cut = bool(cuts.process(t, rgb))
    if last is None:
        return None
    return not (cut or rgb.shape != last[1] or not 0 <= t - last[0] <= cuts.options.max_gap)


def clip_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in box)
    return (x0, y0, max(x0, x1), max(y0, y1))


# ---------------------------------------------------------------------------------------------
# Face detection


_FACE_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "DETECTIONS:detections"
node {{ calculator: "{calculator}" input_stream: "IMAGE:image"
        output_stream: "DETECTIONS:detections" }}
"""


@dataclass(frozen=True)
class FaceDetection:
    """One face in frame coordinates: box (fractions), score, and six keypoints in pixels."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(compare=False)
    """(6, 2) pixel positions: right eye, left eye, nose tip, mouth, right ear, left ear
    (the person's right and left)."""


def facing(keypoints: np.ndarray, threshold: float = 0.25) -> str:
    """"camera", "left", "right" or "away" from the six face keypoints (pixels).

    The nose's offset from the middle of the eyes, in eye distances, and the balance of its
    distances to the two ears both measure the head's turn; their mean decides.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    r_eye, l_eye, nose, _, r_ear, l_ear = kp[:6]
    eye_d = l_eye[0] - r_eye[0]
    if eye_d < 0 and abs(eye_d) > 0.05 * abs(l_ear[0] - r_ear[0]):
        return "away"
    eye_span = max(abs(eye_d), 1e-6)
    eye_turn = (nose[0] - (r_eye[0] + l_eye[0]) / 2) / eye_span
    to_r, to_l = abs(nose[0] - r_ear[0]), abs(l_ear[0] - nose[0])
    ear_turn = (to_l - to_r) / max(to_l + to_r, 1e-6)
    # eye_turn is about 0.5 for a half-turned head and ear_turn about -0.5 for the same turn.
    turn = (np.clip(eye_turn, -1.5, 1.5) - ear_turn) / 2
    if abs(turn) < threshold:
        return "camera"
    return "left" if turn < 0 else "right"


@dataclass
class FaceOptions:
    """Settings for :class:`FaceStage` (and the face pass of :class:`PoseStage`).

    ``model_root``: the folder holding ``mediapipe/modules/face_detection/...`` (default: the
    installed mediapipe package). ``min_score``: the least detector confidence kept.
    ``max_side``: frames are scaled down to this many pixels on the long side first.
    ``tiles``: also look at square tiles of wide frames (finds smaller faces, costs more).
    """

    model_root: Path | None = None
    min_score: float = 0.5
    max_side: int = 640
    tiles: bool = True


class FaceDetector:
    """Both BlazeFace models, run over a frame and its tiles, merged. Loads on first use."""

    def __init__(self, options: FaceOptions | None = None) -> None:
        self.options = options or FaceOptions()
        self._graphs: dict[str, Any] | None = None
        self._problem: str | None = None

    def problem(self) -> str:
        if self._problem is None:
            self._problem = self._load()
        return self._problem

    def _load(self) -> str:
        root, problem = model_folder(self.options.model_root,
                                     [SHORT_RANGE_MODEL, FULL_RANGE_MODEL], "face detection")
        if root is None:
            return problem
        try:
            self._graphs = {
                name: open_graph(_FACE_GRAPH.format(calculator=calc), Path(root), ["detections"])
                for name, calc in (("short", "FaceDetectionShortRangeCpu"),
                                   ("full", "FaceDetectionFullRangeCpu"))}
        except Exception as exc:  # mediapipe raises RuntimeError and friends; the stage goes off
            log.warning("face models failed to load", exc_info=True)
            return f"face detection is off: the models failed to load ({exc})"
        return ""

    def _run(self, name: str, image: np.ndarray) -> list[Any]:
        assert self._graphs is not None
        result = self._graphs[name].process({"image": image})
        return list(result.detections or [])

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Faces in an RGB uint8 frame (already normalised with :func:`as_rgb`)."""
        if self.problem():
            return []
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return []
        passes: list[tuple[str, int, int, int, int]] = [("short", 0, 0, w, h), ("full", 0, 0, w, h)]
        if self.options.tiles:
            passes += [("full", x, y, s, s) for x, y, s in square_tiles(w, h)]
        found: list[tuple[float, tuple[float, float, float, float], Any]] = []
        for name, x, y, tw, th in passes:
            crop = rgb if (tw, th) == (w, h) else np.ascontiguousarray(rgb[y:y + th, x:x + tw])
            for det in self._run(name, crop):
                score = float(det.score[0]) if det.score else 0.0
                if score < self.options.min_score:
                    continue
                rb = det.location_data.relative_bounding_box
                box = clip_box(((x + rb.xmin * tw) / w, (y + rb.ymin * th) / h,
                                (x + (rb.xmin + rb.width) * tw) / w,
                                (y + (rb.ymin + rb.height) * th) / h))
                kps = np.array([[x + k.x * tw, y + k.y * th]
                                for k in det.location_data.relative_keypoints], dtype=np.float64)
                if kps.shape != (6, 2) or box[2] <= box[0] or box[3] <= box[1]:
                    continue
                found.append((score, box, kps))
        return [FaceDetection(box, score, kps) for score, box, kps in nms(found)]


def model_folder(model_root: str | Path | None, models: Sequence[str],
                 what: str) -> tuple[Path | None, str]:
    """The folder holding mediapipe's ``models``, or (None, why ``what`` cannot run)."""
    try:
        import cv2  # noqa: F401, PLC0415
        import mediapipe  # noqa: F401, PLC0415
    except ImportError as exc:
        return None, f"mediapipe is not installed ({exc.name}): {INSTALL_HINT}"
    root = model_root or mediapipe_root()
    if root is None:
        return None, f"mediapipe is not installed: {INSTALL_HINT}"
    missing = missing_models(Path(root), list(models))
    if missing:
        return None, f"{what} is off: {missing}"
    return Path(root), ""


class FaceStage(Stage):
    """Counts faces and says which way each looks, with ids that last for the whole video.

    Emits one ``"faces"`` observation per frame (``count`` 0 included), see
    :mod:`models.perception` for the data. Ids come from the tracker and, across absences and
    shot changes, from the colours of the hair and the clothes just below the face (see
    :mod:`models.perception.identity`); ``new`` is True on a face's first frame. They are the
    face stage's own ids, not those of the people stage.
    """

    name = "faces"

    def __init__(self, options: FaceOptions | None = None,
                 cuts: ShotStage | None = None) -> None:
        self.options = options or FaceOptions()
        self._detector = FaceDetector(self.options)
        self._tracker = Tracker(max_missed=2)
        self._identities = Identities()
        self._cuts = cuts or ShotStage()
        self._last: tuple[float, tuple[int, ...]] | None = None

    def problem(self) -> str:
        return self._detector.problem()

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        found = self._faces(frame)
        if found is None:
            return []
        rgb, faces, signatures = found
        if follows_on(self._cuts, self._last, t, rgb) is False:
            self._tracker.reset()  # a cut, an earlier frame or a hole: new tracks, same faces
            self._identities.drop_tracks()
        self._last = (t, rgb.shape)
        tracks = self._tracker.update([f.box for f in faces], t)
        ids = self._identities.assign(t, list(zip(tracks, signatures, strict=True)),
                                      live={tr.id for tr in self._tracker.tracks})
        return [self._observation(t, faces, ids)]

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone (describe now: a frame from elsewhere in the film): the faces and
        their ids by appearance; the tracks of the stream are left as they were (a face not
        seen before joins the known ones)."""
        found = self._faces(frame)
        if found is None:
            return []
        _, faces, signatures = found
        return [self._observation(t, faces, self._identities.recognise(t, signatures))]

    def _faces(self, frame: np.ndarray) -> tuple[np.ndarray, list[FaceDetection],
                                                 list[Signature]] | None:
        """The frame as used, its faces from left to right and their signatures; None when
        the stage is off or the frame is not a picture."""
        if self.problem():
            return None
        rgb = as_rgb(frame, self.options.max_side)
        if rgb is None:
            log.warning("faces: skipped a frame that is not an image array (%r)",
                        getattr(frame, "shape", type(frame)))
            return None
        # A failure of the detector is raised: the worker counts it and, when it goes on frame
        # after frame, switches the stage off and tells the user (one bad frame does not).
        faces = self._detector.detect(rgb)
        faces.sort(key=lambda f: (f.box[0] + f.box[2]) / 2)
        h, w = rgb.shape[:2]
        signatures = [signature(rgb, face_regions((f.box[0] * w, f.box[1] * h, f.box[2] * w,
                                                   f.box[3] * h), w, h)) for f in faces]
        return rgb, faces, signatures

    @staticmethod
    def _observation(t: float, faces: list[FaceDetection], ids: list[Assignment]) -> Observation:
        items = [{"id": a.id, "new": a.new, "facing": facing(f.keypoints),
                  "box": [round(v, 4) for v in f.box], "score": round(f.score, 3)}
                 for a, f in zip(ids, faces, strict=True)]
        n = len(items)
        text = "no faces" if n == 0 else "1 face" if n == 1 else f"{n} faces"
        conf = float(np.mean([f.score for f in faces])) if faces else 1.0
        return Observation(t, "faces", text, conf, {"count": n, "faces": items})

    def flush(self) -> list[Observation]:
        return []

    def rewind(self) -> None:
        """The stream jumps within the same film (a seek): new tracks, the same faces."""
        self._tracker.reset()  # its ids start again at 1: they must not lead to the old faces
        self._identities.drop_tracks()
        self._cuts.reset()
        self._last = None

    def reset(self) -> None:
        """Forget the stream and every face in it: ids start again at 1."""
        self._tracker.reset()
        self._identities.reset()
        self._cuts.reset()
        self._last = None
