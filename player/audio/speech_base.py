"""The speech engine interface and what crosses it: a voice, a synthesized clip, the errors.

A leaf module: every engine (pyttsx3 and espeak-ng in speech.py, piper in speech_piper.py)
builds on it, and the fallback chain in speech.py chooses among them.
"""

from __future__ import annotations

import threading
import wave
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


class SpeechError(RuntimeError):
    """Synthesis failed; the message is meant for the user."""


class SpeechCancelled(SpeechError):
    """Synthesis stopped early because ``stop`` was set (something more urgent came)."""


@dataclass(frozen=True)
class Voice:
    """How to speak: voice name, words per minute, volume 0-100."""

    name: str = "en-us"
    rate: int = 175
    volume: float = 100.0


@dataclass(frozen=True)
class SpeechClip:
    """A synthesized sentence: the WAV file and its length in seconds."""

    text: str
    path: Path
    duration: float


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class SpeechEngine(ABC):
    """Text to a WAV file. Implementations must be callable from one worker thread."""

    name: str = "engine"

    @abstractmethod
    def problem(self) -> str:
        """"" when usable; otherwise why not, with the fix."""

    @abstractmethod
    def synthesize(self, text: str, voice: Voice, out: Path,
                   stop: threading.Event | None = None) -> SpeechClip:
        """Write ``text`` spoken with ``voice`` to ``out`` (WAV). An engine that can take
        seconds checks ``stop`` (set from another thread) between sentences and raises
        SpeechCancelled once it is set; a fast one may ignore it."""
