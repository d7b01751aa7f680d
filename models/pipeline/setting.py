"""Where we are: the setting, from the objects in view and the picture's layout.

The rules are general, not tuned to a film: things that only belong in one kind of place
(a stove, a bed, a dining table, traffic lights) decide first; then outdoor places from
animals, vehicles and the ground; then plain "outdoors" under a clear sky. When nothing is
telling, nothing is said: a wrong setting misleads more than none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KITCHEN = {"oven", "microwave", "refrigerator", "sink", "toaster"}
TABLE = {"table", "wine glass", "fork", "knife", "spoon", "bowl", "cup", "pizza",
         "sandwich", "cake", "doughnut", "hot dog"}
OFFICE = {"laptop", "keyboard", "mouse"}
LIVING = {"sofa", "television", "remote"}
BEDROOM = {"bed"}
BATHROOM = {"toilet"}
STREET = {"car", "bus", "truck", "traffic light", "stop sign", "fire hydrant",
          "parking meter", "motorcycle"}
FARM = {"horse", "cow", "sheep"}
WILD = {"giraffe", "zebra", "elephant", "bear"}
WATER = {"boat", "surfboard"}
BEACH = {"surfboard", "umbrella"}
PARK = {"bench", "kite", "frisbee", "sports ball", "dog"}
FLAT = 0.85
"""A picture this smooth all over is graphics or a title card, not a place."""
INDOOR = KITCHEN | OFFICE | LIVING | BEDROOM | BATHROOM | {"chair", "table", "book", "clock",
                                                          "vase", "potted plant"}


INDOOR_WORDS = {"kitchen", "bedroom", "bathroom", "table", "office", "living room", "indoors"}
"""The settings that are indoors (a table may be outside, but rarely in film)."""


@dataclass(frozen=True)
class Setting:
    """A place: its phrase as said ("on a street") and the word the scores look for."""

    phrase: str
    word: str


def _has(labels: Mapping[str, int], kinds: set[str], least: int = 1) -> bool:
    return sum(n for label, n in labels.items() if label in kinds) >= least


def name_setting(labels: Mapping[str, int], layout: Mapping[str, float] | None
                 ) -> Setting | None:
    """The setting for objects ``labels`` (COCO label to count, of the last moments) and the
    picture's ``layout`` (shares of sky, greenery, water, sand, road); None when unsure."""
    layout = layout or {}
    if layout.get("flat", 0.0) >= FLAT:
        return None  # a title card or graphics: no place
    sky = layout.get("sky", 0.0)
    green = layout.get("greenery", 0.0)
    water = layout.get("water", 0.0)
    sand = layout.get("sand", 0.0)
    road = layout.get("road", 0.0)
    outdoors = sky >= 0.25
    # A room is named from two things that belong indoors, one of them telling: one white box
    # taken for a refrigerator (a bus's roof seen from above) must not make a kitchen.
    indoors = not outdoors and _has(labels, INDOOR | TABLE, least=2)
    if indoors and _has(labels, KITCHEN):
        return Setting("in a kitchen", "kitchen")
    if indoors and _has(labels, BEDROOM):
        return Setting("in a bedroom", "bedroom")
    if indoors and _has(labels, BATHROOM):
        return Setting("in a bathroom", "bathroom")
    if labels.get("table") and _has(labels, TABLE | {"chair", "person"}, least=2) or \
            _has(labels, TABLE - {"table"}, least=2):
        return Setting("at a table", "table")
    if indoors and _has(labels, OFFICE):
        return Setting("at a desk", "office")
    if indoors and _has(labels, LIVING):
        return Setting("in a living room", "living room")
    if _has(labels, WATER) or (water >= 0.3 and sky >= 0.2 and not road):
        if sand >= 0.15 or _has(labels, BEACH, least=2):
            return Setting("on a beach", "beach")
        return Setting("by the water", "water")
    if _has(labels, STREET, least=2) or (_has(labels, STREET) and road >= 0.25) or \
            labels.get("traffic light") or labels.get("stop sign"):
        return Setting("on a street", "street")
    if _has(labels, WILD):
        return Setting("out in the wild", "wild")
    if _has(labels, FARM) and green >= 0.15:
        return Setting("in a field", "field")
    if green >= 0.35 and (outdoors or _has(labels, PARK)):
        if _has(labels, PARK) or labels.get("person", 0) >= 2:
            return Setting("in a park", "park")
        return Setting("on open grass", "field")
    if _has(labels, PARK) and outdoors:
        return Setting("in a park", "park")
    if road >= 0.35 and outdoors:
        return Setting("on a road", "road")
    if outdoors:
        return Setting("outdoors", "outdoors")
    if _has(labels, INDOOR, least=2):
        return Setting("indoors", "indoors")
    return None


GENERIC = {"outdoors", "indoors"}
"""Settings that only say inside or out: never said over a more telling one of the same
side ("Outdoors." after "In a field." tells nothing new)."""


class SettingWatch:
    """Says the setting at the first shot and when it changes, once it has held: two frames
    after a cut, four within a shot (one odd frame, a passing bus, does not move the film to a
    street, and a place does not change in the middle of a shot every other second)."""

    HOLD = 2
    HOLD_IN_SHOT = 4

    def __init__(self) -> None:
        self.said: Setting | None = None
        self._candidate: Setting | None = None
        self._count = 0
        self._since_cut = True  # no setting said since the last cut (or the start)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def judge(self, setting: Setting | None, cut: bool) -> Setting | None:
        """The setting to say now, if any."""
        if cut:
            self._since_cut = True
        if setting is None:
            self._candidate, self._count = None, 0
            return None
        if setting == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = setting, 1
        said = self.said
        if setting == said:
            return None
        if setting.word in GENERIC and said is not None and said.word not in GENERIC and \
                (setting.word == "outdoors") == (said.word not in INDOOR_WORDS):
            return None  # less telling than what was said, and not a change of side
        if self._count >= (self.HOLD if self._since_cut else self.HOLD_IN_SHOT):
            self.said = setting
            self._since_cut = False
            return setting
        return None


SURE = 0.4
"""Objects found with less confidence than this do not count toward the setting (the rules
ask for two things, or one with the ground that goes with it, so one weak find decides
nothing)."""


def count_labels(objects: Iterable[dict]) -> dict[str, int]:
    """COCO label to how many boxes have it (those found with some confidence)."""
    counts: dict[str, int] = {}
    for o in objects:
        label = str(o.get("label", ""))
        if label and float(o.get("score", 1.0)) >= SURE:
            counts[label] = counts.get(label, 0) + 1
    return counts
