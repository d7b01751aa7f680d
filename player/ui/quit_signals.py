"""Ctrl-C and SIGTERM end the player cleanly.

Qt's event loop runs in C++; a Python signal handler only runs when the interpreter gets
control back, which may be never while the window waits for events. The handler therefore
writes to a socket (``signal.set_wakeup_fd``) that a ``QSocketNotifier`` watches, and the
event loop quits from there: the same way out as Control Q, so the film, speech, analysis and
the terminal are closed and restored as usual, and nothing is left half-written.
"""

from __future__ import annotations

import logging
import signal
import socket

from PySide6.QtCore import QCoreApplication, QObject, QSocketNotifier

from player.cli.interrupt import EXIT_CODES

log = logging.getLogger(__name__)


class QuitOnSignals(QObject):
    """While it lives, SIGINT and SIGTERM quit ``app``'s event loop; ``received`` tells which
    signal did (None when none)."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.received: signal.Signals | None = None
        self._app = app
        self._read, self._write = socket.socketpair()
        for sock in (self._read, self._write):
            sock.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, self._on_signal) for sig in EXIT_CODES}
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    @property
    def exit_code(self) -> int | None:
        return EXIT_CODES.get(self.received) if self.received is not None else None

    def _on_signal(self, number: int, _frame: object) -> None:
        """Python's handler: it runs whenever the interpreter next gets control; _drain, woken
        by the byte the C handler wrote, does the quitting."""

    def _drain(self) -> None:
        try:
            while data := self._read.recv(64):
                for number in data:  # the wakeup fd receives each signal's number as a byte
                    if number in EXIT_CODES.keys():
                        self.received = signal.Signals(number)
        except (BlockingIOError, InterruptedError):
            pass
        if self.received is not None:
            log.info("%s received: quitting", self.received.name)
            self._app.quit()

    def restore(self) -> None:
        """Put back the handlers that were there before (the default: Ctrl-C raises
        KeyboardInterrupt)."""
        self._notifier.setEnabled(False)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        self._read.close()
        self._write.close()
