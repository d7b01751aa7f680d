"""Short answers: sentences said once each, and no more of them than a short answer holds."""

from __future__ import annotations

import re

SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
"""Where one sentence ends and the next begins."""

ANSWER_WORDS = 16
"""The most an answer from the detectors says: about five seconds of speech at three words a
second, no longer than the moment it is about."""


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_BREAK.split(text.strip()) if s.strip()]


def brief(text: str, max_words: int = ANSWER_WORDS) -> str:
    """``text`` with each sentence said once (the first time), cut after the last whole
    sentence within ``max_words`` words (the first sentence is always kept)."""
    kept: list[str] = []
    seen: set[str] = set()
    words = 0
    for sentence in sentences(text):
        key = re.sub(r"\W+", " ", sentence.lower()).strip()
        if key in seen:
            continue
        n = len(sentence.split())
        if kept and words + n > max_words:
            break
        seen.add(key)
        kept.append(sentence)
        words += n
    return " ".join(kept)
