"""Turns a vision-language model's answer into one or two sentences fit to be spoken.

It removes the framing models like to add ("The image shows", "In this image,", "I can see",
"Here is a description:"), markdown and quotes, and the guesses audio description leaves out:
emotions ("an angry man", "appears to be happy"), names and fame ("looks like Tom Cruise"), age
("in his forties"), jobs ("probably a police officer") and relationships ("she might be his
mother"), and hedges ("I think", "It appears that"). Where it can, only the guessing phrase goes
and the rest of the sentence stays ("a man who appears to be in his forties sitting at a desk" is
"A man sitting at a desk."); a sentence whose main clause is a guess goes whole. It keeps the
model's tense, cuts to a word budget at a sentence or clause boundary and ends with a full stop.
"""

from __future__ import annotations

import re

from models.brief import SENTENCE_BREAK

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


# Jobs and relationships: guessed from looks, never said ("probably a nurse", "his mother").
ROLES = (
    "police officer|policeman|policemen|policewoman|policewomen|police|officer|cop|detective|"
    "agent|security guard|guard|soldier|doctor|nurse|surgeon|paramedic|firefighter|fireman|"
    "firemen|teacher|professor|student|pupil|lawyer|judge|businessman|businessmen|"
    "businesswoman|businesswomen|executive|manager|secretary|receptionist|chef|cook|waiter|"
    "waitress|bartender|cashier|clerk|worker|farmer|pilot|driver|mechanic|scientist|engineer|"
    "journalist|reporter|photographer|artist|musician|singer|actor|actress|priest|nun|athlete|"
    "coach|tourist|customer|patient|politician|president|criminal|thief|thieves|prisoner|spy|"
    "maid|butler|bodyguard|celebrity|celebrities|"
    "mother|father|mom|mum|dad|parent|son|daughter|wife|wives|husband|brother|sister|sibling|"
    "grandmother|grandfather|grandparent|grandson|granddaughter|grandchild|grandchildren|aunt|"
    "uncle|cousin|nephew|niece|boyfriend|girlfriend|partner|fiancée|fiancé|fiancee|fiance|"
    "spouse|friend|colleague|co-worker|coworker|boss|bosses|employee|neighbour|neighbor|"
    "relative|lover|twin|family member|child|children|kid|baby|babies"
)
PEOPLE = (
    "man|men|woman|women|boy|girl|person|people|persons|teenager|teen|guy|lady|ladies|"
    "gentleman|gentlemen|couple|crowd|family|families|figure|stranger|toddler|audience|fan"
)
HEDGES = ("most likely|most probably|probably|possibly|likely|perhaps|presumably|maybe|"
          "apparently|seemingly")
AGES = "teens|twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties|\\d0s"
_DET = r"(?:a|an|the|his|her|their|its|one of (?:his|her|their|the))"
# A role as the head of its noun phrase: not "a police uniform", "a doctor's office".
_NOT_HEAD = (r"(?!['’]s\b)(?!\s+(?:uniform|office|car|station|badge|hat|cap|coat|jacket|"
             r"costume|outfit|building|van|truck|room|desk|kit|bag|vest|helmet)s?\b)")
_ROLE_NP = rf"{_DET} (?:[\w-]+ ){{0,2}}?(?:{ROLES})(?:s|es)?\b{_NOT_HEAD}"
_SEEMS = r"(?:appears?|appearing|seems?|seeming|looks?|looking)"
_NAME = r"(?-i:[A-Z][a-z]+(?:[ -][A-Z][a-z']+)*)"
# Guesses of job, relationship or name that make a clause speculative.
_ROLE_GUESS = re.compile(
    rf"\b(?:{HEDGES}) (?:{_DET}|someone|somebody)\b"
    rf"|(?<!there )\b(?:might|may|could|must) (?:well |also )?be (?:{_DET}|someone|somebody)\b"
    rf"|\b{_SEEMS} (?:to be |like ){_ROLE_NP}"
    rf"|\b{_SEEMS} (?:to be |like )(?:the )?{_NAME}",
    re.IGNORECASE)
_ABOUT = rf"(?:(?:about|around|roughly|approximately|{HEDGES}) )?"
_DECADE = rf"in (?:his|her|their) (?:early |mid-?|late )?(?:{AGES})\b"
_YEARS = r"(?:\d{1,2}|[a-z]+ty(?:-[a-z]+)?) years? old\b"
# Guessing phrases that can go while the rest of the sentence stays.
_GUESS_PHRASES = re.compile(
    rf"(?P<lead>,)?\s+(?:"
    rf"(?:who|that) (?:is|are|'s) (?:{HEDGES}) {_ROLE_NP}"
    rf"|(?:who|that) {_SEEMS} (?:to be |like ){_ROLE_NP}"
    rf"|(?:who|that) (?:might|may|could|must) (?:well |also )?be {_ROLE_NP}"
    rf"|(?:who|that) {_SEEMS} (?:to be |like )(?:the )?{_NAME}"
    rf"|(?:resembling|who resembles) (?:the )?{_NAME}"
    rf"|(?:who|that) (?:is|are|{_SEEMS}(?: to be)?) {_ABOUT}(?:{_DECADE}|{_YEARS})"
    rf"|{_ABOUT}{_DECADE}"
    rf")(?(lead),?)(?=[\s,.;:!?]|$)",
    re.IGNORECASE)
# A hedge set off by commas inside a sentence: "A man, I think, waits."
_MID_HEDGE = re.compile(
    rf",\s*(?:(?:I|we) (?:think|believe|guess|suppose)|it (?:seems|appears)|{HEDGES})\s*"
    r"(?:,|(?=[.!?]|$))",
    re.IGNORECASE)
# An emotion (or an age) in front of a person: "an angry man", "two happy children", "a
# happy old woman".
_FEELING_WORDS = "|".join(w for w in EMOTIONS.split("|") if " " not in w)
_ATTRIBUTIVE = re.compile(
    # A capital inside a sentence is a title or a name ("reads Happy Mother's Day"): kept.
    rf"\b(?P<art>an?\s+)?{_ADVERB}(?:(?-i:{_FEELING_WORDS})|^(?:{_FEELING_WORDS})"
    rf"|\d{{1,2}}-years?-old)(?:-looking)?"
    rf"(?:(?:,\s*|\s+and\s+){_ADVERB}(?:{_FEELING_WORDS})(?:-looking)?)*\s+"
    rf"(?=(?:[\w-]+ )?(?:{PEOPLE}|{ROLES})(?:s|es)?\b)",
    re.IGNORECASE)
# Hedges in front of a sentence: dropped, and the rest must then not be a guess of its own.
_HEDGE_START = re.compile(
    r"^\s*(?:"
    r"(?:i|we) (?:think|believe|guess|suppose|assume|suspect|would say)(?: that)?"
    r"|i'd say(?: that)?"
    r"|it (?:appears|seems|looks) (?:that|like|as if|as though)"
    r"|it(?: is|'s) (?:likely|possible|probable) that"
    rf"|(?:{HEDGES})(?=[ ,])"
    r")\s*,?\s*", re.IGNORECASE)
# After a hedge: a job, relationship or name stated as fact ("I think she is his mother.").
_HEDGED_GUESS = re.compile(
    rf"\b(?:is|are|was|were|'s) {_ROLE_NP}"
    rf"|^{_ROLE_NP}[.!?]?$"
    rf"|\b(?:is|are) {_NAME}"
    rf"|^{_NAME}[.!?]?$",
    re.IGNORECASE)

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
_SENTENCE = SENTENCE_BREAK
_CLAUSE = re.compile(r"(,\s+|;\s+|\s+(?:who|which|while|as)\s+|\s+and\s+(?=(?:is|are|"
                     r"appears?|seems?|looks?)\b))")
_WEAK_END = {"a", "an", "the", "and", "or", "but", "of", "with", "to", "in", "on", "at", "by",
             "for", "from", "who", "which", "while", "as", "is", "are", "that", "its", "their",
             "his", "her", "into", "onto", "near", "behind", "under", "over"}


def _speculative(text: str) -> bool:
    return bool(_EMOTION.search(text) or _IDENTITY.search(text) or _NAME_GUESS.search(text)
                or _ROLE_GUESS.search(text))


def _article(match: re.Match[str]) -> str:
    """The replacement for an emotion in front of a person: the article fixed for the next
    word ("An angry man" -> "A man"), or nothing."""
    art = match.group("art")
    if not art:
        return ""
    following = match.string[match.end():match.end() + 1]
    new = "an " if following.lower() in tuple("aeiou") else "a "
    return new.capitalize() if art[0].isupper() else new


def _drop_speculation(sentence: str) -> str:
    """The sentence without its speculative phrases and clauses ("" when the main clause
    speculates)."""
    sentence = _MID_HEDGE.sub("", sentence)
    sentence = _GUESS_PHRASES.sub("", sentence)
    sentence = _NAMED.sub("", _PHRASES.sub("", sentence))
    sentence = _ATTRIBUTIVE.sub(_article, sentence)
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
        hedged = False
        while previous != sentence:
            previous = sentence
            sentence = _FRAMING.sub("", sentence)
            sentence = _PREAMBLE.sub("", sentence)
            unhedged = _HEDGE_START.sub("", sentence)
            hedged = hedged or unhedged != sentence
            sentence = unhedged
        if hedged and _HEDGED_GUESS.search(sentence.strip()):
            continue
        sentence = _tidy(_drop_speculation(sentence.strip()))
        if sentence and len(sentence.rstrip(".!?").strip()) > 0:
            sentences.append(sentence)
    text = " ".join(sentences)
    if max_words is not None and max_words > 0:
        text = _tidy(_cut(text, max_words))
    return text
