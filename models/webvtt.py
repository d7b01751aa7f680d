"""Description tracks in WebVTT: read them forgivingly, write them atomically.

A cue may carry an identifier line such as ``d1 level=1 priority=2``; plain cues from other
tools (Able Player, YouDescribe exports, human describers) load with level 2, priority 1.

Cues may overlap: WebVTT allows layered cues, and ``narrate prepare`` writes several at one
moment for different verbosity levels (the narrator says them one after another, the most
important first). Only what is really wrong is a problem: a time that cannot be read, an end
before the start, a bad level or priority, a cue without text or too long to say, text that is
not a cue setting after the times, a block that is not a cue, a repeated cue id.
"""

from __future__ import annotations

import errno
import html
import io
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.types import Description, Timeline
from models.wording import counted

log = logging.getLogger(__name__)

MAX_BYTES = 20_000_000
"""Larger files are refused: no real description track comes near this."""

MAX_PROBLEMS = 1000
"""Problems kept per file; the rest are counted in one final problem."""

MAX_CUE_CHARS = 500
"""Longer cue text is cut (at a sentence or word end) and the cut is reported. A description
must fit a pause in the dialogue at about 3 words a second; 500 characters are some 85 words,
half a minute of speech: more than any pause holds, and already a long stop of the film in
extended mode. Real cues are one or two sentences (under 200 characters); a longer one is a
mistake (a pasted script, missing blank lines) and would hold every other sentence back."""

_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})\.(\d{1,3})")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?…][\"')\]”’]*(?=\s|$)")
_SKIPPED_BLOCKS = frozenset({"NOTE", "STYLE", "REGION"})
_ALLOWED = {"level": (1, 2, 3), "priority": (0, 1, 2)}
_CUE_SETTINGS = frozenset({"vertical", "line", "position", "size", "align", "region"})
"""The cue settings WebVTT defines (``align:start`` after the times); other text there is
reported and ignored."""

Line = tuple[int, str]
"""A line of the file with its 1-based number."""


class VttReadError(OSError):
    """A description track file could not be read at all (missing, unreadable, not text)."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] = "") -> None:
        super().__init__(message)
        self.path = os.fspath(path)


class TrackWriteError(OSError):
    """A description track could not be saved; any earlier file is left as it was."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] = "") -> None:
        super().__init__(message)
        self.path = os.fspath(path)


@dataclass(frozen=True)
class VttProblem:
    """Something wrong at one line of a track; the cue involved was skipped or kept as said."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class VttResult:
    """The cues that loaded and the problems found on the way."""

    timeline: Timeline
    problems: tuple[VttProblem, ...] = ()


SHOWN_PROBLEMS = 5
"""A track's problems named one by one; the rest are counted."""


def problem_lines(name: str, problems: Sequence[VttProblem]) -> list[str]:
    """What to tell the user of a track's problems: the first few, each with its line, then
    how many more there are."""
    lines = [f"{name}, {p}" for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"{name}: {counted(len(problems) - SHOWN_PROBLEMS, 'more problem')}.")
    return lines


# ----- timestamps ---------------------------------------------------------------------------

def parse_timestamp(text: str) -> float:
    """Seconds from ``HH:MM:SS.mmm`` or ``MM:SS.mmm``; ValueError if it is not one."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a timestamp like 00:01:02.500")
    hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise ValueError(f"{text!r} has minutes or seconds above 59")
    millis = int(fraction.ljust(3, "0"))
    total = ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + millis
    return total / 1000


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` for a time in seconds, rounded to the millisecond."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot write {seconds} as a timestamp")
    total = round(seconds * 1000)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


# ----- reading ------------------------------------------------------------------------------

class _Problems:
    """Collects problems, keeping the first MAX_PROBLEMS and counting the rest."""

    def __init__(self) -> None:
        self.kept: list[VttProblem] = []
        self.extra = 0
        self.first_extra_line = 0

    def add(self, line: int, message: str) -> None:
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(VttProblem(line, message))
            return
        if not self.extra:
            self.first_extra_line = line
        self.extra += 1

    def result(self) -> tuple[VttProblem, ...]:
        if not self.extra:
            return tuple(self.kept)
        plural = "s" if self.extra != 1 else ""
        more = VttProblem(self.first_extra_line, f"and {self.extra} more problem{plural}")
        return (*self.kept, more)


def _blocks(lines: Iterable[str]) -> Iterator[list[Line]]:
    """Blocks of non-blank lines, streamed; blank or whitespace-only lines separate them."""
    block: list[Line] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.lstrip("\ufeff")
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _is_header(line: str) -> bool:
    return line == "WEBVTT" or line.startswith(("WEBVTT ", "WEBVTT\t"))


def clean_text(lines: Iterable[str]) -> str:
    """Cue text lines as one line of plain text: tags removed, entities decoded."""
    text = _TAG.sub("", " ".join(line.strip() for line in lines))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def shorten(text: str, limit: int = MAX_CUE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters: after its last whole sentence when that
    keeps at least half of them, else after its last whole word, else (one endless word) at
    ``limit``. Text within the limit is returned as it is."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]  # a sentence end or a space just at the limit counts
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() <= limit]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]]
    space = max(head.rfind(blank) for blank in " \t\n")
    kept = head[:space].rstrip(" \t\n,;:-") if space > 0 else ""
    return kept or text[:limit]


class _Reader:
    """Turns blocks into descriptions, noting problems and repeated identifiers."""

    def __init__(self) -> None:
        self.cues: list[Description] = []
        self.problems = _Problems()
        self.idents: dict[str, int] = {}

    def block(self, block: list[Line]) -> None:
        words = block[0][1].split(maxsplit=1)
        if words and words[0] in _SKIPPED_BLOCKS:
            return
        rest: list[Line] | None = block
        while rest:
            rest = self._cue(rest)

    def _cue(self, block: list[Line]) -> list[Line] | None:
        """Read one cue from ``block``; return lines left over when a blank line was missing."""
        first_no, first = block[0]
        if "-->" in first:
            id_line, at = None, 0
        elif len(block) > 1 and "-->" in block[1][1]:
            id_line, at = block[0], 1
        else:
            self.problems.add(first_no, "expected a timing line such as "
                              "00:00:01.000 --> 00:00:04.000 here; this block was skipped")
            return None
        timing_no, timing = block[at]
        text_lines: list[str] = []
        rest: list[Line] | None = None
        for i in range(at + 1, len(block)):
            if "-->" in block[i][1]:
                self.problems.add(block[i][0], "a blank line is missing before this timing line")
                rest = block[i:]
                break
            text_lines.append(block[i][1])
        ident, options = self._options(id_line)
        if options is not None:
            self._add(ident, options, timing_no, timing, text_lines)
        return rest

    def _options(self, id_line: Line | None) -> tuple[str, dict[str, int] | None]:
        """The identifier and level/priority of a cue; None options when a value is bad."""
        options = {"level": 2, "priority": 1}
        if id_line is None:
            return "", options
        number, line = id_line
        ident = ""
        for token in line.split():
            key, sep, value = token.partition("=")
            if not sep:
                ident = ident or token
                continue
            allowed = _ALLOWED.get(key.lower())
            if allowed is None:
                continue
            if not value.strip().isdigit() or int(value) not in allowed:
                name = f"cue {ident}" if ident else "this cue"
                choices = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
                self.problems.add(number, f"{key.lower()} must be {choices}, not {value!r}; "
                                  f"{name} was skipped")
                return ident, None
            options[key.lower()] = int(value)
        if ident:
            if ident in self.idents:
                self.problems.add(number, f"cue id {ident} is used twice (also on line "
                                  f"{self.idents[ident]}); both cues were kept")
            else:
                self.idents[ident] = number
        return ident, options

    def _add(self, ident: str, options: dict[str, int], number: int, timing: str,
             text_lines: list[str]) -> None:
        name = f"cue {ident}" if ident else "this cue"
        left, _, right = timing.partition("-->")
        ends = right.split()
        times: list[float] = []
        for which, stamp in (("start", left.strip()), ("end", ends[0] if ends else "")):
            try:
                times.append(parse_timestamp(stamp))
            except ValueError:
                shown = f"{stamp!r} is not a timestamp" if stamp else "is missing"
                self.problems.add(number, f"the {which} time {shown} (expected a time like "
                                  f"00:01:02.500); {name} was skipped")
                return
        start, end = times
        if not ident:
            name = f"the cue at {format_timestamp(start)}"
        if end < start:
            self.problems.add(number, f"{name} ends ({format_timestamp(end)}) before it starts "
                              f"({format_timestamp(start)}); it was skipped")
            return
        text = clean_text(text_lines)
        if not text:
            self.problems.add(number, f"{name} has no text; it was skipped")
            return
        if len(text) > MAX_CUE_CHARS:
            full, text = len(text), shorten(text)
            self.problems.add(number, f"{name} is {full:,} characters long, too long to say in "
                              f"a pause; only its first {len(text):,} are kept")
        try:
            cue = Description(start=start, text=text, level=options["level"],
                              priority=options["priority"], source="track", end=end, ident=ident)
        except ValueError as exc:
            self.problems.add(number, f"{exc} {name} was skipped.")
            return
        unknown = [word for word in ends[1:] if not _is_setting(word)]
        if unknown:
            shown = " ".join(unknown)
            self.problems.add(number, f"{name} has {shown!r} after its times, which is not a "
                              f"cue setting such as align:start; it was ignored and the cue kept")
        self.cues.append(cue)


def _is_setting(word: str) -> bool:
    """Whether ``word`` is a WebVTT cue setting: a known name, a colon and a value."""
    name, sep, value = word.partition(":")
    return bool(sep) and name in _CUE_SETTINGS and bool(value)


def _parse_lines(lines: Iterable[str], name: str = "") -> VttResult:
    blocks = _blocks(lines)
    header = next(blocks, None)
    if header is None or not _is_header(header[0][1]):
        problem = VttProblem(1, "this is not a WebVTT file (it does not start with WEBVTT)")
        return VttResult(Timeline(), (problem,))
    reader = _Reader()
    timing = next((i for i, (_, line) in enumerate(header) if "-->" in line), None)
    if timing is not None:
        reader.problems.add(header[timing][0], "a blank line is needed after the WEBVTT header")
        reader.block(header[timing:])
    for block in blocks:
        reader.block(block)
    result = VttResult(Timeline(reader.cues), reader.problems.result())
    log.debug("%s: %d cues, %d problems", name or "WebVTT text", len(reader.cues),
              len(result.problems))
    return result


def parse_vtt(text: str, name: str = "") -> VttResult:
    """Parse WebVTT text; never raises for bad content (see ``VttResult.problems``)."""
    return _parse_lines(io.StringIO(text, newline=None), name)


def read_vtt(path: str | os.PathLike[str]) -> VttResult:
    """Read a WebVTT description track, streaming it; VttReadError if the file cannot be read."""
    track = Path(path)
    name = track.name or str(track)
    try:
        info = track.stat()
    except OSError as exc:
        raise _read_error(track, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise VttReadError(f"{name} is a folder, not a description track file", path=track)
    if not stat.S_ISREG(info.st_mode):
        raise VttReadError(f"{name} is not an ordinary file", path=track)
    if info.st_size > MAX_BYTES:
        raise VttReadError(f"{name} is too large ({info.st_size:,} bytes); a description track "
                           f"may be at most {MAX_BYTES:,} bytes", path=track)
    try:
        with open(track, encoding="utf-8-sig", newline=None) as handle:
            return _parse_lines(handle, name)
    except UnicodeDecodeError:
        raise VttReadError(f"{name} is not UTF-8 text, so it cannot be read as a WebVTT "
                           f"description track", path=track) from None
    except OSError as exc:
        raise _read_error(track, exc) from exc


def _read_error(track: Path, exc: OSError) -> VttReadError:
    name = track.name or str(track)
    if isinstance(exc, FileNotFoundError):
        message = f"{name} does not exist (looked for {track})"
    elif isinstance(exc, PermissionError):
        message = f"{name} cannot be opened: permission denied"
    elif isinstance(exc, IsADirectoryError):
        message = f"{name} is a folder, not a description track file"
    else:
        message = f"{name} could not be read: {exc.strerror or exc}"
    return VttReadError(message, path=track)


# ----- writing ------------------------------------------------------------------------------

def _ident_for(cue: Description, number: int) -> str:
    ident = _SPACE.sub("-", cue.ident.strip()).replace("=", "-").replace("-->", "-")
    return ident or f"d{number}"


def _escape(text: str) -> str:
    one_line = _SPACE.sub(" ", text).strip()
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(descriptions: Iterable[Description], language: str) -> Iterator[str]:
    yield f"WEBVTT\nKind: descriptions\nLanguage: {language}\n"
    for number, cue in enumerate(descriptions, start=1):
        end = cue.end if cue.end is not None else cue.start + max(1.5, cue.words / 2.5)
        yield (f"\n{_ident_for(cue, number)} level={cue.level} priority={cue.priority}\n"
               f"{format_timestamp(cue.start)} --> {format_timestamp(end)}\n"
               f"{_escape(cue.text)}\n")


def write_vtt(path: str | os.PathLike[str], descriptions: Iterable[Description],
              language: str = "en") -> None:
    """Save descriptions as a WebVTT track, atomically; TrackWriteError if it cannot be saved."""
    track = Path(path)
    folder = track.parent
    temp: str | None = None
    try:
        mode = stat.S_IMODE(track.stat().st_mode) if track.exists() else 0o644
        fd, temp = tempfile.mkstemp(prefix=f".{track.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for chunk in _render(descriptions, language):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, track)
        temp = None
    except OSError as exc:
        raise TrackWriteError(_write_message(track, exc), path=track) from exc
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                log.warning("could not remove the temporary file %s", temp)


def _write_message(track: Path, exc: OSError) -> str:
    name = track.name
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{name} could not be saved: the disk is full"
    if exc.errno == errno.EROFS:
        return f"{name} could not be saved: the disk is read-only"
    if isinstance(exc, PermissionError):
        return f"{name} could not be saved: permission denied in {track.parent}"
    if isinstance(exc, FileNotFoundError):
        return f"{name} could not be saved: the folder {track.parent} does not exist"
    return f"{name} could not be saved: {exc.strerror or exc}"


def find_description_track(video: str | Path) -> Path | None:
    """A WebVTT description track beside the video: ``NAME.descriptions.vtt`` or ``NAME.vtt``."""
    p = Path(video)
    for candidate in (p.with_suffix(".descriptions.vtt"), p.with_suffix(".vtt")):
        if candidate.is_file():
            return candidate
    return None
