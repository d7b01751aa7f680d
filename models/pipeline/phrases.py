"""The phrases the composer builds sentences from: numbers, places, people, objects, and the
labels a vision-language model may give a person (checked before they are used)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from models.perception.objects import plural
from models.types import Observation
from models.vlm.clean import ADVERBS, EMOTIONS, clean
from models.vlm.prompts import LABEL_WORDS

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
            "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"]
WHERE = {"left": "on the left", "right": "on the right", "centre": "in the centre"}


def number(n: int) -> str:
    return NUMBERS[n] if 0 <= n < len(NUMBERS) else str(n)


def sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def where(p: dict) -> str:
    """ "on the left", "in the centre", "on the right" or "" for a person's position now."""
    return WHERE.get(p.get("position", ""), "")


GESTURE_DETAIL = {"arm raised": "with an arm raised", "arms raised": "with both arms raised",
                  "arms outstretched": "with arms outstretched",
                  "hands on head": "with their hands on their head"}
"""A gesture as it follows a person: "a person standing with an arm raised"."""
MOVING = ("running", "walking")
"""The ways of moving the people stage reports among a person's gestures."""


def person_detail(p: dict) -> str:
    """ "standing on the left", "walking in the centre in the distance", "sitting" """
    bits = []
    posture = p.get("posture", "unknown")
    if posture and posture != "unknown":
        bits.append(posture)
    gestures = [g for g in p.get("gestures", []) if g not in MOVING]
    for moving in MOVING:
        if moving in p.get("gestures", []) and posture in ("standing", "unknown"):
            bits = [moving]
    if gestures:
        bits.append(GESTURE_DETAIL.get(gestures[0], gestures[0]))
    place = where(p)
    if p.get("distance") == "far":
        place = (place + " in the distance").strip()
    return " ".join(b for b in [*bits, place] if b)


def listing(parts: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c" """
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _third(box: Sequence[float]) -> str:
    cx = (box[0] + box[2]) / 2
    return "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"


PAIRS = ("skis", "scissors")
"""Labels that name one thing in the plural: "a pair of skis"."""


def _article(label: str) -> str:
    if label in PAIRS:
        return "a pair of " + label
    return ("an " if label[:1] in "aeiou" else "a ") + label


def object_groups(objects: Iterable[dict]) -> dict[str, list[dict]]:
    """An objects observation's things by label, people left out (the people stage says
    them), biggest box first within each label."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for o in objects:
        label = str(o.get("label", ""))
        if label and label != "person" and len(o.get("box", ())) == 4:
            groups[label].append(o)
    for items in groups.values():
        items.sort(key=lambda o: -_area(o["box"]))
    return dict(groups)


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def object_phrase(label: str, items: Sequence[dict]) -> str:
    """ "two horses on the left", "a dog", "many cars" (where, when all are in one third)."""
    n = len(items)
    things = f"pairs of {label}" if label in PAIRS else plural(label, n)
    count = _article(label) if n == 1 else f"{'many' if n > 10 else number(n)} {things}"
    thirds = {_third(o["box"]) for o in items}
    return f"{count} {WHERE[thirds.pop()]}" if len(thirds) == 1 else count


def detected_people(observation: Observation | None) -> int:
    """How many people an objects observation's detector found."""
    if observation is None:
        return 0
    return sum(1 for o in observation.data.get("objects", []) if o.get("label") == "person")


CROWD = 4
"""From this many people the detector's count is said when it sees more than the people
stage, which follows at most a few (the largest) and misses small, far or turned people."""


def crowd_count(tracked: int, detected: int) -> int:
    """The number of people to say when the detector sees a group the people stage under-
    counts; 0 when the people stage's own count (and its detail) should be said."""
    return detected if detected > tracked and detected >= CROWD else 0


def people_in_view(n: int) -> str:
    """ "three people in view", "a person in view" """
    return "a person in view" if n == 1 else f"{number(n)} people in view"


def _left_to_right(people: Iterable[dict]) -> list[dict]:
    return sorted(people, key=lambda p: p.get("box", [0])[0])


def people_phrase(people: Sequence[dict], labels: Mapping[int, str] | None = None) -> str:
    """ "two people, one standing on the left and one sitting on the right"; people with a
    label (:meth:`Composer.name_person`) are called by it: "the man in the red coat, standing
    on the left" """
    n = len(people)
    if n == 0:
        return "no one"
    ordered = _left_to_right(people)
    parts = [person_detail(p) for p in ordered]
    names = [(labels or {}).get(p.get("id", -1), "") for p in ordered]
    if n == 1:
        return f"{names[0] or 'a person'} {parts[0]}".strip()
    if n <= 3 and all(parts):
        return f"{number(n)} people, " + listing(
            [f"{name}, {p}" if name else f"one {p}" for name, p in zip(names, parts, strict=True)])
    return f"{number(n)} people"


# ---------------------------------------------------------------------------------------------
# Labels from a vision-language model

# Guesses (feelings, names, fame, age), anywhere in the model's answer.
def _where(box: Sequence[float]) -> str:
    """Where a box is, in words: "in the top left corner", "at the bottom", "in the centre"."""
    y = (box[1] + box[3]) / 2
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else ""
    col = "" if _third(box) == "centre" else _third(box)
    if row and col:
        return f"in the {row} {col} corner"
    if row or col:
        return f"at the {row or col}"
    return "in the centre"


_GUESSES = re.compile(
    rf"\b(?:{EMOTIONS}|{ADVERBS})\b"
    r"|\b(?:appears?|seems?|looks?|looking|probably|possibly|perhaps|maybe|likely|might|could|"
    r"famous|celebrity|named|called|resembl\w*|like)\b"
    r"|\b\d+s\b|\byears? old\b|\byear-old\b"
    r"|\b(?:twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b",
    re.IGNORECASE)
# Words that make the label a clause or an answer rather than a noun phrase.
_NOT_A_NOUN_PHRASE = re.compile(
    r"\b(?:who|which|that|is|are|was|were|i|you|we|sorry|unknown|unclear|cannot|can't|image|"
    r"picture|photo|frame|video|label)\b"
    # Where someone stands changes; the narration says it apart ("on the left").
    r"|\b(?:left|right|centre|center|middle|foreground|background)\b", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^\s*label\s*:\s*", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:the|a|an|this|that)\s+", re.IGNORECASE)
_PLAIN_WORDS = re.compile(r"^[a-z0-9' -]+$")
_DEFAULT_NAMES = re.compile(rf"^the (?:(?:{'|'.join(ORDINALS)}) )?(?:person|people|one)$")


def person_label(text: str) -> str:
    """A vision-language model's label for a person made fit for the narration ("the man with
    glasses"), or "" when it is not one.

    The text is cleaned (framing and speculative clauses go, see :func:`models.vlm.clean.clean`)
    and must then be a short noun phrase: at most ``LABEL_WORDS`` words after its article, which
    becomes "the"; plain lower-case words (a capital letter inside means a name, so it is
    refused); no emotion, mood or guess ("the happy man", "the famous actor", "the man in his
    thirties"); not a clause ("the man who waves"); no place in the picture ("the man on the
    left": that changes); not the composer's own "the first person".
    """
    raw = _LABEL_PREFIX.sub("", text).strip()
    # A capital past the first word is a name ("a man, possibly Tom"); guesses go too.
    if any(w[:1].isupper() for w in raw.split()[1:]) or _GUESSES.search(raw):
        return ""
    text = clean(raw).rstrip(".!?").strip()
    if not text:
        return ""
    text = text[0].lower() + text[1:]
    body = _ARTICLE.sub("", text).strip()
    words = body.split()
    if not words or len(words) > LABEL_WORDS:
        return ""
    label = "the " + " ".join(words)
    if not _PLAIN_WORDS.match(label) or _NOT_A_NOUN_PHRASE.search(label):
        return ""
    if _DEFAULT_NAMES.match(label) or not re.search(r"[a-z]", body):
        return ""
    return label


def _indefinite(label: str) -> str:
    """ "the man with glasses" -> "a man with glasses" """
    rest = label.removeprefix("the ")
    return ("an " if rest[:1] in "aeiou" else "a ") + rest
