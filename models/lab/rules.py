"""The audio-description rules the composer follows, checked on any sentence: present tense, no
guessed feelings or identities, and a length that fits the pause at about three words a second.

The tense check is a heuristic (past auxiliaries, common irregular past forms, and a word in
-ed right after a pronoun or after a determiner and a noun); the guess check asks :func:`models.vlm.clean.clean`, the same
filter the player puts every model answer through, whether it would take words out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.lab.metrics import tokenize

WORDS_PER_SECOND = 3.0
"""Speaking rate for the pause rule."""

PAST = frozenset("""was were had did went came saw took ran sat stood said told got gave made
found thought knew felt brought began became fell held kept led left met paid put read rose
sang sent shot shut slept spoke spent stole struck swam threw understood woke won wore wrote
drove drank ate flew forgot grew hid hit hung lay lit lost meant rode rang sold""".split())
"""Past forms (``read``, ``put``, ``hit``, ``shut`` are also present: counted only after a
pronoun or a noun, like words in -ed)."""
AMBIGUOUS = frozenset({"read", "put", "hit", "shut", "left", "lit", "cut", "set", "let"})
PRONOUNS = frozenset({"he", "she", "they", "it", "we", "i", "who", "you", "someone", "somebody",
                      "everyone", "nobody"})
DETERMINERS = frozenset({"a", "an", "the", "this", "that", "one", "two", "three", "four"})
NOT_NOUNS = frozenset({"is", "are", "be", "been", "being", "very", "and", "or", "not", "with",
                       "of", "in", "on", "at", "to", "by"})
_ED = re.compile(r"[a-z]{2,}ed$")


@dataclass(frozen=True)
class RuleCheck:
    """What one sentence does against the rules; ``problems`` says which ones it breaks."""

    present_tense: bool
    no_guesses: bool
    fits_pause: bool
    words: int

    @property
    def passed(self) -> bool:
        return self.present_tense and self.no_guesses and self.fits_pause

    @property
    def problems(self) -> list[str]:
        out = []
        if not self.present_tense:
            out.append("not in the present tense")
        if not self.no_guesses:
            out.append("guesses feelings, identity or what is not seen")
        if not self.fits_pause:
            out.append("too long for its pause")
        return out


def is_present_tense(text: str) -> bool:
    """False when the sentence narrates in the past."""
    words = tokenize(text)
    for i, word in enumerate(words):
        before = words[i - 1] if i >= 1 else ""
        subject = before in PRONOUNS or (  # "a man walked": determiner, noun, verb
            i >= 2 and words[i - 2] in DETERMINERS and before not in NOT_NOUNS)
        if word in PAST and word not in AMBIGUOUS:
            return False
        if subject and (word in AMBIGUOUS or _ED.match(word)):
            return False
    return True


def has_no_guesses(text: str) -> bool:
    """True when the player's answer filter would keep every word."""
    from models.vlm.clean import clean  # noqa: PLC0415

    return not text.strip() or tokenize(clean(text)) == tokenize(text)


def fits(text: str, pause: float, rate: float = WORDS_PER_SECOND) -> bool:
    """At ``rate`` words a second, the sentence can be said within ``pause`` seconds (one word
    always fits)."""
    return len(tokenize(text)) <= max(1, int(pause * rate + 1e-9))


def check(text: str, pause: float) -> RuleCheck:
    """The rules for one sentence said in a pause of ``pause`` seconds."""
    return RuleCheck(is_present_tense(text), has_no_guesses(text), fits(text, pause),
                     len(tokenize(text)))


@dataclass(frozen=True)
class RuleRates:
    """The share (0 to 1) of a narrator's sentences that keep each rule, and all of them."""

    present_tense: float
    no_guesses: float
    fits_pause: float
    all_rules: float


def rates(texts: Sequence[str], pauses: Sequence[float]) -> RuleRates:
    """Rule rates over sentences and their pauses (an empty narrator keeps every rule)."""
    if len(texts) != len(pauses):
        raise ValueError(f"{len(texts)} sentences but {len(pauses)} pauses.")
    checks = [check(t, p) for t, p in zip(texts, pauses, strict=True)]
    if not checks:
        return RuleRates(1.0, 1.0, 1.0, 1.0)
    n = len(checks)
    return RuleRates(sum(c.present_tense for c in checks) / n,
                     sum(c.no_guesses for c in checks) / n,
                     sum(c.fits_pause for c in checks) / n,
                     sum(c.passed for c in checks) / n)
