"""Ctrl-C and SIGTERM for the long command-line jobs (export, prepare): both stop the job the
way Ctrl-C does in Python, by raising KeyboardInterrupt in the main thread, so every
``finally`` runs and nothing is left half-written. Without this, SIGTERM ends Python at once,
leaving temporary files and a running ffmpeg behind."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""The exit status of a program ended by the signal, as shells report it (128 + number)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would raise KeyboardInterrupt."""


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` (Ctrl-C raises KeyboardInterrupt as
    usual); the handler that was there before is put back on the way out."""

    def on_term(_number: int, _frame: object) -> None:
        raise Terminated

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def interrupted_code(stop: KeyboardInterrupt) -> int:
    """The exit status after ``stop``: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_CODES[signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT]
