"""The composer: turns what the perception stages saw into sentences worth saying.

It follows audio-description practice: present tense, third person, concrete; no guessing of
emotion, identity or gender; on-screen text read verbatim; what changed rather than what stayed
the same; no repeats of what was just said. Each sentence has a level (1 brief, 2 standard, 3
detailed: the least verbosity that says it) and a priority (2 high, 1 normal, 0 low) so the
scheduler can fit it into a pause.

People are named by the stable ids of the people stage, which survive absences and shot changes
(see :mod:`models.perception.identity`): "a person" when first seen, then "the person" while
only one is known, else "the first person", "the second person" in the order they came, with
"on the left" and the like saying where they are now. Only the first ``ORDINAL_PEOPLE`` are
numbered; anyone after them is named by what can be seen: "the person in red" (the colour of
their clothes, when the people stage gives one) or, with nothing to tell them apart, "someone
on the right", or "the person" when they are alone in view. Someone named who comes back is
said to be back ("The first person is back, on the left.") rather than introduced again;
someone without a name just appears. A vision-language model may give a person a label ("the
man with glasses") through :meth:`Composer.name_person`; the composer itself never infers one.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.onscreen_text import NumberWatch
from models.pipeline.phrases import (
    ORDINALS,
    _area,
    _indefinite,
    _left_to_right,
    _where,
    crowd_count,
    detected_people,
    listing,
    number,
    object_groups,
    object_phrase,
    people_in_view,
    people_phrase,
    person_detail,
    person_label,
    sentence,
    where,
)
from models.pipeline.relations import walking_group
from models.pipeline.surroundings import Surroundings
from models.types import Description, Observation

ORDINAL_PEOPLE = 3
"""How many people are named by the order they came in ("the first person" to "the third
person"). Order is all a listener has to hold such a name by, and working memory keeps about
three or four unrelated items apart, fewer while it also follows the dialogue and the picture.
"The fourth person" already asks a listener to have counted everyone, and "person number 31" or
"the sixteenth person" means nothing. Everyone after the third is named by what can be seen
instead (see the module's docstring)."""
LOOK_KEPT = 120.0
"""Seconds a look ("the person in red") stays with its person after they were last seen. After
that someone new in red may take it: a listener still knows who "the person in red" is a
minute or two later, not ten minutes later, and the name is of more use to the new person."""
REPEAT_WINDOW = 12.0  # seconds in which the same sentence is not said again
OBJECT_KINDS = 3
"""Most kinds of object in one sentence ("a dog, a bicycle and a truck")."""
OBJECT_FORGET = 5.0
"""Seconds a kind of object stays known after it was last detected; back after that, it is new
again (a detector misses things now and then, so one missed sample must not make it new)."""
OBJECT_SURE = 0.6
"""A kind detected once with this score is said at once; below it, it must be detected in two
samples in a row (one sample may be a false find)."""
OBJECT_LEAST = 0.5
"""A kind is never named on finds scored under this: on the development set every object
really there scored 0.53 or more (a bus 0.78, a table 0.57, cups 0.53 and 0.55), and most
wrong ones under 0.5 (an umbrella at a poker table 0.47, cartoon horses and cows 0.41 to 0.46
in the median). The finds still count toward the setting and what people do."""
DETECTED_PEOPLE_KEPT = 1.5
"""Seconds an objects observation's count of people stands in for a frame without one."""
WALK_AGAIN = 20.0
"""Seconds before the same group's walk is said again."""
SOURCE = "auto"


@dataclass
class _Frame:
    t: float
    kinds: dict[str, list[Observation]] = field(default_factory=lambda: defaultdict(list))

    def first(self, kind: str) -> Observation | None:
        items = self.kinds.get(kind)
        return items[0] if items else None


class Composer:
    """Feeds on observations in time order; returns descriptions as they become worth saying.

    People are known by the ``id`` of the people observations (stable for the whole video, see
    the module's docstring). ``reset`` forgets the story, the people and their labels; the people
    stage starts its ids again after a seek too.
    """

    def __init__(self) -> None:
        self._recent: deque[tuple[float, str]] = deque(maxlen=50)
        self._people: dict[int, dict] = {}  # id -> last seen state
        self._ordinal: dict[int, int] = {}  # id -> order of first appearance
        self._labels: dict[int, str] = {}  # id -> label from a vision-language model
        self._looks: dict[int, str] = {}  # id -> "the person in red", for people not numbered
        self._planned: dict[int, str] = {}  # looks for the people not known yet in this frame
        self._last_seen: dict[int, float] = {}  # id -> media time they were last in view
        self._present: set[int] = set()  # ids in view in the last frame taken in
        self._count = 0
        self._pending: tuple[int, frozenset[int], int] | None = None  # (count, ids, frames)
        self._dark = False
        self._motion: tuple[str, int] = ("", 0)  # the camera's movement, and frames in a row
        self._objects_seen: dict[str, float] = {}  # label -> media time last detected
        self._objects_said: set[str] = set()  # labels said and still in view (or lately)
        self._objects_once: set[str] = set()  # labels detected once, in the last sample only
        self._detected: tuple[float, int] = (float("-inf"), 0)  # (time, people the detector saw)
        self._numbers = NumberWatch()  # numbers that change in place: a counter, said once
        self._around = Surroundings()  # the setting, and what people do with things
        # A group's walk as last said: walking or running, how many, when.
        self._walking: tuple[str, int, float] = ("", 0, float("-inf"))

    def reset(self) -> None:
        """Forget the story so far and everyone in it (a new film)."""
        self.__init__()  # type: ignore[misc]

    def rewind(self) -> None:
        """After a seek in the same film: forget what was in view, keep who is who (the order
        people were first seen in, their labels and their looks)."""
        kept = self._ordinal, self._labels, self._looks, self._last_seen
        self.__init__()  # type: ignore[misc]
        self._ordinal, self._labels, self._looks, self._last_seen = kept

    def name_person(self, person_id: int, label: str) -> bool:
        """Call person ``person_id`` (a people observation's ``id``) by ``label`` from now on,
        e.g. a vision-language model's answer about a crop of that person: "The man with
        glasses." becomes "the man with glasses". False, and nothing changes, when the label is
        refused (see :func:`person_label`) or another person already has it (as a label, or
        as the look the composer gave them: "the person in red")."""
        clean_label = person_label(label)
        taken = [*self._labels.items(), *self._looks.items()]
        if not clean_label or any(other == clean_label for pid, other in taken
                                  if pid != person_id):
            return False
        self._labels[person_id] = clean_label
        return True

    @property
    def labels(self) -> dict[int, str]:
        """Every label given with :meth:`name_person`, by person id."""
        return dict(self._labels)

    def label_of(self, person_id: int) -> str:
        """The label given to ``person_id`` with :meth:`name_person`, or ""."""
        return self._labels.get(person_id, "")

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
        out: list[Description | None] = []
        shot = f.first("shot") is not None
        people_obs = f.first("people")
        scene = f.first("scene")
        people = list(people_obs.data.get("people", [])) if people_obs else None
        objects = f.first("objects")
        if objects is not None:
            self._detected = (f.t, detected_people(objects))
        self._planned = self._plan_looks(f.t, people or [])
        if shot and people is not None:
            self._pending = None
            self._count = len(people)
            out.append(self._new_shot(f.t, people))
            self._remember(f.t, people)
        elif shot:  # no people stage (it failed to load): the cut is still worth saying
            out.append(self._new_shot_without_people(f.t, f.first("faces")))
        elif people is not None:
            out += self._people_change(f.t, people)
        for line in self._around.frame(f.t, shot, objects, scene, people or []):
            out.append(self._say(f.t, line.text, line.level, line.priority, valid=line.valid))
        if objects is not None:
            out += self._objects(f.t, objects, people or [])
        for text in f.kinds.get("text", []):
            lines = [ln for ln in text.data.get("lines", []) if ln.strip()]
            if lines and text.data.get("new", True):
                judged = self._numbers.judge(f.t, lines, text.data.get("box"))
                if judged == "counter":
                    out.append(self._say(f.t, f"A number changes in place, like a counter, "
                                              f"{_where(text.data['box'])}.", 2, 1))
                elif judged == "read":
                    words = ", ".join(lines)
                    # Text stays on screen a while: still worth reading a few seconds late.
                    out.append(self._say(f.t, f"Text on screen: {words}", 1, 2, valid=4.0))
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
        # Colours alone ("Mostly black and green.") tell a listener nothing: the setting and
        # the people's clothes carry them where they matter.
        # The camera's movement within a shot, once it has held for two samples (a cut has
        # none: the stage does not measure across one).
        motion = data.get("motion") or ""
        if shot or motion in ("", "still", "shaky"):
            self._motion = ("", 0)
        else:
            seen = self._motion[1] + 1 if self._motion[0] == motion else 1
            self._motion = (motion, seen)
            if seen == 2:
                out.append(self._say(t, f"The camera {_motion_verb(motion)}.", 3, 0))
        return out

    # ----- people ----------------------------------------------------------------------------
    def _named(self, p: dict) -> bool:
        """Whether the person is known and has a name a listener can hold: a label, one of the
        first ``ORDINAL_PEOPLE`` places in the order, or a look ("the person in red"). Anyone
        else is described afresh each time ("someone on the right"), never said to be back."""
        pid = p.get("id", -1)
        if pid not in self._ordinal:
            return False
        return pid in self._labels or pid in self._looks or \
            self._ordinal[pid] < ORDINAL_PEOPLE

    def _name(self, p: dict) -> str:
        """What to call a named person (see :meth:`_named`): their label, "the person" while
        only one person is known, "the first person" to "the third person" by order of
        appearance, else their look ("the person in red")."""
        pid = p.get("id", -1)
        if pid in self._labels:
            return self._labels[pid]
        if len(self._ordinal) <= 1:
            return "the person"
        ordinal = self._ordinal.get(pid, len(self._ordinal))
        if ordinal < ORDINAL_PEOPLE:
            return f"the {ORDINALS[ordinal]} person"
        return self._looks.get(pid, "the person")

    def _subject(self, p: dict) -> str:
        """The person as the subject of a sentence, with where they are when several are in
        view: "the second person, on the right,". Someone without a name is "the person" when
        alone in view, else "someone on the right"."""
        place = where(p) if self._count > 1 else ""
        if not self._named(p):
            return "the person" if self._count <= 1 else f"someone {place}".strip()
        name = self._name(p)
        return f"{name}, {place}," if place else name

    def _mention(self, p: dict) -> str:
        """One person in a list: "the first person on the left" when named, else "a person
        standing on the right" (or "a man with glasses..." when a label came first)."""
        if self._named(p):
            return " ".join(b for b in (self._name(p), where(p)) if b)
        return " ".join(b for b in (self._someone(p), person_detail(p)) if b)

    def _someone(self, p: dict) -> str:
        """The person as someone not met yet: "a man with glasses" (their label), "a person in
        red" (their look) or "a person"."""
        return self._indefinites().get(p.get("id", -1)) or "a person"

    def _indefinites(self) -> dict[int, str]:
        """Everyone's label, else look, as said of someone not met yet: "a man with glasses",
        "a person in red"."""
        names = {**self._looks, **self._planned, **self._labels}
        return {pid: _indefinite(name) for pid, name in names.items()}

    def _group(self, people: Sequence[dict]) -> str:
        """Several people by name where they have one: "the first person on the left and a
        person sitting on the right"; more than three are counted."""
        if not any(self._named(p) for p in people):
            return self._plain(people)
        if len(people) > 3:
            return f"{number(len(people))} people"
        return listing([self._mention(p) for p in _left_to_right(people)])

    def _plain(self, people: Sequence[dict]) -> str:
        """The people as a listener who has met none of them hears them: "a person standing on
        the left", "two people, a man in a red coat, sitting on the left and one standing on
        the right"."""
        return people_phrase(people, self._indefinites())

    def _ids(self, people: Iterable[dict], named: bool) -> tuple[int, ...]:
        """The ids of the ``people`` who are named (``named``, see :meth:`_named`) or not, left
        to right."""
        return tuple(p["id"] for p in _left_to_right(people)
                     if p.get("id") is not None and self._named(p) == named)

    def _plan_looks(self, t: float, people: Sequence[dict]) -> dict[int, str]:
        """Looks for this frame's people who are not known yet and will not be numbered: "the
        person in red", from the colour of their clothes (``clothes`` in the people stage's
        entry), unless a label or someone else seen in the last ``LOOK_KEPT`` seconds has that
        name. A look is given once, when someone becomes known, and then kept."""
        planned: dict[int, str] = {}
        order = len(self._ordinal)
        for p in people:
            pid = p.get("id")
            if pid is None or pid in self._ordinal:
                continue
            order += 1
            colour = str(p.get("clothes") or "").strip().lower()
            if order <= ORDINAL_PEOPLE or not colour.isalpha() or pid in self._labels:
                continue
            look = f"the person in {colour}"
            if look in self._labels.values() or look in planned.values():
                continue
            holder = next((k for k, v in self._looks.items() if v == look), None)
            if holder is not None and t - self._last_seen.get(holder, t) <= LOOK_KEPT:
                continue
            planned[pid] = look
        return planned

    def _back(self, people: Sequence[dict]) -> str:
        """Known people coming back: "the first person is back, on the left"."""
        ordered = _left_to_right(people)
        if len(ordered) == 1:
            place = where(ordered[0])
            return f"{self._name(ordered[0])} is back" + (f", {place}" if place else "")
        return listing([self._mention(p) for p in ordered]) + " are back"

    def _new_shot(self, t: float, people: list[dict]) -> Description | None:
        if not people:
            seen = self._detected_people(t, cut=True)
            if seen:  # the people stage missed them: the detector's count is said instead
                return self._say(t, f"New shot: {people_in_view(seen)}.", 2, 1, valid=2.5)
            return self._say(t, "New shot: no one is in view.", 2, 1)
        crowd = crowd_count(len(people), self._detected_people(t, cut=True))
        if crowd:
            return self._say(t, f"New shot: {people_in_view(crowd)}.", 1, 2, valid=2.5)
        known = [p for p in people if self._named(p)]
        refers, introduces = self._ids(people, True), self._ids(people, False)
        plain = f"New shot: {self._plain(people)}."
        if known and len(known) == len(people) and len(people) <= 3 and \
                not any(p.get("id") in self._present for p in people):
            return self._say(t, self._back(people) + ".", 1, 2, valid=2.5, refers=refers,
                             introduces=introduces, plain=plain)
        return self._say(t, f"New shot: {self._group(people)}.", 1, 2, valid=2.5,
                         refers=refers, introduces=introduces, plain=plain)

    def _new_shot_without_people(self, t: float, faces: Observation | None) -> Description | None:
        """A cut when only faces (or nothing) tell who is there."""
        n = int(faces.data.get("count", 0)) if faces is not None else 0
        seen = self._detected_people(t, cut=True)
        if seen >= n and seen:
            return self._say(t, f"New shot: {people_in_view(seen)}.", 2, 1, valid=2.5)
        if n:
            return self._say(t, f"New shot: {number(n)} face{'s' if n != 1 else ''} in view.",
                             2, 1, valid=2.5)
        return self._say(t, "New shot.", 2, 1, valid=2.5)

    def _people_change(self, t: float, people: list[dict]) -> list[Description | None]:
        out: list[Description | None] = []
        n = len(people)
        ids = frozenset(p["id"] for p in people if p.get("id") is not None)
        if n != self._count or ids - self._present:
            # A change of who is in view must hold for two samples before it is said.
            same = self._pending is not None and self._pending[:2] == (n, ids)
            seen = self._pending[2] + 1 if same and self._pending else 1
            self._pending = (n, ids, seen)
            if seen < 2:
                return out  # not remembered yet: a flicker must not count as known
            self._count = n
            self._pending = None
            out.append(self._count_change(t, people))
        else:
            self._pending = None
            said: list[str] = []
            for moving, verb in (("running", "run"), ("walking", "walk")):
                movers = [p for p in people if moving in p.get("gestures", [])]
                group = walking_group(movers, self._people, verb)
                if not group:
                    continue
                said.append(moving)
                how, n, when = self._walking
                # Again after a while, or when the group changed: two more or fewer walkers,
                # or running after walking (not one walker joining, or a change of way).
                if t - when > WALK_AGAIN or abs(len(movers) - n) >= 2 or how != moving:
                    out.append(self._say(t, group, 2, 1, valid=3.0))  # one sentence for all
                    self._walking = (moving, len(movers), t)
                break
            for p in people:
                out += self._person_change(t, p, said_moving=tuple(said))
        self._remember(t, people)
        return out

    def _count_change(self, t: float, people: list[dict]) -> Description | None:
        n = len(people)
        if n == 0:
            seen = self._detected_people(t)
            if seen:  # the people stage lost them, the detector did not
                return self._say(t, f"{people_in_view(seen)}.", 2, 1)
            return self._say(t, "Now no one is in view.", 2, 1)
        plain = f"Now {self._plain(people)}."
        arrivals = [p for p in _left_to_right(people) if p.get("id") not in self._present]
        if arrivals:
            return self._arrivals(t, arrivals, plain)
        ids = {p.get("id") for p in people}
        gone = [self._people[pid] for pid in self._present - ids if pid in self._people]
        if len(gone) == 1 and self._named(gone[0]):
            return self._say(t, f"{self._name(gone[0])} is out of view.", 2, 1,
                             refers=self._ids(gone, True),
                             plain=f"{self._plain(gone)} is out of view.")
        return self._say(t, f"Now {self._group(people)}.", 2, 1, refers=self._ids(people, True),
                         introduces=self._ids(people, False), plain=plain)

    def _arrivals(self, t: float, arrivals: list[dict], plain: str) -> Description | None:
        """People who came into view: named ones are back, others appear ("someone", or "a
        person in red" when they have a look)."""
        back = [p for p in arrivals if self._named(p)]
        new = [p for p in arrivals if not self._named(p)]
        parts = [self._back(back)] if back else []
        if len(new) == 1:
            who = self._indefinites().get(new[0].get("id", -1)) or \
                ("someone else" if back else "someone")
            parts.append(f"{who} appears {where(new[0])}".strip())
        elif new:
            parts.append(f"{number(len(new))} more people appear")
        return self._say(t, ", and ".join(parts) + ".", 1, 1, refers=self._ids(back, True),
                         introduces=self._ids(new, False), plain=plain)

    def _person_change(self, t: float, p: dict, said_moving: tuple[str, ...] = ()
                       ) -> list[Description | None]:
        pid = p.get("id")
        old = self._people.get(pid) if isinstance(pid, int) else None
        if old is None or not isinstance(pid, int):
            return []
        who = self._subject(p)
        # For a listener who has not met them: "a person on the left", "a man in a red coat".
        anyone = " ".join(b for b in (self._someone(p), where(p) if self._count > 1 else "")
                          if b)
        refers = (pid,) if self._named(p) else ()
        out: list[Description | None] = []
        posture, before = p.get("posture"), old.get("posture")
        if posture != before and posture in ("sitting", "standing", "lying") and \
                before in ("sitting", "standing", "lying"):
            verb = {"sitting": "sits down", "standing": "stands up", "lying": "lies down"}[posture]
            out.append(self._say(t, f"{who} {verb}.", 2, 1, refers=refers,
                                 plain=f"{anyone} {verb}."))
        new_gestures = [g for g in p.get("gestures", []) if g not in old.get("gestures", [])
                        and g not in said_moving]
        for g in new_gestures[:1]:
            phrase = {"arms raised": "raises both arms", "pointing": "points",
                      "hands on head": "puts their hands on their head", "waving": "waves",
                      "walking": "walks", "running": "runs"}.get(g, g)
            out.append(self._say(t, f"{who} {phrase}.", 3 if g == "walking" else 2, 1,
                                 refers=refers, plain=f"{anyone} {phrase}."))
        return out

    # ----- objects ---------------------------------------------------------------------------
    def _detected_people(self, t: float, cut: bool = False) -> int:
        """People the object detector saw at ``t`` (its latest count, if recent; at a ``cut``
        only a count from this very frame: the one before showed another shot)."""
        when, n = self._detected
        return n if 0 <= t - when <= (0.001 if cut else DETECTED_PEOPLE_KEPT) else 0

    def _objects(self, t: float, obs: Observation, people: Sequence[dict]
                 ) -> list[Description | None]:
        """Kinds of object that came into view, said once while they stay: the notable ones
        (large, central, near a person or several) at level 2, the rest at level 3, at most
        ``OBJECT_KINDS`` kinds a sentence, most notable first."""
        groups = object_groups(obs.data.get("objects", []))
        for label in [k for k, when in self._objects_seen.items() if t - when > OBJECT_FORGET]:
            del self._objects_seen[label]
            self._objects_said.discard(label)
        once, self._objects_once = self._objects_once, set()
        new: list[str] = []
        for label, items in groups.items():
            self._objects_seen[label] = t
            best = max(float(o.get("score", 0)) for o in items)
            if label in self._objects_said or best < OBJECT_LEAST:
                continue  # said while it stays; or too unsure to name
            if label in once or best >= OBJECT_SURE:
                new.append(label)
            else:
                self._objects_once.add(label)
        if not new:
            return []
        persons = [o["box"] for o in obs.data.get("objects", []) if o.get("label") == "person"]
        persons += [p["box"] for p in people if len(p.get("box", ())) == 4]
        rank = {label: self._notability(groups[label], persons) for label in new}
        new.sort(key=lambda label: (-rank[label][0], -rank[label][1]))
        notable = [label for label in new if rank[label][0]][:OBJECT_KINDS]
        rest = [label for label in new if label not in notable][:OBJECT_KINDS]
        out: list[Description | None] = []
        for labels, level, priority in ((notable, 2, 1), (rest, 3, 0)):
            if labels:
                text = listing([object_phrase(label, groups[label]) for label in labels])
                out.append(self._say(t, text, level, priority, valid=3.0))
                self._objects_said.update(labels)
        return out

    @staticmethod
    def _notability(items: Sequence[dict], persons: Sequence[Sequence[float]]
                    ) -> tuple[int, float]:
        """(1 when large, central, near a person or several (kites in the sky, a row of cars),
        else 0; the largest box's area)."""
        area = max(_area(o["box"]) for o in items)
        if len(items) >= 2:
            return 1, area
        central = any(1 / 3 <= (o["box"][0] + o["box"][2]) / 2 <= 2 / 3 and
                      0.2 <= (o["box"][1] + o["box"][3]) / 2 <= 0.8 for o in items)
        near = any(_gap(o["box"], p) < 0.05 for o in items for p in persons)
        return (1 if area >= 0.04 or central or near else 0), area

    def _remember(self, t: float, people: list[dict]) -> None:
        """``people`` are in view at ``t``: those not known yet become known (in order, with
        the look planned for them), and everyone's last state and time are kept."""
        self._present = set()
        for p in people:
            pid = p.get("id")
            if pid is None:
                continue
            if pid not in self._ordinal:
                self._ordinal[pid] = len(self._ordinal)
                look = self._planned.get(pid)
                if look:  # it may have been someone else's, unseen for a long time
                    self._looks = {k: v for k, v in self._looks.items() if v != look}
                    self._looks[pid] = look
            self._people[pid] = p
            self._last_seen[pid] = t
            self._present.add(pid)

    def _say(self, t: float, text: str, level: int, priority: int, valid: float = 0.0,
             refers: tuple[int, ...] = (), introduces: tuple[int, ...] = (),
             plain: str = "") -> Description | None:
        """A description at ``t``; ``valid`` seconds say how long it stays true, if known.
        ``refers``, ``introduces`` and ``plain``: see :class:`models.types.Description` (a
        ``plain`` text is kept only for a sentence that refers to someone)."""
        text = sentence(text)
        if any(prev == text and t - when < REPEAT_WINDOW for when, prev in self._recent):
            return None
        self._recent.append((t, text))
        start = max(t, 0.0)
        plain = sentence(plain) if refers and plain and sentence(plain) != text else ""
        return Description(start=start, text=text, level=level, priority=priority,
                           source=SOURCE, end=start + valid if valid else None,
                           refers=refers if plain else (), introduces=introduces, plain=plain)

    # ----- describe now -------------------------------------------------------------------------
    @staticmethod
    def describe(observations: Sequence[Observation], t: float, detail: int = 3,
                 labels: Mapping[int, str] | None = None) -> str:
        """A short description of the moment ``t`` from the latest observations of each kind;
        ``labels`` (:attr:`labels`) names the people a model has labelled."""
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
        objects = latest.get("objects")
        if objects is not None and t - objects.t >= 3.0:
            objects = None
        if people is not None and t - people.t < 3.0:
            found = people.data.get("people", [])
            seen = detected_people(objects)
            crowd = crowd_count(len(found), seen)
            parts.append(sentence(people_in_view(crowd)) if crowd
                         else sentence(people_phrase(found, labels)) if found
                         else sentence(people_in_view(seen)) if seen
                         else "No people in view.")
        elif objects is not None and detected_people(objects):
            parts.append(sentence(people_in_view(detected_people(objects))))
        if objects is not None:
            groups = object_groups(objects.data.get("objects", []))
            ranked = sorted(groups, key=lambda k: -_area(groups[k][0]["box"]))
            if ranked:
                parts.append(sentence(listing([object_phrase(k, groups[k])
                                               for k in ranked[:OBJECT_KINDS]])))
        recent_scene = latest.get("scene")
        if recent_scene is not None and t - recent_scene.t >= 3.0:
            recent_scene = None
        found_people = people.data.get("people", []) if people is not None and \
            t - people.t < 3.0 else []
        where_now, doing = Surroundings.describe(objects, recent_scene, found_people)
        after_people = 1 if parts and (found_people or detected_people(objects)) else 0
        parts[after_people:after_people] = doing  # "A person rides a bicycle." follows them
        if where_now:
            parts.insert(0, where_now)
        faces = latest.get("faces")
        if faces is not None and t - faces.t < 3.0 and people is None and \
                not detected_people(objects):
            n = faces.data.get("count", 0)
            if n:
                parts.append(sentence(f"{number(n)} face{'s' if n != 1 else ''} in view"))
        text = latest.get("text")
        if text is not None and t - text.t < 8.0 and text.data.get("lines"):
            parts.append(sentence(f"Text on screen: {', '.join(text.data['lines'])}"))
        if recent_scene is not None and recent_scene.data.get("dark"):
            parts.append("The picture is dark.")
        return " ".join(parts)


def _gap(a: Sequence[float], b: Sequence[float]) -> float:
    """The distance between two boxes (0 when they touch or overlap), in fractions of the
    frame."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return max(dx, dy)


def _motion_verb(motion: str) -> str:
    return {"pan left": "pans left", "pan right": "pans right", "tilt up": "tilts up",
            "tilt down": "tilts down", "zoom in": "zooms in", "zoom out": "zooms out"}.get(
        motion, "moves")
