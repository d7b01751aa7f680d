"""The composer: turns what the perception stages saw into sentences worth saying.

It follows audio-description practice: present tense, third person, concrete; no guessing of
emotion, identity or gender (people are "a person", then "the first person", "the person on
the left"); on-screen text read verbatim; what changed rather than what stayed the same; no
repeats of what was just said. Each sentence has a level (1 brief, 2 standard, 3 detailed: the
least verbosity that says it) and a priority (2 high, 1 normal, 0 low) so the scheduler can fit
it into a pause.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from models.types import Description, Observation

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
REPEAT_WINDOW = 12.0  # seconds in which the same sentence is not said again
SOURCE = "auto"


def number(n: int) -> str:
    return NUMBERS[n] if 0 <= n < len(NUMBERS) else str(n)


def sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def people_phrase(people: Sequence[dict]) -> str:
    """ "two people, one standing on the left and one sitting on the right" """
    n = len(people)
    if n == 0:
        return "no one"
    parts = []
    for p in sorted(people, key=lambda p: p.get("box", [0])[0]):
        bits = []
        posture = p.get("posture", "unknown")
        if posture and posture != "unknown":
            bits.append(posture)
        gestures = [g for g in p.get("gestures", []) if g != "walking"]
        if "walking" in p.get("gestures", []) and posture in ("standing", "unknown"):
            bits = ["walking"]
        if gestures:
            bits.append("with " + gestures[0] if gestures[0].startswith("arms") else gestures[0])
        where = {"left": "on the left", "right": "on the right", "centre": "in the centre"}.get(
            p.get("position", ""), "")
        if p.get("distance") == "far":
            where = (where + " in the distance").strip()
        parts.append(" ".join(b for b in [*bits, where] if b))
    if n == 1:
        detail = parts[0]
        return f"a person {detail}".strip()
    if n <= 3 and all(parts):
        listed = [f"one {p}" for p in parts]
        return f"{number(n)} people, " + ", ".join(listed[:-1]) + " and " + listed[-1]
    return f"{number(n)} people"


@dataclass
class _Frame:
    t: float
    kinds: dict[str, list[Observation]] = field(default_factory=lambda: defaultdict(list))

    def first(self, kind: str) -> Observation | None:
        items = self.kinds.get(kind)
        return items[0] if items else None


class Composer:
    """Feeds on observations in time order; returns descriptions as they become worth saying."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, str]] = deque(maxlen=50)
        self._people: dict[int, dict] = {}  # id -> last seen state
        self._ordinal: dict[int, int] = {}
        self._count = 0
        self._pending_count: tuple[int, int] | None = None  # (count, frames seen)
        self._dark = False

    def reset(self) -> None:
        """Forget the story so far (after a seek far away)."""
        self.__init__()  # type: ignore[misc]

    # ----- feeding ---------------------------------------------------------------------------
    def feed(self, observations: Iterable[Observation]) -> list[Description]:
        """Descriptions for the observations of one or more frames (grouped by time)."""
        frames: dict[float, _Frame] = {}
        for obs in observations:
            frames.setdefault(round(obs.t, 3), _Frame(obs.t)).kinds[obs.kind].append(obs)
        out: list[Description] = []
        for key in sorted(frames):
            out += self._frame(frames[key])
        return out

    def _frame(self, f: _Frame) -> list[Description]:
        out: list[Description] = []
        shot = f.first("shot") is not None
        people_obs = f.first("people")
        scene = f.first("scene")
        people = list(people_obs.data.get("people", [])) if people_obs else None
        if shot and people is not None:
            self._pending_count = None
            self._count = len(people)
            if people:
                out.append(self._say(f.t, f"New shot: {people_phrase(people)}.", 1, 2,
                                     valid=2.5))
            else:
                out.append(self._say(f.t, "New shot: no one is in view.", 2, 1))
            self._remember(people)
        elif people is not None:
            out += self._people_change(f.t, people)
        for text in f.kinds.get("text", []):
            lines = [ln for ln in text.data.get("lines", []) if ln.strip()]
            if lines and text.data.get("new", True):
                words = ", ".join(lines)
                # Text stays on screen a while: still worth reading a few seconds late.
                out.append(self._say(f.t, f"Text on screen: {words}.", 1, 2, valid=4.0))
        if scene is not None:
            out += self._scene(f.t, scene, shot)
        return [d for d in out if d is not None]

    def _scene(self, t: float, scene: Observation, shot: bool) -> list[Description | None]:
        out: list[Description | None] = []
        data = scene.data
        fade = data.get("fade")
        if fade == "to black":
            out.append(self._say(t, "The picture fades to black.", 2, 1))
        elif fade == "from black":
            out.append(self._say(t, "The picture fades in.", 3, 0))
        dark = bool(data.get("dark"))
        if shot and dark and not fade:
            out.append(self._say(t, "The scene is dark.", 2, 0))
        self._dark = dark
        if shot and not dark:
            colours = [c for c in data.get("colours", []) if c][:2]
            if colours:
                out.append(self._say(t, f"Mostly {' and '.join(colours)}.", 3, 0))
        motion = data.get("motion")
        if shot and motion and motion not in ("still", "shaky"):
            out.append(self._say(t, f"The camera {_motion_verb(motion)}.", 3, 0))
        return out

    def _people_change(self, t: float, people: list[dict]) -> list[Description | None]:
        out: list[Description | None] = []
        n = len(people)
        if n != self._count:
            # A change of head-count must hold for two samples before it is said.
            seen = self._pending_count[1] + 1 if self._pending_count and \
                self._pending_count[0] == n else 1
            self._pending_count = (n, seen)
            if seen < 2:
                return out  # not remembered yet: a flicker must not count as known
            before, self._count = self._count, n
            self._pending_count = None
            out.append(self._count_change(t, before, people))
        else:
            self._pending_count = None
            for p in people:
                out += self._person_change(t, p)
        self._remember(people)
        return out

    def _count_change(self, t: float, before: int, people: list[dict]) -> Description | None:
        n = len(people)
        new = [p for p in people if p.get("id") not in self._people]
        if n > before and new:
            p = new[0]
            where = {"left": "on the left", "right": "on the right",
                     "centre": "in the centre"}.get(p.get("position", ""), "")
            who = "someone" if n - before == 1 else f"{number(n - before)} more people"
            verb = "appears" if n - before == 1 else "appear"
            return self._say(t, f"{who} {verb} {where}".strip() + ".", 1, 1)
        if n == 0:
            return self._say(t, "Now no one is in view.", 2, 1)
        return self._say(t, f"Now {people_phrase(people)}.", 2, 1)

    def _person_change(self, t: float, p: dict) -> list[Description | None]:
        pid = p.get("id")
        old = self._people.get(pid)
        if old is None:
            return []
        who = self._name(p)
        out: list[Description | None] = []
        posture, before = p.get("posture"), old.get("posture")
        if posture != before and posture in ("sitting", "standing", "lying") and \
                before in ("sitting", "standing", "lying"):
            verb = {"sitting": "sits down", "standing": "stands up", "lying": "lies down"}[posture]
            out.append(self._say(t, f"{who} {verb}.", 2, 1))
        new_gestures = [g for g in p.get("gestures", []) if g not in old.get("gestures", [])]
        for g in new_gestures[:1]:
            phrase = {"arms raised": "raises both arms", "pointing": "points",
                      "hands on head": "puts their hands on their head", "waving": "waves",
                      "walking": "walks"}.get(g, g)
            out.append(self._say(t, f"{who} {phrase}.", 3 if g == "walking" else 2, 1))
        return out

    def _name(self, p: dict) -> str:
        """The person's stable label: by place when there are several, else "the person"."""
        if self._count <= 1:
            return "the person"
        where = {"left": "on the left", "right": "on the right", "centre": "in the centre"}.get(
            p.get("position", ""))
        if where:
            return f"the person {where}"
        ordinal = self._ordinal.get(p.get("id", -1), 0)
        return f"the {ORDINALS[min(ordinal, len(ORDINALS) - 1)]} person"

    def _remember(self, people: list[dict]) -> None:
        for p in people:
            pid = p.get("id")
            if pid is None:
                continue
            if pid not in self._ordinal:
                self._ordinal[pid] = len(self._ordinal)
            self._people[pid] = p

    def _say(self, t: float, text: str, level: int, priority: int,
             valid: float = 0.0) -> Description | None:
        """A description at ``t``; ``valid`` seconds say how long it stays true, if known."""
        text = sentence(text)
        if any(prev == text and t - when < REPEAT_WINDOW for when, prev in self._recent):
            return None
        self._recent.append((t, text))
        start = max(t, 0.0)
        return Description(start=start, text=text, level=level, priority=priority,
                           source=SOURCE, end=start + valid if valid else None)

    # ----- describe now -------------------------------------------------------------------------
    @staticmethod
    def describe(observations: Sequence[Observation], t: float, detail: int = 3) -> str:
        """A short description of the moment ``t`` from the latest observations of each kind."""
        latest: dict[str, Observation] = {}
        # Text read before the latest cut is no longer on screen.
        cuts = [o.t for o in observations if o.kind == "shot" and o.t <= t + 0.05]
        since = max(cuts, default=float("-inf"))
        observations = [o for o in observations if o.kind != "text" or o.t >= since - 0.01]
        for obs in observations:
            if obs.t <= t + 0.05 and (obs.kind not in latest or obs.t >= latest[obs.kind].t):
                latest[obs.kind] = obs
        parts: list[str] = []
        people = latest.get("people")
        if people is not None and t - people.t < 3.0:
            found = people.data.get("people", [])
            parts.append(sentence(people_phrase(found)) if found else "No people in view.")
        faces = latest.get("faces")
        if faces is not None and t - faces.t < 3.0 and people is None:
            n = faces.data.get("count", 0)
            if n:
                parts.append(sentence(f"{number(n)} face{'s' if n != 1 else ''} in view"))
        text = latest.get("text")
        if text is not None and t - text.t < 8.0 and text.data.get("lines"):
            parts.append(sentence(f"Text on screen: {', '.join(text.data['lines'])}"))
        scene = latest.get("scene")
        if scene is not None and t - scene.t < 3.0 and (detail >= 3 or not parts):
            if scene.data.get("dark"):
                parts.append("The picture is dark.")
            else:
                colours = scene.data.get("colours", [])[:2]
                if colours:
                    parts.append(sentence(f"Mostly {' and '.join(colours)}"))
        return " ".join(parts)


def _motion_verb(motion: str) -> str:
    return {"pan left": "pans left", "pan right": "pans right", "tilt up": "tilts up",
            "tilt down": "tilts down", "zoom in": "zooms in", "zoom out": "zooms out"}.get(
        motion, "moves")
