"""Lab datasets: described films and captioned pictures turned into examples, and the folder they
are written to.

An example is a frame (or a few frames) with the words a describer wrote for it, the length of
the pause they had (for a film, the cue's own length), and, for a film, the cues said before it
as context. The folder is Hugging Face ``imagefolder`` layout, which ``datasets.load_dataset``
reads with its splits::

    FOLDER/dataset.json                   what it is: sources, counts, format version
    FOLDER/train/metadata.jsonl           one example a line; file_name is its (first) frame
    FOLDER/train/images/...jpg
    FOLDER/test/metadata.jsonl
    FOLDER/test/images/...jpg

Reading it back (:func:`load_examples`) checks everything and names the first damage it finds
in one sentence.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.lab import LabError

log = logging.getLogger(__name__)

FORMAT = 1
INFO = "dataset.json"
METADATA = "metadata.jsonl"
SPLITS = ("train", "test")
CONTEXT_CUES = 3
"""Earlier cues kept as an example's context."""
FRAME_WIDTH = 640
DEFAULT_PAUSE = 4.0
"""The pause given to a captioned picture, which has none."""


@dataclass(frozen=True)
class Example:
    """One thing a narrator should say.

    ``frames`` are image paths (absolute once loaded); ``references`` the describer's words (a
    film has one, a COCO picture several); ``pause`` the seconds there were to say it;
    ``context`` the sentences said before it in the same film, oldest first.
    """

    id: str
    frames: tuple[str, ...]
    references: tuple[str, ...]
    pause: float
    source: str
    start: float = 0.0
    context: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return self.references[0]

    def image(self, index: int = 0) -> np.ndarray:
        """One frame as RGB uint8 (height, width, 3)."""
        from PIL import Image  # noqa: PLC0415

        with Image.open(self.frames[index]) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


@dataclass
class DatasetInfo:
    """What ``dataset.json`` says."""

    sources: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    frames_per_example: int = 1
    format: int = FORMAT


# ----- films -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def track_beside(video: Path) -> Path | None:
    """``VIDEO.descriptions.vtt`` or ``VIDEO.vtt`` beside the video, the player's own rule."""
    for candidate in (video.with_suffix(".descriptions.vtt"), video.with_suffix(".vtt")):
        if candidate.is_file():
            return candidate
    return None


def read_cues(track: Path, say: Callable[[str], None] = log.warning) -> list[Cue]:
    """The cues of a description track; its problems are said, a track without cues refused."""
    from models.webvtt import VttReadError, problem_lines, read_vtt  # noqa: PLC0415

    try:
        result = read_vtt(track)
    except VttReadError as exc:
        raise LabError(f"{exc}.") from exc
    for line in problem_lines(track.name, result.problems):
        say(line)
    cues = [Cue(d.start, d.end if d.end is not None else d.start + max(1.5, d.words / 2.5),
                d.text) for d in result.timeline.descriptions if d.text.strip()]
    if not cues:
        raise LabError(f"{track.name} has no description cues, so it gives no examples.")
    return cues


def _frame_times(cue: Cue, count: int) -> list[float]:
    length = max(cue.end - cue.start, 0.0)
    return [cue.start + length * (i + 0.5) / count for i in range(count)]


def grab_frames(video: Path, times: Sequence[float], width: int = FRAME_WIDTH,
                progress: Callable[[int], None] | None = None) -> list[object]:
    """PIL images of the frames shown at ``times`` (sorted or not), at most ``width`` wide;
    ``progress`` hears how many are done."""
    import av  # noqa: PLC0415

    out: dict[int, object] = {}
    order = sorted(range(len(times)), key=lambda i: times[i])
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise LabError(f"{video.name} has no picture, so no frames can be taken from it.")
            stream = container.streams.video[0]
            base = stream.time_base or 1 / 1000  # a stream without one: milliseconds
            for i in order:
                t = times[i]
                container.seek(int(max(t - 0.05, 0) / base), stream=stream, backward=True)
                best = None
                for frame in container.decode(stream):
                    best = frame
                    if frame.time is not None and frame.time + 1e-3 >= t:
                        break
                if best is None:
                    raise LabError(f"{video.name} has no frame at {t:.1f} seconds.")
                image = best.to_image()
                if image.width > width:
                    image = image.resize((width, round(image.height * width / image.width)))
                out[i] = image
                if progress:
                    progress(len(out))
    except av.FFmpegError as exc:
        raise LabError(f"{video.name} could not be read: {exc}.") from exc
    return [out[i] for i in range(len(times))]


def dialogue_pauses(video: Path, cues: Sequence[Cue],
                    say: Callable[[str], None] = log.warning) -> list[float]:
    """For each cue, the seconds from its start until the dialogue resumes (the player's own
    dialogue detection); the cue's length where its start is not in a pause or the film has no
    sound."""
    from models.gaps import GapError, analyse  # noqa: PLC0415

    lengths = [round(c.end - c.start, 3) for c in cues]
    try:
        result = analyse(video)
    except GapError as exc:
        say(f"The dialogue of {video.name} could not be found ({exc}); each cue's length "
            f"stands for its pause.")
        return lengths
    for note in result.notes:
        say(note)
    if not result.has_audio:
        say(f"{video.name} has no sound; each cue's length stands for its pause.")
        return lengths
    out = []
    for cue, length in zip(cues, lengths, strict=True):
        room = next((g.end - cue.start for g in result.gaps
                     if g.start - 0.25 <= cue.start < g.end), None)
        out.append(round(room, 3) if room is not None else length)
    return out


def film_examples(video: Path, track: Path, frames_per_cue: int, images: Path,
                  say: Callable[[str], None] = log.warning,
                  pauses: str = "cue", progress: Callable[[int, int], None] | None = None
                  ) -> list[tuple[Example, list[object]]]:
    """Examples of one described film with their frames (not yet written). ``pauses``: "cue"
    (a cue's length is its pause) or "dialogue" (:func:`dialogue_pauses`); ``progress(done,
    total)`` hears the frames taken."""
    if not video.is_file():
        raise LabError(f"{video} does not exist.")
    if pauses not in ("cue", "dialogue"):
        raise ValueError(f'pauses must be "cue" or "dialogue", not {pauses!r}.')
    cues = read_cues(track, say)
    times = [t for cue in cues for t in _frame_times(cue, frames_per_cue)]
    pictures = grab_frames(video, times, progress=(
        (lambda done: progress(done, len(times))) if progress else None))
    lengths = (dialogue_pauses(video, cues, say) if pauses == "dialogue"
               else [round(c.end - c.start, 3) for c in cues])
    stem = _slug(video.stem)
    out = []
    for n, cue in enumerate(cues):
        shots = pictures[n * frames_per_cue:(n + 1) * frames_per_cue]
        ident = f"{stem}-{n + 1:04d}"
        names = tuple(str(images / f"{ident}-{k}.jpg") for k in range(frames_per_cue))
        context = tuple(c.text for c in cues[max(0, n - CONTEXT_CUES):n])
        out.append((Example(ident, names, (cue.text,), lengths[n], video.name, cue.start,
                            context), shots))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "film"


# ----- COCO captions ---------------------------------------------------------------------------
def coco_examples(annotations: Path, images: Path, out_images: Path,
                  pause: float = DEFAULT_PAUSE) -> list[tuple[Example, list[Any]]]:
    """Examples of a COCO-style caption file (``images`` with ids and file names,
    ``annotations`` with image ids and captions), with the pictures from ``images``."""
    from PIL import Image  # noqa: PLC0415

    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
        pictures = {int(p["id"]): str(p["file_name"]) for p in data["images"]}
        captions: dict[int, list[str]] = {}
        for a in data["annotations"]:
            captions.setdefault(int(a["image_id"]), []).append(str(a["caption"]).strip())
    except OSError as exc:
        raise LabError(f"{annotations.name} could not be read: {exc.strerror or exc}.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{annotations.name} is not a COCO caption file (it needs \"images\" "
                       f"with id and file_name, and \"annotations\" with image_id and caption): "
                       f"{exc!s}.") from exc
    out = []
    for image_id, name in sorted(pictures.items()):
        refs = tuple(c for c in captions.get(image_id, []) if c)
        if not refs:
            continue
        try:
            with Image.open(images / name) as img:
                picture = img.convert("RGB")
        except OSError as exc:
            raise LabError(f"The picture {name} named in {annotations.name} could not be "
                           f"opened: {exc}.") from exc
        ident = f"coco-{image_id}"
        out.append((Example(ident, (str(out_images / f"{ident}-0.jpg"),), refs, pause,
                            annotations.name), [picture]))
    if not out:
        raise LabError(f"{annotations.name} has no picture with a caption.")
    return out


# ----- writing and reading ---------------------------------------------------------------------
def split_examples(ids: Sequence[str], test_share: float, seed: int) -> dict[str, str]:
    """Each id's split; at least one of each when there are two examples or more (none for
    testing when ``test_share`` is 0)."""
    order = list(ids)
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * test_share)
    if len(order) >= 2 and test_share > 0:
        n_test = min(max(n_test, 1), len(order) - 1)
    return {i: ("test" if k < n_test else "train") for k, i in enumerate(order)}


def write_dataset(folder: Path, items: Iterable[tuple[Example, list[object]]],
                  sources: Sequence[str], test_share: float = 0.2, seed: int = 0,
                  progress: Callable[[int], None] | None = None) -> DatasetInfo:
    """Write examples and their frames as a dataset folder: into a hidden folder beside it,
    renamed when complete, so Ctrl-C or a full disk leaves nothing half-written. Refused where
    ``folder`` holds anything already."""
    items = list(items)
    if (folder / INFO).exists():
        raise LabError(f"{folder} already holds a dataset; choose a new folder.")
    if not items:
        raise LabError("There are no examples to write.")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise LabError(f"{folder} exists and is not an empty folder; choose a new folder.")
    split = split_examples([e.id for e, _ in items], test_share, seed)
    final, folder = folder, folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(folder, ignore_errors=True)
    files = {}
    try:
        for name in SPLITS:
            (folder / name / "images").mkdir(parents=True, exist_ok=True)
            files[name] = open(folder / name / METADATA, "w", encoding="utf-8")  # noqa: SIM115
        counts = dict.fromkeys(SPLITS, 0)
        for done, (example, pictures) in enumerate(items, start=1):
            where = split[example.id]
            names = [f"images/{Path(f).name}" for f in example.frames]
            for picture, rel in zip(pictures, names, strict=True):
                picture.save(folder / where / rel, quality=90)  # type: ignore[attr-defined]
            row = {"file_name": names[0], **asdict(example), "frames": names}
            files[where].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[where] += 1
            if progress:
                progress(done)
        for handle in files.values():
            handle.close()
        info = DatasetInfo(list(sources), counts, max(len(e.frames) for e, _ in items))
        (folder / INFO).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
        if final.exists():
            final.rmdir()  # empty, checked above
        os.replace(folder, final)  # all or nothing: an interrupted write leaves no dataset
    except OSError as exc:
        raise LabError(f"The dataset could not be written to {final}: "
                       f"{exc.strerror or exc}.") from exc
    finally:
        for handle in files.values():
            handle.close()
        shutil.rmtree(folder, ignore_errors=True)
    return info


def read_info(folder: Path) -> DatasetInfo:
    """The dataset's ``dataset.json``; LabError naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"The dataset folder {folder} does not exist.")
    path = folder / INFO
    if not path.is_file():
        raise LabError(f"{folder} is not a lab dataset (it has no {INFO}); make one with "
                       f"narrate lab dataset, or it was not finished.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = DatasetInfo(**data)
    except (ValueError, TypeError, OSError) as exc:
        raise LabError(f"The dataset {folder.name} is damaged: {INFO} cannot be read "
                       f"({exc}).") from exc
    if info.format != FORMAT:
        raise LabError(f"The dataset {folder.name} is of format {info.format}; this version "
                       f"reads format {FORMAT}.")
    return info


def load_examples(folder: str | os.PathLike[str], split: str = "test") -> list[Example]:
    """The examples of one split, every frame checked to be there."""
    folder = Path(folder)
    info = read_info(folder)
    if split not in SPLITS:
        raise LabError(f"A dataset has the splits {', '.join(SPLITS)}, not {split!r}.")
    meta = folder / split / METADATA
    if not meta.is_file():
        raise LabError(f"The dataset {folder.name} is damaged: {split}/{METADATA} is missing.")
    out: list[Example] = []
    with open(meta, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"line {number} of {split}/{METADATA}"
            try:
                row = json.loads(line)
                example = Example(
                    str(row["id"]), tuple(str(folder / split / f) for f in row["frames"]),
                    tuple(str(r) for r in row["references"]), float(row["pause"]),
                    str(row["source"]), float(row.get("start", 0.0)),
                    tuple(str(c) for c in row.get("context", ())))
            except (ValueError, KeyError, TypeError) as exc:
                raise LabError(f"The dataset {folder.name} is damaged: {where} is not a "
                               f"whole example ({type(exc).__name__}: {exc}).") from exc
            if not example.frames or not example.references:
                raise LabError(f"The dataset {folder.name} is damaged: {where} has no frame "
                               f"or no reference.")
            for frame in example.frames:
                if not Path(frame).is_file():
                    raise LabError(f"The dataset {folder.name} is damaged: the frame "
                                   f"{Path(frame).relative_to(folder)} named on {where} is "
                                   f"missing.")
            out.append(example)
    if not out and info.counts.get(split):
        raise LabError(f"The dataset {folder.name} is damaged: {split}/{METADATA} should hold "
                       f"{info.counts[split]} examples and holds none.")
    return out
