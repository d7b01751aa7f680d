"""Speech: one engine interface, a ranked fallback chain, and an audio player that knows when
speech really starts and ends.

Engines turn text into a WAV file first, so the length of a sentence is known before it is
spoken. The audio is played by a second, audio-only libmpv instance whose events give the start
and the end. Engines, from best to last resort:

1. ``pyttsx3`` over espeak-ng (the default voice),
2. the ``espeak-ng`` command-line program (when pyttsx3 is missing or fails),
3. no voice: the text still goes to the transcript and the screen reader.

One thread synthesizes (Synthesizer): a text someone waits to hear goes before the texts
prepared ahead, no text is longer than MAX_SPEECH_CHARS, and the WAV files live in a folder
named after the process, so folders left by a killed player are removed at the next start.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.webvtt import shorten
from player.audio.speech_base import (
    SpeechCancelled,
    SpeechClip,
    SpeechEngine,
    SpeechError,
    Voice,
    wav_duration,
)

log = logging.getLogger(__name__)

MAX_SPEECH_CHARS = 1000
"""Longer texts are cut before synthesis: a safety net for texts that come from no track (model
answers, messages). About a minute of speech; espeak-ng makes it in a tenth of a second, piper in
a few seconds, stopping between sentences when something more urgent comes."""

FOLDER_PREFIX = "narrate-speech-"
"""Each Synthesizer's WAV files live in ``<temp>/narrate-speech-<pid>-<random>``."""

CLOSE_WAIT_S = 0.5
"""close() waits this long for the synthesis thread; it stops at its next check point."""


_ESPEAK_LOCK = threading.RLock()
"""One sentence at a time through espeak-ng's C library: it is one per process (pyttsx3.init
hands every caller the same engine), and two threads in it at once can crash the process (a
synthesizer closing while another starts did, once in a full test run)."""


class Pyttsx3Engine(SpeechEngine):
    """pyttsx3 driving espeak-ng through its C library (one sentence at a time per process)."""

    name = "pyttsx3 (espeak-ng)"

    def __init__(self) -> None:
        self._engine: Any = None
        self._error = ""

    def _get(self) -> Any:
        with _ESPEAK_LOCK:
            return self._load()

    def _load(self) -> Any:
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

    def synthesize(self, text: str, voice: Voice, out: Path,
                   stop: threading.Event | None = None) -> SpeechClip:
        # ``stop`` is not checked: a text of MAX_SPEECH_CHARS takes under a tenth of a second.
        with _ESPEAK_LOCK:
            return self._synthesize(text, voice, out)

    def _synthesize(self, text: str, voice: Voice, out: Path) -> SpeechClip:
        engine = self._get()
        if engine is None:
            raise SpeechError(self._error)
        engine.setProperty("rate", int(voice.rate))
        engine.setProperty("volume", max(0.0, min(voice.volume / 100.0, 1.0)))
        try:
            engine.setProperty("voice", voice.name)
        except Exception:  # noqa: BLE001 - unknown voice: keep the current one
            log.info("voice %s not found; using the default", voice.name)
        _settle_driver(engine)
        out.unlink(missing_ok=True)
        engine.save_to_file(text, str(out))
        engine.runAndWait()
        if out.exists() and out.stat().st_size > 44 + 2205:  # more than 50 ms of audio
            return SpeechClip(text, out, wav_duration(out))
        raise SpeechError("pyttsx3 wrote no audio.")


def _settle_driver(engine: Any) -> None:
    """Let pyttsx3 2.99's espeak driver start the next sentence from a clean state.

    Its ``runAndWait`` first calls the driver's ``stop()``, which sets ``_stopping`` whenever
    espeak-ng reports ``IsPlaying()``; espeak-ng's own thread still does so for a moment after
    it has delivered the previous sentence. Nothing clears that stale flag unless the driver's
    loop is still running when it looks (usually the sentence is done before), so it lingers
    until a later sentence that is still queued in espeak-ng when the loop first looks: the
    driver then calls ``espeak_Cancel``, which drops that sentence, and no file is written
    ("wrote no audio", a few calls in a thousand). So: wait until espeak-ng is idle, clear the
    flag, and clear the last audio chunk, which the driver appends after writing the file (it
    would leak into the start of the next sentence)."""
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    if driver is None or not hasattr(driver, "_stopping"):
        return
    try:
        from pyttsx3.drivers import _espeak  # noqa: PLC0415 - loaded with the engine
    except ImportError:
        return
    deadline = time.monotonic() + 1.0
    while _espeak.IsPlaying() and time.monotonic() < deadline:
        time.sleep(0.001)
    driver._stopping = False
    driver._data_buffer = b""


class EspeakCliEngine(SpeechEngine):
    """The espeak-ng program, run once per sentence."""

    name = "espeak-ng"

    def problem(self) -> str:
        if shutil.which("espeak-ng") is None:
            return "espeak-ng is not installed. Install it with: sudo apt install espeak-ng"
        return ""

    def synthesize(self, text: str, voice: Voice, out: Path,
                   stop: threading.Event | None = None) -> SpeechClip:
        # ``stop`` is not checked: a text of MAX_SPEECH_CHARS takes a twentieth of a second.
        amp = int(max(0.0, min(voice.volume, 100.0)) * 2)  # espeak amplitude 0-200
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(int(voice.rate)), "-a", str(amp),
               "-w", str(out), "--", text]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SpeechError(f"espeak-ng failed: {exc}") from exc
        return SpeechClip(text, out, wav_duration(out))


def _piper() -> SpeechEngine:
    from player.audio.speech_piper import PiperEngine  # noqa: PLC0415 - optional, heavy

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
    """Text to synthesize. An urgent one (someone waits to hear it) goes before the others and
    stops the one being synthesized, which is done again after it."""

    key: int
    text: str
    voice: Voice
    urgent: bool = False


_FOLDER = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)-")


def remove_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove speech folders left by narrate processes that are gone (killed before they could
    clean up): only this user's, only when the process in the name no longer runs. Returns
    what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    for folder in root.glob(FOLDER_PREFIX + "*"):
        match = _FOLDER.match(folder.name)
        try:
            info = folder.lstat()
        except OSError:
            continue
        if (match is None or not stat.S_ISDIR(info.st_mode)  # a link is not followed
                or info.st_uid != os.getuid() or _alive(int(match.group(1)))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("removed %d speech folders left by stopped players", len(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class Synthesizer:
    """One worker thread that owns the engine and synthesizes requests: urgent ones first (the
    newest first), then the rest in order. Texts are cut to MAX_SPEECH_CHARS.

    ``on_done(key, clip_or_None, error_message)`` is called on the worker thread; the Qt side
    forwards it with a signal. It is not called after close().
    """

    def __init__(self, chain: tuple[SpeechEngine, ...],
                 on_done: Callable[[int, SpeechClip | None, str], None]) -> None:
        self._chain = list(chain)
        self._on_done = on_done
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[tuple[int, int], SynthRequest]] = {}  # key -> order, req
        self._order = 0
        self._running: SynthRequest | None = None
        self._stop = threading.Event()  # set: the running request should stop
        self._closed = False
        self._error = ""  # an engine failure, told with the next result
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        self._count = 0
        self._thread = threading.Thread(target=self._run, name="speech-synth", daemon=True)
        self._thread.start()

    @property
    def engine_name(self) -> str:
        return self._chain[0].name if self._chain else "none"

    def submit(self, req: SynthRequest) -> None:
        with self._cond:
            if not self._closed:
                self._queue(req)

    def hurry(self, key: int) -> None:
        """Make the queued request ``key`` urgent (someone now waits to hear it)."""
        with self._cond:
            entry = self._pending.get(key)
            if entry is not None and not entry[1].urgent:
                self._queue(replace(entry[1], urgent=True))

    def _queue(self, req: SynthRequest) -> None:
        """Queue ``req``; an urgent one stops the running request. Call with the lock held."""
        self._order += 1
        order = (0, -self._order) if req.urgent else (1, self._order)
        self._pending[req.key] = (order, req)
        if req.urgent and self._running is not None and self._running.key != req.key:
            self._stop.set()
        self._cond.notify()

    def _next(self) -> tuple[SynthRequest, threading.Event] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            key = min(self._pending, key=lambda k: self._pending[k][0])
            self._running = self._pending[key][1]
            self._stop = threading.Event()
            return self._running, self._stop

    def _run(self) -> None:
        try:
            while (item := self._next()) is not None:
                req, stop = item
                try:
                    clip, cancelled = self._synthesize(req, stop), False
                except SpeechCancelled:
                    clip, cancelled = None, True
                with self._cond:
                    self._running = None
                    if self._closed:
                        return
                    if cancelled:  # for an urgent request: it stays queued, done after that
                        continue
                    self._pending.pop(req.key, None)
                    error, self._error = self._error, ""
                self._on_done(req.key, clip, error)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _synthesize(self, req: SynthRequest, stop: threading.Event) -> SpeechClip | None:
        """The clip, down the chain of engines; None when none is left."""
        text = shorten(req.text, MAX_SPEECH_CHARS)
        if text != req.text:
            log.warning("speaking only the first %d of %d characters of %r", len(text),
                        len(req.text), req.text[:80])
        self._count += 1
        out = self.folder / f"s{self._count}.wav"  # unique: cached clips keep their files
        while self._chain:
            try:
                return self._chain[0].synthesize(text, req.voice, out, stop)
            except SpeechCancelled:
                out.unlink(missing_ok=True)
                raise
            except Exception as exc:  # noqa: BLE001 - any engine failure moves down the chain
                failed = self._chain.pop(0)
                self._error = f"{failed.name} failed ({exc}); " + (
                    f"now using {self._chain[0].name}." if self._chain else "speech is off.")
                log.warning(self._error)
        return None

    def close(self) -> None:
        """Stop now: what is queued is dropped, the running synthesis is asked to stop, and the
        folder of WAV files is removed (by the worker, as it ends)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._stop.set()
            self._cond.notify()
        self._thread.join(timeout=CLOSE_WAIT_S)
        if self._thread.is_alive():
            log.warning("speech synthesis is still running; its folder is removed when it ends")
