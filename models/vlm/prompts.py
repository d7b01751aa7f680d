"""Prompts that ask a vision-language model for audio-description style sentences.

The style follows :mod:`models.pipeline.composer`: present tense, third person, concrete; no guessing of
emotion, identity, age, gender, job or relationship, and no hedging; people keep the labels they
already have ("the first person"); say what changed instead of repeating what was just said; fit
the length of the pause.
"""

from __future__ import annotations

from collections.abc import Sequence

WORDS_PER_SECOND = 2.5
"""Speaking rate used to turn a pause into a word budget."""
LEVEL_CAP = {1: 10, 2: 20, 3: 35}
"""Most words per description at verbosity 1 (brief), 2 (standard) and 3 (detailed)."""
MIN_WORDS = 3
RECENT = 3
"""How many recent descriptions a prompt quotes."""

STYLE = ("Write in the present tense and the third person, like an audio describer. "
         "Describe only what is visible: people, actions, places, objects, on-screen text. "
         "Do not guess emotions, names, identity, age, gender, jobs or relationships, and do "
         "not hedge (no \"I think\", \"it appears\", \"probably\"); call people "
         "\"a person\", \"the first person\", \"the person on the left\". "
         "Do not start with \"The image shows\" or \"I can see\". No lists, no markdown.")


def word_budget(gap_seconds: float, verbosity: int = 2) -> int:
    """Words that fit in a pause of ``gap_seconds`` at about 2.5 words a second."""
    cap = LEVEL_CAP.get(verbosity, LEVEL_CAP[2])
    fits = int(max(gap_seconds, 0.0) * WORDS_PER_SECOND)
    return max(MIN_WORDS, min(cap, fits))


def _context(perception: str, recent: Sequence[str]) -> str:
    parts = []
    if perception.strip():
        parts.append("Our detectors found: " + perception.strip().rstrip(".") + ". "
                     "Keep the labels they use for people.")
    last = [r.strip() for r in recent if r.strip()][-RECENT:]
    if last:
        quoted = " ".join(f"\"{r}\"" for r in last)
        parts.append(f"Already said: {quoted} Say only what changed; do not repeat these.")
    return " ".join(parts)


def describe_prompt(gap_seconds: float, verbosity: int, perception: str = "",
                    recent: Sequence[str] = ()) -> str:
    """An instruction for one or two short sentences that fit a pause of ``gap_seconds``."""
    budget = word_budget(gap_seconds, verbosity)
    count = "one short sentence" if budget < 12 else "one or two short sentences"
    text = (f"Describe this video frame for a blind viewer in {count}, "
            f"at most {budget} words in all. {STYLE}")
    context = _context(perception, recent)
    return f"{text} {context}".strip()


def ask_prompt(question: str, perception: str = "", recent: Sequence[str] = ()) -> str:
    """An instruction to answer a viewer's question about the current frame."""
    question = question.strip()
    if not question:
        raise ValueError("A question is needed; this one is empty.")
    text = (f"A blind viewer asks about this video frame: \"{question}\" Answer in one or two "
            f"short sentences from what is visible; if it cannot be seen, say so. {STYLE}")
    context = _context(perception, recent)
    return f"{text} {context}".strip()


LABEL_WORDS = 6


def label_prompt() -> str:
    """An instruction to name the person in a cropped picture by what can be seen of them, so
    the narration can call them the same thing all through the film."""
    return ("This picture shows one person from a video. Give a short label for them, of at "
            f"most {LABEL_WORDS} words, from what they wear, carry or look like: for example "
            "\"the man in the red coat\" or \"the person with glasses\". Only the label. Do not "
            "guess names, emotions or age.")
