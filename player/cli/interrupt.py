"""Ctrl-C and SIGTERM for the long command-line jobs (export, prepare): both stop the job the
way Ctrl-C does in Python, by raising KeyboardInterrupt in the main thread, so every
``finally`` runs and nothing is left half-written. Without this, SIGTERM ends Python at once,
leaving temporary files and a running ffmpeg behind.

The handlers also remember the signal: where the exception can be swallowed (a Python callback
called from a native library), the job's loop calls :func:`check_stop`, which raises it again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""The exit status of a program ended by the signal, as shells report it (128 + number)."""

_received: list[signal.Signals] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would raise KeyboardInterrupt."""


def _stop(number: int) -> KeyboardInterrupt:
    return Terminated() if number == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """While inside, SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated`; the
    handlers that were there before are put back on the way out."""

    def on_signal(number: int, _frame: object) -> None:
        _received.append(signal.Signals(number))
        raise _stop(number)

    _received.clear()
    old = {sig: signal.signal(sig, on_signal) for sig in EXIT_CODES}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _received.clear()  # a stop belongs to the job it stopped


def check_stop() -> None:
    """Raise the stop again if a signal came and its exception was swallowed on the way."""
    if _received:
        raise _stop(_received[-1])


def interrupted_code(stop: KeyboardInterrupt) -> int:
    """The exit status after ``stop``: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_CODES[signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT]
