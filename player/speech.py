"""Speech: one engine interface, a ranked fallback chain, and an audio player that knows when
speech really starts and ends.

Engines turn text into a WAV file first, so the length of a sentence is known before it is
spoken. The audio is played by a second, audio-only libmpv instance whose events give the start
and the end. Engines, from best to last resort:

1. ``pyttsx3`` over espeak-ng (the default voice),
2. the ``espeak-ng`` command-line program (when pyttsx3 is missing or fails),
3. no voice: the text still goes to the transcript and the screen reader.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SpeechError(RuntimeError):
    """Synthesis failed; the message is meant for the user."""


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
    def synthesize(self, text: str, voice: Voice, out: Path) -> SpeechClip:
        """Write ``text`` spoken with ``voice`` to ``out`` (WAV)."""


class Pyttsx3Engine(SpeechEngine):
    """pyttsx3 driving espeak-ng through its C library."""

    name = "pyttsx3 (espeak-ng)"

    def __init__(self) -> None:
        self._engine: Any = None
        self._error = ""

    def _get(self) -> Any:
        if self._engine is None and not self._error:
            try:
                import pyttsx3  # noqa: PLC0415

                self._engine = pyttsx3.init("espeak")
                _quiet_driver_prints()
            except ImportError:
                self._error = "pyttsx3 is not installed (pip install pyttsx3)."
            except Exception as exc:  # noqa: BLE001 - pyttsx3 raises many types when espeak is missing
                self._error = (f"pyttsx3 could not start espeak-ng ({exc}). Install it with: "
                               f"sudo apt install espeak-ng")
        return self._engine

    def problem(self) -> str:
        self._get()
        return self._error

    def synthesize(self, text: str, voice: Voice, out: Path) -> SpeechClip:
        engine = self._get()
        if engine is None:
            raise SpeechError(self._error)
        engine.setProperty("rate", int(voice.rate))
        engine.setProperty("volume", max(0.0, min(voice.volume / 100.0, 1.0)))
        try:
            engine.setProperty("voice", voice.name)
        except Exception:  # noqa: BLE001 - unknown voice: keep the current one
            log.info("voice %s not found; using the default", voice.name)
        for _attempt in range(2):
            # pyttsx3 2.99's espeak driver appends the last audio chunk of a sentence after
            # writing the file, so it leaks into the start of the next sentence; clear it.
            driver = getattr(getattr(engine, "proxy", None), "_driver", None)
            if driver is not None and hasattr(driver, "_data_buffer"):
                driver._data_buffer = b""
            out.unlink(missing_ok=True)
            engine.save_to_file(text, str(out))
            engine.runAndWait()
            if out.exists() and out.stat().st_size > 44 + 2205:  # more than 50 ms of audio
                return SpeechClip(text, out, wav_duration(out))
            log.info("pyttsx3 wrote no audio for %r; trying again", text)
        raise SpeechError("pyttsx3 wrote no audio.")


class EspeakCliEngine(SpeechEngine):
    """The espeak-ng program, run once per sentence."""

    name = "espeak-ng"

    def problem(self) -> str:
        if shutil.which("espeak-ng") is None:
            return "espeak-ng is not installed. Install it with: sudo apt install espeak-ng"
        return ""

    def synthesize(self, text: str, voice: Voice, out: Path) -> SpeechClip:
        amp = int(max(0.0, min(voice.volume, 100.0)) * 2)  # espeak amplitude 0-200
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(int(voice.rate)), "-a", str(amp),
               "-w", str(out), "--", text]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SpeechError(f"espeak-ng failed: {exc}") from exc
        return SpeechClip(text, out, wav_duration(out))


def _piper() -> SpeechEngine:
    from player.speech_piper import PiperEngine  # noqa: PLC0415 - optional, heavy

    return PiperEngine()


ENGINES: Mapping[str, Callable[[], SpeechEngine]] = {
    "pyttsx3": Pyttsx3Engine,
    "piper": _piper,
    "espeak-ng": EspeakCliEngine,
}

DEFAULT_ORDER = ("pyttsx3", "espeak-ng")


@dataclass(frozen=True)
class EngineChoice:
    """The usable engines, best first (the fallback chain), and why others were passed over."""

    chain: tuple[SpeechEngine, ...]
    notes: tuple[str, ...]

    @property
    def engine(self) -> SpeechEngine | None:
        return self.chain[0] if self.chain else None


def engine_order(preferred: str = "auto") -> tuple[str, ...]:
    """The order engines are tried in: the user's choice first, then the defaults."""
    if preferred in ENGINES:
        return (preferred, *(k for k in DEFAULT_ORDER if k != preferred))
    return DEFAULT_ORDER


def choose_engine(order: tuple[str, ...] = DEFAULT_ORDER,
                  factories: Mapping[str, Callable[[], SpeechEngine]] = ENGINES) -> EngineChoice:
    """Every usable engine in ``order``; notes say which were passed over and why."""
    chain: list[SpeechEngine] = []
    notes: list[str] = []
    for key in order:
        try:
            engine = factories[key]()
            problem = engine.problem()
        except Exception as exc:  # noqa: BLE001 - a broken optional engine must not stop speech
            problem, engine = f"could not start ({exc})", None
        if engine is not None and not problem:
            chain.append(engine)
        else:
            notes.append(f"{key}: {problem}")
    if notes and chain:
        notes.append(f"Speaking with {chain[0].name}.")
    return EngineChoice(tuple(chain), tuple(notes))


def _quiet_driver_prints() -> None:
    """pyttsx3's espeak driver prints "Audio saved to ..." to stdout, which would garble the
    terminal mode; route that module's prints to the log instead (that module only)."""
    try:
        from pyttsx3.drivers import espeak as driver  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - optional
        return
    driver.print = lambda *args, **_kw: log.debug("pyttsx3: %s", " ".join(map(str, args)))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SynthRequest:
    key: int
    text: str
    voice: Voice


class Synthesizer:
    """One worker thread that owns the engine and synthesizes requests in order.

    ``on_done(key, clip_or_None, error_message)`` is called on the worker thread; the Qt side
    forwards it with a signal.
    """

    def __init__(self, chain: tuple[SpeechEngine, ...],
                 on_done: Callable[[int, SpeechClip | None, str], None]) -> None:
        self._chain = list(chain)
        self._on_done = on_done
        self._queue: queue.Queue[SynthRequest | None] = queue.Queue()
        self._dir = Path(tempfile.mkdtemp(prefix="narrate-speech-"))
        self._count = 0
        self._thread = threading.Thread(target=self._run, name="speech-synth", daemon=True)
        self._thread.start()

    @property
    def engine_name(self) -> str:
        return self._chain[0].name if self._chain else "none"

    def submit(self, req: SynthRequest) -> None:
        self._queue.put(req)

    def _run(self) -> None:
        while True:
            req = self._queue.get()
            if req is None:
                return
            self._count += 1
            out = self._dir / f"s{self._count}.wav"  # unique: cached clips keep their files
            clip, error = None, ""
            while self._chain:
                try:
                    clip = self._chain[0].synthesize(req.text, req.voice, out)
                    break
                except Exception as exc:  # noqa: BLE001 - any engine failure moves down the chain
                    failed = self._chain.pop(0)
                    error = f"{failed.name} failed ({exc}); " + (
                        f"now using {self._chain[0].name}." if self._chain else "speech is off.")
                    log.warning(error)
            self._on_done(req.key, clip, error)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)
