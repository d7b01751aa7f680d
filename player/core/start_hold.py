"""Holding a film at its start until the narrator has looked at the opening.

On a first viewing, live analysis needs a few seconds to load its detectors and look at the
first frames. A film that starts at once has shown its title card before anything can be said
about it, and the analysis, jumping ahead to keep up with the film, never looks back. So when
the narrator is to describe the film itself (narration on, live analysis on, no description
track), the film waits, paused, until the analysis has covered its first seconds: at most
``HOLD_MAX`` seconds, and never longer than the user wants (Space, or any seek, starts it).
A cached analysis covers the whole film at once, so a second viewing starts without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

HOLD_AHEAD = 3.0
"""Seconds of film, from where it starts, that the analysis covers before the film plays."""
HOLD_MAX = 15.0
"""Seconds the film waits at most (a slow machine, a stalled analysis)."""

READY, WAITED, OFF, USER = "ready", "waited", "off", "user"
"""Why the hold ended: the opening was analysed; HOLD_MAX passed; live analysis cannot look at
this film; the user started the film."""


class StartHold(QObject):
    """Pauses the film while the analysis looks at its first ``HOLD_AHEAD`` seconds.

    ``playback`` needs a writable ``pause``; ``perception`` an ``analysed(float)`` signal and a
    ``cannot_look`` property. ``released`` says why the film goes on (one of the reasons above).
    """

    released = Signal(str)

    def __init__(self, playback: Any, perception: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._playback = playback
        self._perception = perception
        self._target: float | None = None
        self._deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._check)
        perception.analysed.connect(self._on_analysed)
        self.opening: Callable[[Callable[[], None]], bool] | None = None
        """Called when the opening has been looked at, with the function that starts the
        film; returns True when it says the opening first (the film then starts when it calls
        that function, or when the user starts it), False to start the film at once."""
        self._saying = False

    @property
    def active(self) -> bool:
        return self._target is not None

    def begin(self, at: float, duration: float) -> None:
        """Pause the film at ``at`` until the analysis has looked ``HOLD_AHEAD`` seconds past it
        (or up to half a second before the end of a shorter film)."""
        self._target = min(at + HOLD_AHEAD, max(at, duration - 0.5))
        self._deadline = time.monotonic() + HOLD_MAX
        self._playback.pause = True
        self._timer.start()

    def end(self, why: str = USER) -> None:
        """Stop holding and play the film (``released`` says why). Nothing happens when no hold
        is on."""
        if self._target is None:
            return
        self.cancel()
        self._playback.pause = False
        self.released.emit(why)

    def cancel(self) -> None:
        """Stop holding and leave the film as it is (another film opens, the player closes)."""
        self._target = None
        self._saying = False
        self._timer.stop()

    @Slot(float)
    def _on_analysed(self, t: float) -> None:
        if self._target is None or self._saying or t < self._target - 1e-3:
            return
        target = self._target
        if self.opening is not None and self.opening(lambda: self._said(target)):
            self._saying = True  # the film waits while its opening is said (never for ever:
            self._deadline = time.monotonic() + HOLD_MAX  # speech that fails ends it too)
        else:
            self.end(READY)

    def _said(self, target: float) -> None:
        if self._saying and self._target == target:  # still this film's hold
            self.end(READY)

    def _check(self) -> None:
        if self._perception.cannot_look:
            self.end(OFF)
        elif time.monotonic() >= self._deadline:
            self.end(WAITED)
