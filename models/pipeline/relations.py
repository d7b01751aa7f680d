"""What people do with the things around them, from where the boxes are: riding a bicycle,
sitting on a bench, holding a cup.

Boxes are (x0, y0, x1, y1) as fractions of the frame. The rules read the geometry the way a
viewer does: a rider's body is above the bicycle and their feet reach into it; a sitter's hips
are on the seat; a held thing is small and inside the upper body's reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.pipeline.phrases import number

RIDDEN = {"bicycle": "rides a bicycle", "motorcycle": "rides a motorcycle",
          "horse": "rides a horse", "elephant": "rides an elephant",
          "skateboard": "rides a skateboard", "surfboard": "surfs"}
SEATS = {"chair": "sits on a chair", "bench": "sits on a bench", "sofa": "sits on a sofa",
         "bed": "is on a bed"}
HELD = {"cup": "holds a cup", "mobile phone": "holds a phone", "bottle": "holds a bottle",
        "book": "holds a book", "wine glass": "holds a glass", "umbrella": "holds an umbrella",
        "remote": "holds a remote", "tennis racket": "holds a tennis racket",
        "baseball bat": "holds a bat", "knife": "holds a knife", "handbag": "carries a bag",
        "suitcase": "pulls a suitcase"}
PLURAL = {"rides a bicycle": "ride bicycles", "rides a motorcycle": "ride motorcycles",
          "rides a horse": "ride horses", "rides an elephant": "ride an elephant",
          "rides a skateboard": "ride skateboards", "surfs": "surf",
          "sits on a chair": "sit on chairs", "sits on a bench": "sit on a bench",
          "sits on a sofa": "sit on a sofa", "is on a bed": "are on a bed"}
MIN_PERSON_HEIGHT = 0.12
"""People smaller than this share of the frame's height are too far to judge what they do."""


@dataclass(frozen=True)
class Relation:
    """A person (the index of their box) and what they do with an object."""

    person: int
    verb: str
    label: str


def _overlap_x(a: Sequence[float], b: Sequence[float]) -> float:
    """How much of box ``a``'s width box ``b`` covers."""
    width = a[2] - a[0]
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) / width if width > 0 else 0.0


def _inside(small: Sequence[float], big: Sequence[float], margin: float = 0.02) -> bool:
    cx, cy = (small[0] + small[2]) / 2, (small[1] + small[3]) / 2
    return big[0] - margin <= cx <= big[2] + margin and big[1] - margin <= cy <= big[3] + margin


def relate(persons: Sequence[Sequence[float]], objects: Sequence[dict]) -> list[Relation]:
    """Each person's relation to the objects, at most one per person (riding first, then
    sitting, then holding)."""
    out: list[Relation] = []
    for i, p in enumerate(persons):
        height = p[3] - p[1]
        if height < MIN_PERSON_HEIGHT:
            continue
        found: Relation | None = None
        for kind in (RIDDEN, SEATS, HELD):
            for o in objects:
                label = str(o.get("label", ""))
                box = o.get("box")
                if label not in kind or not box or len(box) != 4:
                    continue
                if kind is RIDDEN and _rides(p, box):
                    found = Relation(i, RIDDEN[label], label)
                elif kind is SEATS and _sits(p, box):
                    found = Relation(i, SEATS[label], label)
                elif kind is HELD and _holds(p, box):
                    found = Relation(i, HELD[label], label)
                if found:
                    break
            if found:
                break
        if found:
            out.append(found)
    return out


def _rides(p: Sequence[float], v: Sequence[float]) -> bool:
    """The person is above the vehicle and reaches into it: overlapping across, their top
    above its top, their bottom inside its height."""
    if _overlap_x(p, v) < 0.5 and _overlap_x(v, p) < 0.5:
        return False
    return p[1] < v[1] and v[1] - 0.02 <= p[3] <= v[3] + 0.05 and (p[1] + p[3]) / 2 < \
        (v[1] + v[3]) / 2


def _sits(p: Sequence[float], seat: Sequence[float]) -> bool:
    """The person's lower half is on the seat: overlapping across, their hips (the middle of
    the lower half of the box) inside the seat's height, their head above it."""
    if _overlap_x(p, seat) < 0.4:
        return False
    hips = p[1] + 0.6 * (p[3] - p[1])
    return seat[1] - 0.03 <= hips <= seat[3] and p[1] < seat[1]


def _holds(p: Sequence[float], thing: Sequence[float]) -> bool:
    """A thing much smaller than the person, in their upper two thirds and within arm's reach
    across (a little beyond the box's sides)."""
    ph, pw = p[3] - p[1], p[2] - p[0]
    th, tw = thing[3] - thing[1], thing[2] - thing[0]
    if th * tw > 0.25 * ph * pw:
        return False
    reach = (p[0] - 0.15 * pw, p[1] + 0.1 * ph, p[2] + 0.15 * pw, p[1] + 0.75 * ph)
    return _inside(thing, reach, margin=0.0)


def phrase(relations: Sequence[Relation]) -> list[str]:
    """Sentences for the relations: one per verb, with the number of people ("Two people ride
    bicycles.", "A person holds a cup.")."""
    by_verb: dict[str, int] = {}
    for r in relations:
        by_verb[r.verb] = by_verb.get(r.verb, 0) + 1
    words = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}
    out = []
    for verb, n in by_verb.items():
        if n == 1:
            out.append(f"A person {verb}.")
        else:
            many = PLURAL.get(verb, verb.replace("holds", "hold").replace("carries", "carry")
                              .replace("pulls", "pull"))
            out.append(f"{words.get(n, str(n))} people {many}.")
    return out


def _centre(box: Sequence[float]) -> tuple[float, float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[3] - box[1]


def walking_group(walkers: Sequence[dict], before: dict[int, dict],
                  verb: str = "walk") -> str:
    """"Three people walk to the left." for two or more people walking (or running, with
    ``verb`` "run"), with the way they go when they all go the same way (across the picture,
    or toward or away from the camera, from their boxes now and in the frame ``before``, by
    id); "" for fewer than two."""
    if len(walkers) < 2:
        return ""
    ways = set()
    for p in walkers:
        old = before.get(p.get("id", -1), {}).get("box")
        box = p.get("box")
        if not old or not box or len(old) != 4 or len(box) != 4:
            ways.add("")
            continue
        (x0, _, h0), (x1, _, h1) = _centre(old), _centre(box)
        if abs(x1 - x0) >= 0.01:
            ways.add(" to the right" if x1 > x0 else " to the left")
        elif h0 > 0 and abs(h1 - h0) / h0 >= 0.05:
            ways.add(" toward the camera" if h1 > h0 else " away from the camera")
        else:
            ways.add("")
    way = ways.pop() if len(ways) == 1 else ""
    return f"{number(len(walkers)).capitalize()} people {verb}{way}."
