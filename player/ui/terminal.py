"""Terminal mode: the same commands and narration, driven from a terminal.

Keys are read raw from standard input (when it is a terminal) and looked up in the same command
table as the window's shortcuts. Every description and message is printed on its own line, so a
screen reader in the terminal (or a braille display) reads it as it is spoken.
"""

from __future__ import annotations

import logging
import os
import sys
import termios
import tty
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, QSocketNotifier, Slot

from models import Description
from player.core.commands import effective_keys, help_text
from player.core.controller import Controller
from player.core.settings import settings_path
from player.core.timefmt import clock

log = logging.getLogger(__name__)

# Escape sequences that terminals send, as QKeySequence portable names.
SEQUENCES: dict[str, str] = {
    "\x1b[A": "Up", "\x1b[B": "Down", "\x1b[C": "Right", "\x1b[D": "Left",
    "\x1b[1;2C": "Shift+Right", "\x1b[1;2D": "Shift+Left", "\x1bOP": "F1", "\x1b[11~": "F1",
    "\x7f": "Backspace", "\x08": "Backspace", " ": "Space", "\x1b": "Escape",
}


def key_name(chunk: str) -> str:
    """Name a key as the command table writes it: "Space", "Ctrl+O", "Shift+V", "]"."""
    if chunk in SEQUENCES:
        return SEQUENCES[chunk]
    if len(chunk) == 1:
        code = ord(chunk)
        if 1 <= code <= 26 and chunk not in "\t\r\n":
            return f"Ctrl+{chr(code + 64)}"
        if chunk.isalpha():
            return f"Shift+{chunk}" if chunk.isupper() else chunk.upper()
        return chunk
    return chunk


def split_keys(data: str) -> list[str]:
    """Split a burst of terminal input into single keys (escape sequences kept whole)."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i] == "\x1b":
            match = next((s for s in sorted(SEQUENCES, key=len, reverse=True)
                          if s.startswith("\x1b") and data.startswith(s, i)), "\x1b")
            keys.append(match)
            i += len(match)
        else:
            keys.append(data[i])
            i += 1
    return keys


class TerminalUI(QObject):
    """Reads keys, runs commands, prints what is said and what changes."""

    def __init__(self, controller: Controller, app: QCoreApplication,
                 write: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.c = controller
        self.app = app
        self._write = write or (lambda text: print(text, flush=True))
        self._notifier: QSocketNotifier | None = None
        self._saved_tty: list | None = None
        self._keys: dict[str, str] = {}
        self._reload_keys()
        controller.message.connect(self.print_message)
        controller.narrator.said.connect(self._on_said)
        controller.settings_changed.connect(lambda _s: self._reload_keys())
        controller.playback.ended.connect(self._on_end)

    def _reload_keys(self) -> None:
        self._keys = {}
        for name, keys in effective_keys(self.c.settings.keymap).items():
            for k in keys:
                self._keys[k.lower()] = name
        self._keys.setdefault("q", "quit")

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty()

    def start(self) -> None:
        if not self.interactive:
            self._write("Standard input is not a terminal: playing without key commands.")
            return
        fd = sys.stdin.fileno()
        self._saved_tty = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._notifier = QSocketNotifier(fd, QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_input)
        self._write("Terminal mode. Press F1 or question mark for the keys, q to quit.")

    def stop(self) -> None:
        if self._saved_tty is not None:
            try:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved_tty)
            except termios.error as exc:  # the terminal went away: nothing to give back
                log.info("the terminal's settings could not be restored: %s", exc)
            self._saved_tty = None

    @Slot()
    def _on_input(self) -> None:
        data = os.read(sys.stdin.fileno(), 64).decode("utf-8", "replace")
        if not data:
            return
        for chunk in split_keys(data):
            self.handle_key(key_name(chunk))

    def handle_key(self, key: str) -> None:
        name = self._keys.get(key.lower())
        if name is None:
            return
        if self.c.run(name):
            return
        if name == "quit":
            self.app.quit()
        elif name == "help":
            self._write(help_text(self.c.settings.keymap))
        elif name == "open_file":
            path = self._prompt("File to open: ")
            if path:
                self.c.open(path)
        elif name == "ask":
            question = self._prompt("Question about this frame: ")
            if question:
                self.c.ask(question)  # the answer is printed when it is spoken
        elif name == "settings":
            self._write(f"Settings are kept in {settings_path()}; edit that file while the "
                        f"player is closed, or use the window.")
        elif name == "focus_transcript":
            self._write("Every description is printed here as it is spoken.")

    def _prompt(self, label: str) -> str:
        """Read a line with normal terminal editing, then return to single-key mode."""
        if self._saved_tty is None:
            return ""
        fd = sys.stdin.fileno()
        termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_tty)
        try:
            return input(label).strip()
        except EOFError:
            return ""
        finally:
            tty.setcbreak(fd)

    @Slot(str, str)
    def print_message(self, text: str, kind: str) -> None:
        if kind in ("narration", "quiet"):
            return  # the description line is printed by _on_said
        self._write(f"Problem: {text}" if kind == "error" else text)

    @Slot(object)
    def _on_said(self, desc: Description) -> None:
        if desc.source == "system":
            return  # the player's own message, already printed by print_message
        label = {"now": "Now", "repeat": "Again", "answer": "Answer", "system": "Player"}.get(
            desc.source, clock(desc.start))
        self._write(f"[{label}] {desc.text}")

    @Slot()
    def _on_end(self) -> None:
        if not self.interactive:
            self.app.quit()
        else:
            self._write("Press q to quit.")  # "End of video." is the controller's message
