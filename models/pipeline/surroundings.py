"""Where the film is and what people do with the things around them, for the composer.

:class:`Surroundings` follows the film frame by frame: it names the setting at the first shot
and when it changes (models/pipeline/setting.py), and says what people do with objects (riding,
sitting on, holding: models/pipeline/relations.py), each once while it lasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.pipeline.relations import phrase, relate
from models.pipeline.setting import SURE, Setting, SettingWatch, count_labels, name_setting
from models.types import Observation

OBJECTS_KEPT = 2.0
"""Seconds the objects of earlier frames still count toward the setting (a detector misses a
thing now and then)."""
RELATION_KEPT = 20.0
"""Seconds a relation said stays known; said again only after that, or once it has ended."""


@dataclass(frozen=True)
class Line:
    """A sentence for the composer: its text, level, priority and how long it stays true."""

    text: str
    level: int
    priority: int
    valid: float


def _persons(objects: Sequence[dict], people: Sequence[dict]) -> list[Sequence[float]]:
    """People's boxes: the detector's sure ones (it sees far-away people too), else the pose
    stage's."""
    found = [o["box"] for o in objects if o.get("label") == "person"
             and len(o.get("box", ())) == 4 and float(o.get("score", 1.0)) >= SURE]
    return found or [p["box"] for p in people if len(p.get("box", ())) == 4]


RELATION_SURE = 0.4
"""Least confidence in an object a person is said to use: the geometry (a person above a
bicycle, feet in it) backs the detector up, so a little less than the setting's."""


def _sure(objects: Sequence[dict]) -> list[dict]:
    """The objects found with some confidence: what a person does is said only of those."""
    return [o for o in objects if float(o.get("score", 1.0)) >= RELATION_SURE]


class Surroundings:
    """See the module's text; one per film (``reset`` for the next one, or after a seek)."""

    def __init__(self) -> None:
        self._watch = SettingWatch()
        self._recent: list[tuple[float, dict[str, int]]] = []
        self._relations: dict[str, float] = {}  # sentence -> media time last true

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    @property
    def setting(self) -> Setting | None:
        """The setting last said."""
        return self._watch.said

    def frame(self, t: float, shot: bool, objects: Observation | None,
              scene: Observation | None, people: Sequence[dict]) -> list[Line]:
        out: list[Line] = []
        items = list(objects.data.get("objects", [])) if objects is not None else []
        if objects is not None:
            self._recent = [(when, c) for when, c in self._recent
                            if t - when <= OBJECTS_KEPT and not shot]
            self._recent.append((t, count_labels(items)))
        if scene is not None:
            labels: dict[str, int] = {}
            for _, counts in self._recent:
                for label, n in counts.items():
                    labels[label] = max(labels.get(label, 0), n)
            if people:
                labels["person"] = max(labels.get("person", 0), len(people))
            layout = None if scene.data.get("dark") else scene.data.get("layout")  # too dark
            said = self._watch.judge(name_setting(labels, layout), shot)  # to read the ground
            if said is not None:
                out.append(Line(f"{said.phrase[0].upper()}{said.phrase[1:]}.", 2, 1, 4.0))
        if objects is not None:
            now = phrase(relate(_persons(items, people), _sure(items)))
            for text in now:
                last = self._relations.get(text)
                if last is None or t - last > RELATION_KEPT:
                    out.append(Line(text, 2, 1, 3.0))
                self._relations[text] = t
            for text in [k for k, when in self._relations.items() if t - when > RELATION_KEPT]:
                del self._relations[text]
        return out

    @staticmethod
    def describe(objects: Observation | None, scene: Observation | None,
                 people: Sequence[dict]) -> tuple[str, list[str]]:
        """Describe now, in this frame alone: the setting ("" when unsure) and what people do
        with things."""
        items = list(objects.data.get("objects", [])) if objects is not None else []
        doing = phrase(relate(_persons(items, people), _sure(items)))
        if scene is None:
            return "", doing
        labels = count_labels(items)
        if people:
            labels["person"] = max(labels.get("person", 0), len(people))
        setting = name_setting(labels, None if scene.data.get("dark") else
                               scene.data.get("layout"))
        return (f"{setting.phrase[0].upper()}{setting.phrase[1:]}." if setting else ""), doing
