"""On-screen text (titles, signs, captions), read once when it appears.

Engines sit behind one small interface, :class:`OcrEngine` (``problem()`` and ``read()``), in a
ranked chain: :class:`RapidOcrEngine` (the ``rapidocr`` package, whose ONNX models ship inside
its wheel and run on onnxruntime), then :class:`TesseractEngine` (the ``tesseract`` program),
then nothing: :class:`TextStage` then reports the problem, with the fix, and returns no
observations.

When the stage reads (cost control: OCR is the most expensive cheap stage):

- the detector runs at most every ``interval`` seconds (default 1 s), at once after a shot
  change (``process(..., shot_change=True)`` or :meth:`TextStage.note_shot_change`), and early
  (but not within ``min_interval``) when the picture's fine detail rose somewhere since the last
  read, which is what a caption or title appearing looks like;
- recognition runs only on the regions the detector found (rapidocr skips it when there are
  none);
- frames are scaled down to at most ``max_width`` pixels wide (default 960).

What it says (the read-once rule): every line read (score at least ``min_score``, with at least
two letters or digits) is compared with the lines already known on screen. A line is new when
its normalised text (lower case, punctuation and spaces collapsed) has a similarity below
``same_above`` (0.8; for short lines less, so one misread letter in "EXIT" still matches)
with every known line and neither contains the other. New lines are emitted
together as one ``"text"`` observation ({"lines", "new": True, "box"}, box the union of their
boxes); known lines are not repeated while they stay on screen, even across shot changes. A
line is forgotten once no read has seen it for ``forget_after`` seconds (default 1.5 s), so the
same text appearing again later is read again. :meth:`TextStage.look` reads one frame from
elsewhere in the film (describe now) in full, every line, without changing what is known.

An engine that fails raises: the worker counts failures and switches the stage off when they
come frame after frame; a failed read is not recorded, so the next frame is read again.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from models.perception import Stage
from models.perception.frames import load_cv2, luma, prepare_frame, shrink
from models.types import Observation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextLine:
    """One line of text an engine read: its words, confidence 0..1 and box (fractions)."""

    text: str
    score: float
    box: tuple[float, float, float, float]


class OcrEngine(ABC):
    """Reads the lines of text in an RGB ``uint8`` image. One instance per thread."""

    name: str = "ocr"

    @abstractmethod
    def problem(self) -> str:
        """"" when usable; otherwise why not, with the fix (never raises)."""

    @abstractmethod
    def read(self, rgb: np.ndarray) -> list[TextLine]:
        """The lines in ``rgb``, top to bottom; [] quickly when the detector finds no text."""


class RapidOcrEngine(OcrEngine):
    """RapidOCR (PP-OCR models shipped in the ``rapidocr`` wheel, run on onnxruntime)."""

    name = "rapidocr"
    HINT = "pip install rapidocr (its text models ship inside the package)"

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._engine: Any = None
        self._error: str | None = None

    def _load(self) -> Any:
        if self._engine is not None or self._error is not None:
            return self._engine
        try:
            from rapidocr import RapidOCR
        except Exception as exc:  # noqa: BLE001 - ImportError or a broken native dependency
            self._error = f"rapidocr is not usable ({exc}): {self.HINT}"
            return None
        params = {
            "Global.log_level": "error",
            "Global.use_cls": False,  # upright text only: the angle classifier costs time
            "Det.limit_type": "max",
            "Det.limit_side_len": 960,
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        try:
            self._engine = RapidOCR(params=params)
        except Exception as exc:  # noqa: BLE001 - a broken install must become a problem message
            self._error = f"rapidocr could not start ({exc}): {self.HINT}"
            return None
        self._error = ""
        return self._engine

    def problem(self) -> str:
        self._load()
        return self._error or ""

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        engine = self._load()
        if engine is None:
            return []
        h, w = rgb.shape[:2]
        result = engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it expects BGR, as cv2 reads
        boxes, txts, scores = (getattr(result, k, None) for k in ("boxes", "txts", "scores"))
        if boxes is None or txts is None or scores is None:
            return []
        lines = []
        for box, text, score in zip(boxes, txts, scores, strict=False):
            pts = np.asarray(box, dtype=np.float32).reshape(-1, 2)
            frac = (float(pts[:, 0].min()) / w, float(pts[:, 1].min()) / h,
                    float(pts[:, 0].max()) / w, float(pts[:, 1].max()) / h)
            lines.append(TextLine(str(text), float(score), _clip_box(frac)))
        return lines


class TesseractEngine(OcrEngine):
    """The ``tesseract`` program (Debian: tesseract-ocr, tesseract-ocr-eng), through its CLI."""

    name = "tesseract"
    HINT = "install Tesseract: sudo apt install tesseract-ocr tesseract-ocr-eng"

    def __init__(self, program: str = "tesseract", language: str = "eng",
                 timeout: float = 20.0) -> None:
        self.program = program
        self.language = language
        self.timeout = timeout
        self._error: str | None = None

    def problem(self) -> str:
        if self._error is None:
            path = shutil.which(self.program)
            if path is None:
                self._error = f"the {self.program} program was not found: {self.HINT}"
            else:
                self.program = path
                try:
                    proc = subprocess.run([path, "--list-langs"], capture_output=True, text=True,
                                          timeout=self.timeout)
                    langs = proc.stdout.split()
                except (OSError, subprocess.SubprocessError) as exc:
                    langs, self._error = [], f"{path} did not run ({exc}): {self.HINT}"
                if self._error is None:
                    self._error = "" if self.language in langs else (
                        f"Tesseract has no '{self.language}' language data: "
                        f"sudo apt install tesseract-ocr-{self.language}")
        return self._error

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        """Two passes: bright text alone (white or yellow captions and titles, drawn black on
        white for Tesseract), then the plain grayscale picture; lines of the second pass that
        mostly overlap a line of the first are dropped."""
        if self.problem():
            return []
        gray = (luma(rgb) * 255).astype(np.uint8)
        bright = np.where(gray > 200, 0, 255).astype(np.uint8)
        lines = self._pass(bright) if (gray > 200).mean() < 0.5 else []
        for line in self._pass(gray):
            if not any(_overlap(line.box, kept.box) > 0.5 for kept in lines):
                lines.append(line)
        lines.sort(key=lambda ln: (ln.box[1], ln.box[0]))
        return lines

    def _pass(self, gray: np.ndarray) -> list[TextLine]:
        h, w = gray.shape
        image = f"P5 {w} {h} 255\n".encode("ascii") + np.ascontiguousarray(gray).tobytes()
        try:
            proc = subprocess.run([self.program, "stdin", "stdout", "-l", self.language,
                                   "--psm", "11", "tsv"], input=image, capture_output=True,
                                  timeout=self.timeout)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("tesseract failed: %s", exc)
            return []
        if proc.returncode != 0:
            log.warning("tesseract failed: %s", proc.stderr.decode(errors="replace")[-300:])
            return []
        return _tsv_lines(proc.stdout.decode("utf-8", errors="replace"), w, h)


def _tsv_lines(tsv: str, w: int, h: int) -> list[TextLine]:
    """Words of Tesseract's TSV output grouped into lines (block, paragraph, line)."""
    groups: dict[tuple[str, str, str], list[tuple[str, float, int, int, int, int]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        try:
            left, top, width, height = (int(c) for c in cols[6:10])
            conf = float(cols[10])
        except ValueError:
            continue
        if conf < 0:
            continue
        groups.setdefault((cols[2], cols[3], cols[4]), []).append(
            (cols[11].strip(), conf / 100.0, left, top, left + width, top + height))
    lines = []
    for words in groups.values():
        words.sort(key=lambda wd: wd[2])
        box = (min(wd[2] for wd in words) / w, min(wd[3] for wd in words) / h,
               max(wd[4] for wd in words) / w, max(wd[5] for wd in words) / h)
        lines.append(TextLine(" ".join(wd[0] for wd in words),
                              float(np.mean([wd[1] for wd in words])), _clip_box(box)))
    lines.sort(key=lambda ln: (ln.box[1], ln.box[0]))
    return lines


class NoOcr(OcrEngine):
    """The end of the chain: reads nothing, and says how to get an engine."""

    name = "none"

    def __init__(self, why: str = "") -> None:
        self.why = why or (f"No text reader is available: {RapidOcrEngine.HINT}, "
                           f"or {TesseractEngine.HINT}.")

    def problem(self) -> str:
        return self.why

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        return []


ENGINES: Mapping[str, Callable[[], OcrEngine]] = {"rapidocr": RapidOcrEngine,
                                                  "tesseract": TesseractEngine}
"""The engines by name."""

DEFAULT_ORDER = ("rapidocr", "tesseract")


def choose_ocr(engines: Sequence[OcrEngine | str] = DEFAULT_ORDER,
               factories: Mapping[str, Callable[[], OcrEngine]] = ENGINES,
               ) -> tuple[OcrEngine, tuple[str, ...]]:
    """The first usable engine of ``engines`` (instances or names), and notes on those passed over.

    When none is usable the result is a :class:`NoOcr` whose ``problem()`` gathers why.
    """
    notes: list[str] = []
    for item in engines:
        if isinstance(item, str):
            factory = factories.get(item)
            if factory is None:
                notes.append(f"{item}: no such text reader (known: {', '.join(factories)}).")
                continue
            try:
                engine: OcrEngine | None = factory()
            except Exception as exc:  # noqa: BLE001 - a broken optional engine must not stop us
                notes.append(f"{item}: could not start ({exc})")
                continue
            label = item
        else:
            engine, label = item, item.name
        if engine is None:
            continue
        try:
            problem = engine.problem()
        except Exception as exc:  # noqa: BLE001 - same: report it and try the next one
            problem = f"could not start ({exc})"
        if not problem:
            if notes:
                notes.append(f"Reading text with {engine.name}.")
            return engine, tuple(notes)
        notes.append(f"{label}: {problem}")
    why = "No text reader is usable. " + " ".join(notes) if notes else ""
    return NoOcr(why), tuple(notes)


@dataclass(frozen=True)
class TextOptions:
    """When :class:`TextStage` reads, and what it keeps."""

    interval: float = 1.0
    """Most seconds between two reads of a steady picture."""
    min_interval: float = 0.2
    """Least seconds between two reads triggered by new detail (shot changes always read)."""
    max_width: int = 960
    """Frames wider than this are scaled down before reading."""
    min_score: float = 0.6
    """Lines the engine is less sure of are dropped."""
    same_above: float = 0.8
    """Normalised similarity at or above which two lines are the same text."""
    forget_after: float = 1.5
    """Seconds unseen after which a line is forgotten (and would be read again)."""
    detail_rise: float = 0.12
    """Rise of edge density in a cell of a 8x6 grid that makes an early read."""


def normalise(text: str) -> str:
    """Lower case, with runs of punctuation and spaces collapsed to one space."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two texts after :func:`normalise`."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return 1.0 if na == nb else 0.0
    return SequenceMatcher(None, na, nb).ratio()


def _same(a: str, b: str, same_above: float) -> bool:
    """Two normalised lines are the same text (see the module notes)."""
    if a == b or (min(len(a), len(b)) >= 4 and (a in b or b in a)):
        return True
    # One misread character in a short word costs much similarity: allow about 1 in 4.
    bar = min(same_above, 1.0 - 1.5 / max(len(a), len(b), 1))
    return SequenceMatcher(None, a, b).ratio() >= bar


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection of two boxes over the smaller one's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(smaller, 1e-9)


def _clip_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in box)
    return (round(x0, 4), round(y0, 4), round(x1, 4), round(y1, 4))


FRAGMENT_SCORE = 0.85
"""A fragment without words (a lone number such as "16.6") is read only this sure..."""
FRAGMENT_HEIGHT = 0.04
"""...and at least this tall (a share of the frame's height): small numbers in a picture are
dials, plates and reflections far more often than text meant for the viewer."""
TINY_HEIGHT = 0.022
"""Lines shorter than this share of the frame's height are read only when nearly certain."""
TINY_SCORE = 0.9


def _useful(line: TextLine, min_score: float) -> bool:
    alnum = sum(ch.isalnum() for ch in line.text)
    visible = sum(not ch.isspace() for ch in line.text)
    if line.score < min_score or alnum < 2 or alnum < 0.5 * visible:
        return False
    height = line.box[3] - line.box[1]
    if sum(ch.isalpha() for ch in line.text) < 2 and (line.score < FRAGMENT_SCORE
                                                       or height < FRAGMENT_HEIGHT):
        return False
    return height >= TINY_HEIGHT or line.score >= TINY_SCORE


class TextStage(Stage):
    """Reads on-screen text once when it appears (see the module notes for the rule)."""

    name = "text"

    def __init__(self, engines: Sequence[OcrEngine | str] = DEFAULT_ORDER,
                 options: TextOptions | None = None) -> None:
        self.options = options or TextOptions()
        self._choices = tuple(engines)
        self._engine: OcrEngine | None = None
        self._notes: tuple[str, ...] = ()
        self._known: dict[str, tuple[str, float]] = {}  # normalised -> (as read, last seen)
        self._last_read: float | None = None
        self._detail: np.ndarray | None = None
        self._shot_change = False
        self.reads = 0
        """How many times an engine was asked to read (for tests and cost checks)."""

    @property
    def engine(self) -> OcrEngine:
        """The engine in use (chosen from the chain on first use)."""
        if self._engine is None:
            self._engine, self._notes = choose_ocr(self._choices)
            for note in self._notes:
                log.info("text: %s", note)
        return self._engine

    def problem(self) -> str:
        try:
            return self.engine.problem()
        except Exception as exc:  # noqa: BLE001 - problem() never raises
            return f"The text reader failed ({exc}): {RapidOcrEngine.HINT}"

    def note_shot_change(self) -> None:
        """The next frame starts a new shot: read it whatever the interval."""
        self._shot_change = True

    def reset(self) -> None:
        self._known.clear()
        self._last_read = None
        self._detail = None
        self._shot_change = False

    def flush(self) -> list[Observation]:
        return []

    def process(self, t: float, frame: np.ndarray, shot_change: bool = False) -> list[Observation]:
        if self.problem():
            return []
        rgb = prepare_frame(frame)
        if rgb is None or min(rgb.shape[:2]) < 16:
            return []
        if self._last_read is not None and t < self._last_read:
            self.reset()  # a seek backwards
        shot_change = shot_change or self._shot_change
        detail = self._detail_grid(rgb)
        if not self._due(t, shot_change, detail):
            return []
        self.reads += 1
        # A failure of the engine is raised: the worker counts it and, when it goes on frame
        # after frame, switches the stage off and tells the user. Nothing here records the
        # failed read, so the next frame is read again (one bad frame costs one frame).
        lines = self.engine.read(shrink(rgb, self.options.max_width, load_cv2()[0]))
        self._shot_change = False
        self._last_read, self._detail = t, detail
        return self._remember(t, [ln for ln in lines if _useful(ln, self.options.min_score)])

    def look(self, t: float, frame: np.ndarray) -> list[Observation]:
        """This frame alone (describe now: a frame from elsewhere in the film): every line on
        screen, read now whatever the interval, as one ``"text"`` observation whose ``new`` is
        False when all of them were read already. What the stage has read, and when, is left as
        it was, so text still on screen in the stream is not read out again."""
        if self.problem():
            return []
        rgb = prepare_frame(frame)
        if rgb is None or min(rgb.shape[:2]) < 16:
            return []
        self.reads += 1
        lines = self.engine.read(shrink(rgb, self.options.max_width, load_cv2()[0]))
        lines = [ln for ln in lines if _useful(ln, self.options.min_score)]
        if not lines:
            return []
        same = self.options.same_above
        new = any(not any(_same(normalise(ln.text), k, same) for k in self._known)
                  for ln in lines)
        return [_observation(t, lines, new)]

    def _due(self, t: float, shot_change: bool, detail: np.ndarray) -> bool:
        opt = self.options
        if shot_change or self._last_read is None or self._detail is None:
            return True
        since = t - self._last_read
        if since >= opt.interval - 1e-6:
            return True
        if since < opt.min_interval - 1e-6 or detail.shape != self._detail.shape:
            return False
        return float((detail - self._detail).max()) >= opt.detail_rise

    @staticmethod
    def _detail_grid(rgb: np.ndarray) -> np.ndarray:
        """Edge density (share of sharp-gradient pixels) in each cell of an 8x6 grid."""
        gray = luma(shrink(rgb, 192))
        gx = np.abs(np.diff(gray, axis=1))[:-1, :]
        gy = np.abs(np.diff(gray, axis=0))[:, :-1]
        edges = (np.maximum(gx, gy) > 0.2).astype(np.float32)
        h, w = edges.shape
        rows = np.linspace(0, h, 7).astype(int)
        cols = np.linspace(0, w, 9).astype(int)
        return np.array([[edges[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean()
                          if rows[i + 1] > rows[i] and cols[j + 1] > cols[j] else 0.0
                          for j in range(8)] for i in range(6)], dtype=np.float32)

    def _remember(self, t: float, lines: list[TextLine]) -> list[Observation]:
        opt = self.options
        fresh: list[TextLine] = []
        for line in lines:
            key = normalise(line.text)
            match = next((k for k in self._known if _same(key, k, opt.same_above)), None)
            if match is None:
                fresh.append(line)
            else:
                del self._known[match]
            self._known[key] = (line.text, t)
        self._known = {k: v for k, v in self._known.items() if t - v[1] <= opt.forget_after}
        return [_observation(t, fresh, True)] if fresh else []


def _observation(t: float, lines: list[TextLine], new: bool) -> Observation:
    """One ``"text"`` observation of ``lines`` (their box is the union of theirs)."""
    texts = [ln.text.strip() for ln in lines]
    box = (min(ln.box[0] for ln in lines), min(ln.box[1] for ln in lines),
           max(ln.box[2] for ln in lines), max(ln.box[3] for ln in lines))
    return Observation(t=t, kind="text", text=", ".join(texts),
                       confidence=float(np.mean([ln.score for ln in lines])),
                       data={"lines": texts, "new": new, "box": list(box)})
