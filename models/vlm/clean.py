"""Turns a vision-language model's answer into one or two sentences fit to be spoken.

It removes the framing models like to add ("The image shows", "In this image,", "I can see",
"Here is a description:"), markdown and quotes, and any clause that guesses emotions or identity
("appears to be happy", "seems angry", "who looks like a famous actor"); it keeps the model's
tense, cuts to a word budget at a sentence or clause boundary and ends with a full stop.
"""

from __future__ import annotations

import re

EMOTIONS = (
    "happy|sad|angry|upset|annoyed|furious|mad|afraid|scared|frightened|fearful|terrified|"
    "nervous|anxious|worried|calm|relaxed|content|joyful|joyous|cheerful|excited|thrilled|"
    "surprised|shocked|confused|bored|tired|sleepy|lonely|depressed|pensive|thoughtful|"
    "contemplative|determined|focused|concentrated|serious|stern|proud|embarrassed|ashamed|"
    "guilty|jealous|hopeful|disappointed|frustrated|distressed|sorrowful|melancholic|"
    "melancholy|amused|pleased|satisfied|delighted|curious|confident|uncomfortable|"
    "uneasy|tense|stressed|emotional|in love|in deep thought|lost in thought|deep in thought|"
    "in pain|at peace|at ease|in a good mood|in a bad mood|friendly|hostile|aggressive"
)
ADVERBS = "happily|sadly|angrily|nervously|anxiously|joyfully|cheerfully|contentedly|" \
    "thoughtfully|sorrowfully|fearfully|excitedly|proudly|lovingly|wistfully|pensively"
_ADVERB = r"(?:very |quite |rather |a bit |a little |somewhat |slightly |really |deeply |extremely )?"
_LINK = r"(?:appears?|appearing|seems?|seeming|looks?|looking|feels?|feeling|is|are)"
_EMOTION = re.compile(
    rf"\b{_LINK} (?:to be )?{_ADVERB}(?:{EMOTIONS})\b"
    rf"|\b(?:with|has|have|wearing) an? {_ADVERB}(?:{EMOTIONS}) (?:expression|look|face)\b"
    rf"|\bexpression of (?:{EMOTIONS})\b"
    rf"|\b(?:{EMOTIONS})\b(?= expression| look on)",
    re.IGNORECASE)
_IDENTITY = re.compile(
    r"\b(?:looks?|looking|appears?|appearing|seems?|seeming) (?:to be )?(?:like )?"
    r"(?:a |an |the )?(?:famous|well-known|celebrity|known|popular)\b"
    r"|\bresembl(?:es|ing|e)\b|\breminiscent of\b|\blookalike\b|\bcelebrit(?:y|ies)\b"
    r"|\bwho (?:is|are) (?:probably|possibly|likely|perhaps)\b"
    r"|\b(?:appears?|seems?) to be (?:in (?:his|her|their) )?(?:early |mid |late )?"
    r"(?:\d+s|teens|twenties|thirties|forties|fifties|sixties|seventies)\b",
    re.IGNORECASE)
# Phrases that can go while the rest of the sentence stays.
_PHRASES = re.compile(
    rf"(?P<lead>,)?\s+(?:"
    rf"(?:with|wearing|having) an? {_ADVERB}(?:{EMOTIONS}) (?:expression|look|face|smile)\b"
    rf"|(?:looking|appearing|seeming|feeling) (?:to be )?{_ADVERB}(?:{EMOTIONS})\b"
    rf"|{_ADVERB}(?:{ADVERBS})\b)(?(lead),?)",
    re.IGNORECASE)
_NAMED = re.compile(r"\s+(?:named|called) [A-Z][a-z]+(?: [A-Z][a-z]+)?")
# Guesses at a name: "possibly John Smith", "named Anna", "could be Tom Hanks" (case matters).
_NAME_GUESS = re.compile(
    r"\b(?:[Pp]ossibly|[Pp]robably|[Pp]erhaps|[Pp]resumably|[Ll]ikely|[Mm]aybe|named|called)"
    r" (?:the )?[A-Z][a-z]+"
    r"|\b(?:could|might|may) be (?:the )?(?:[A-Z][a-z]+ [A-Z][a-z]+|famous|well-known)")

_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok)\s*[!,.]\s*)?"
    r"(?:here(?:'s| is| are)\b[^:.\n]*[:.]\s*)", re.IGNORECASE)
_FRAMING = re.compile(
    r"^\s*(?:"
    r"(?:in|on) (?:this|the) (?:image|picture|photo|photograph|frame|scene|screenshot|still|"
    r"video|shot|clip)\s*,?\s*(?:(?:we|you|i) (?:can )?see\s+)?(?:there (?:is|are)\s+)?"
    r"|(?:the|this) (?:image|picture|photo|photograph|frame|scene|screenshot|still|video|shot|"
    r"clip) (?:shows|depicts|features|displays|presents|captures|contains|is of|"
    r"appears to show|seems to show)\s+"
    r"|this is (?:an? )?(?:image|picture|photo|photograph|frame|screenshot|still|shot) "
    r"(?:of|showing|depicting)\s+"
    r"|(?:i|we|you) (?:can )?(?:see|observe|notice)\s+(?:that\s+)?"
    r"|there (?:is|are) (?=.{0,200}\bin (?:the|this) (?:image|picture|frame)\b)"
    r")", re.IGNORECASE)
_TRAILING_FRAME = re.compile(
    r",? (?:in|on) (?:the|this) (?:image|picture|photo|frame|screenshot)(?=[.!?]|$)",
    re.IGNORECASE)
_MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*(?:[-*•]|\d+[.)])\s+)", re.MULTILINE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
_CLAUSE = re.compile(r"(,\s+|;\s+|\s+(?:who|which|while|as)\s+|\s+and\s+(?=(?:is|are|"
                     r"appears?|seems?|looks?)\b))")
_WEAK_END = {"a", "an", "the", "and", "or", "but", "of", "with", "to", "in", "on", "at", "by",
             "for", "from", "who", "which", "while", "as", "is", "are", "that", "its", "their",
             "his", "her", "into", "onto", "near", "behind", "under", "over"}


def _speculative(text: str) -> bool:
    return bool(_EMOTION.search(text) or _IDENTITY.search(text) or _NAME_GUESS.search(text))


def _drop_speculation(sentence: str) -> str:
    """The sentence without its speculative clauses ("" when the main clause speculates)."""
    sentence = _NAMED.sub("", _PHRASES.sub("", sentence))
    parts = _CLAUSE.split(sentence)
    # parts alternates: clause, separator, clause, separator, ...
    clauses = parts[0::2]
    seps = [""] + parts[1::2]
    if _speculative(clauses[0]):
        return ""
    kept = clauses[0]
    dropped_after_comma = False
    for sep, clause in zip(seps[1:], clauses[1:], strict=True):
        if _speculative(clause):
            dropped_after_comma = sep.strip() == ","
            continue
        if dropped_after_comma and sep.strip() == ",":
            sep = " "  # "A man, possibly X, runs" -> "A man runs"
        dropped_after_comma = False
        kept += sep + clause
    return kept


def _tidy(sentence: str) -> str:
    s = re.sub(r"\s+", " ", sentence).strip(" ,;:-–—")
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    s = _TRAILING_FRAME.sub("", s)
    s = s.rstrip(" ,;:-–—")
    if not s:
        return ""
    s = s[0].upper() + s[1:]
    if s[-1] not in ".!?":
        s += "."
    return s


def _cut(text: str, max_words: int) -> str:
    """Text cut to at most ``max_words`` words, at a sentence, clause or word boundary."""
    if len(text.split()) <= max_words:
        return text
    out = ""
    for sentence in _SENTENCE.split(text):
        candidate = (out + " " + sentence).strip()
        if len(candidate.split()) > max_words:
            if out:
                return out
            break
        out = candidate
    sentence = _SENTENCE.split(text)[0]
    best = ""
    for m in re.finditer(r"[,;:]\s|\s(?:and|but|while|as|who|which)\s|\s[-–—]\s", sentence):
        head = sentence[:m.start()]
        if len(head.split()) <= max_words and len(head.split()) >= 2:
            best = head
    if best:
        return best
    words = sentence.split()[:max_words]
    while len(words) > 1 and words[-1].lower().strip(",;:") in _WEAK_END:
        words.pop()
    return " ".join(words)


def clean(text: str, max_words: int | None = None) -> str:
    """A model's answer made ready to speak: framing, markdown and speculation removed, cut to
    ``max_words`` at a sentence or clause boundary, ending with a full stop ("" if nothing is
    left)."""
    text = text.replace("\r", "\n")
    text = re.sub(r"[\x00-\x09\x0b-\x1f\x7f\ufffd]", "", text)  # controls, broken bytes
    text = _MARKDOWN.sub("", text)
    text = re.sub(r"\s*\n+\s*", " ", text).strip()
    text = _PREAMBLE.sub("", text)
    text = text.strip().strip("\"'“”‘’").strip()
    text = re.sub(r"[\"“”]", "", text)
    sentences = []
    for sentence in _SENTENCE.split(text):
        previous = None
        while previous != sentence:
            previous = sentence
            sentence = _FRAMING.sub("", sentence)
            sentence = _PREAMBLE.sub("", sentence)
        sentence = _tidy(_drop_speculation(sentence.strip()))
        if sentence and len(sentence.rstrip(".!?").strip()) > 0:
            sentences.append(sentence)
    text = " ".join(sentences)
    if max_words is not None and max_words > 0:
        text = _tidy(_cut(text, max_words))
    return text
