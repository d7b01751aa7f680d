"""The one keyboard command table.

Every action a user can take has one row here: a name, a title, default keys and a sentence of
spoken help. The table feeds the Qt shortcuts, the terminal key reader, the help screen and the
key settings, so they can never disagree.

Keys are written the way ``QKeySequence`` reads them in portable text ("Ctrl+O", "Shift+Left").
Insert and CapsLock combinations are avoided: screen readers (NVDA, Orca) use them as modifiers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One user command."""

    name: str
    title: str
    keys: tuple[str, ...]
    help: str
    group: str


COMMANDS: tuple[Command, ...] = (
    Command("play_pause", "Play or pause", ("Space", "K"), "Starts or pauses the video.", "Playback"),
    Command("seek_back_5", "Back 5 seconds", ("Left",), "Jumps back 5 seconds.", "Playback"),
    Command("seek_forward_5", "Forward 5 seconds", ("Right",), "Jumps forward 5 seconds.", "Playback"),
    Command("seek_back_30", "Back 30 seconds", ("Shift+Left", "J"), "Jumps back 30 seconds.", "Playback"),
    Command("seek_forward_30", "Forward 30 seconds", ("Shift+Right", "L"), "Jumps forward 30 seconds.", "Playback"),
    Command("volume_up", "Volume up", ("Up",), "Raises the film volume by 5 percent.", "Playback"),
    Command("volume_down", "Volume down", ("Down",), "Lowers the film volume by 5 percent.", "Playback"),
    Command("mute", "Mute or unmute", ("Ctrl+M",), "Mutes or unmutes the film sound; narration still speaks.", "Playback"),
    Command("speed_up", "Faster", ("]",), "Plays faster, in steps of a tenth.", "Playback"),
    Command("speed_down", "Slower", ("[",), "Plays slower, in steps of a tenth.", "Playback"),
    Command("speed_reset", "Normal speed", ("Backspace",), "Returns to normal playback speed.", "Playback"),
    Command("say_time", "Say the time", ("T",), "Says the current position and the length of the video.", "Playback"),
    Command("describe_now", "Describe now", ("D",), "Describes what is on screen at this moment.", "Narration"),
    Command("repeat_last", "Repeat last description", ("R",), "Says the last description again.", "Narration"),
    Command("ask", "Ask about this frame", ("A",), "Moves to the question field to ask about what is on screen.", "Narration"),
    Command("verbosity_up", "More detail", ("V",), "Narration says more: brief, standard, detailed.", "Narration"),
    Command("verbosity_down", "Less detail", ("Shift+V",), "Narration says less.", "Narration"),
    Command("toggle_narration", "Narration on or off", ("N",), "Turns narration on or off at once.", "Narration"),
    Command("toggle_mode", "Narration mode", ("M",), "Goes to the next narration mode: automatic (lower the film, and pause it briefly for what matters), lower the film, or pause the film.", "Narration"),
    Command("analysis_speed", "Analysis speed", ("S",), "Says how fast the narrator analyses the film: frames a second, times real time, and on which device.", "Narration"),
    Command("focus_transcript", "Go to transcript", ("Ctrl+T",), "Moves to the text of the descriptions spoken so far.", "Narration"),
    Command("open_file", "Open file", ("Ctrl+O",), "Opens a video file.", "File"),
    Command("settings", "Settings", ("Ctrl+,",), "Opens settings: speech, keys and narration.", "File"),
    Command("help", "Keyboard help", ("F1", "?"), "Lists every command and its keys.", "File"),
    Command("quit", "Quit", ("Ctrl+Q",), "Closes the player.", "File"),
)

BY_NAME: Mapping[str, Command] = {c.name: c for c in COMMANDS}

#: Keys the table refuses in remapping: screen readers take these as their own modifiers.
RESERVED_PREFIXES: tuple[str, ...] = ("Ins", "CapsLock", "Insert")


class KeymapError(ValueError):
    """A remapping that cannot be used; the message is meant for the user."""


def effective_keys(overrides: Mapping[str, Iterable[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """Return the keys for each command: the defaults with the user's overrides applied.

    Unknown command names in ``overrides`` are ignored (an old settings file may name them).
    """
    keys = {c.name: c.keys for c in COMMANDS}
    for name, seq in (overrides or {}).items():
        if name in keys:
            keys[name] = tuple(seq)
    return keys


def validate_keymap(keymap: Mapping[str, Iterable[str]]) -> None:
    """Raise :class:`KeymapError` if a key is reserved or bound to two commands."""
    seen: dict[str, str] = {}
    for name, seq in keymap.items():
        for key in seq:
            norm = key.strip().lower()
            if not norm:
                continue
            if any(part.strip().lower().startswith(p.lower()) for p in RESERVED_PREFIXES
                   for part in key.split("+")):
                raise KeymapError(
                    f"{key} is used by screen readers as a modifier; choose another key for "
                    f"{BY_NAME[name].title if name in BY_NAME else name}.")
            if norm in seen and seen[norm] != name:
                raise KeymapError(
                    f"{key} is given to both {BY_NAME[seen[norm]].title} and "
                    f"{BY_NAME[name].title if name in BY_NAME else name}.")
            seen[norm] = name


def help_text(keymap: Mapping[str, Iterable[str]] | None = None) -> str:
    """Plain-text help, grouped, one command a line: read well by a screen reader or braille."""
    keys = effective_keys(keymap)
    lines: list[str] = []
    group = ""
    for c in COMMANDS:
        if c.group != group:
            group = c.group
            if lines:
                lines.append("")
            lines.append(f"{group} commands")
        shown = " or ".join(keys[c.name]) or "no key"
        lines.append(f"{c.title}: {shown}. {c.help}")
    return "\n".join(lines)
