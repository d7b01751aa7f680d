"""Voice activity detection: how likely each 32 ms of a soundtrack is to hold speech.

Every engine takes float32 mono samples at 16 kHz and returns one speech probability per
512-sample window, keeping its state between calls so a long soundtrack can be fed in chunks.
The chain is Silero VAD (a small neural model, vendored in ``models/data``, run with
onnxruntime) and then :class:`EnergyVad`, a crude loudness rule that always works.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""The rate every engine expects, in samples per second."""

WINDOW = 512
"""Samples per probability: 32 ms at 16 kHz."""

WINDOW_SECONDS = WINDOW / SAMPLE_RATE

MODEL_PATH = Path(__file__).resolve().parent / "data" / "silero_vad.onnx"
"""The vendored Silero VAD model (MIT; see ``data/SILERO_VAD_LICENSE.txt``)."""


class VadEngine(ABC):
    """Speech probabilities for a stream of 16 kHz mono audio.

    An engine holds the state of one stream: use one instance per thread, and call
    :meth:`reset` before starting a new stream (or after a seek).
    """

    name: str = "vad"

    def __init__(self) -> None:
        self._rest = np.zeros(0, dtype=np.float32)

    @abstractmethod
    def problem(self) -> str:
        """"" when usable; otherwise why not, with the fix."""

    def reset(self) -> None:
        """Forget the stream so far: the next samples start a new one."""
        self._rest = np.zeros(0, dtype=np.float32)
        self._reset_state()

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """One speech probability (0..1, float32) per complete 512-sample window.

        ``audio`` continues the samples of earlier calls; samples that do not fill a window are
        kept for the next call.
        """
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if self._rest.size:
            samples = np.concatenate([self._rest, samples])
        count = samples.size // WINDOW
        self._rest = samples[count * WINDOW:].copy()
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = samples[:count * WINDOW].reshape(count, WINDOW)
        return np.asarray(self._windows(windows), dtype=np.float32)

    @abstractmethod
    def _reset_state(self) -> None:
        """Forget the engine's own state (model memory, noise estimates)."""

    @abstractmethod
    def _windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities for ``windows`` (shape ``(n, 512)``), which continue the stream."""


class SileroVad(VadEngine):
    """Silero VAD v5 through onnxruntime on the CPU.

    ``threads`` is onnxruntime's intra-op thread count: 1 leaves the other cores to decoding
    and the rest of the player; the model is small, so more threads help little.
    """

    name = "silero"
    runtime_module = "onnxruntime"
    """The module imported to run the model (a subclass may name another, for tests)."""

    CONTEXT = 64
    """Samples of the previous window that v5 expects in front of each 512-sample window."""

    def __init__(self, threads: int = 1, model_path: str | Path | None = None) -> None:
        super().__init__()
        self.threads = max(1, int(threads))
        self.model_path = Path(model_path) if model_path is not None else MODEL_PATH
        self._session: Any = None
        self._error = ""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._input = np.zeros((1, self.CONTEXT + WINDOW), dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def _load(self) -> Any:
        if self._session is not None or self._error:
            return self._session
        try:
            ort = importlib.import_module(self.runtime_module)
        except ImportError:
            self._error = ("Silero VAD needs onnxruntime, which is not installed "
                           "(pip install onnxruntime).")
            return None
        if not self.model_path.is_file():
            self._error = (f"The Silero VAD model is missing: {self.model_path} does not exist. "
                           f"Reinstall Video Narrator to restore it.")
            return None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.model_path), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
            names = {arg.name for arg in session.get_inputs()}
            if names != {"input", "state", "sr"}:
                raise ValueError(f"unexpected inputs {sorted(names)}")
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            self._error = (f"The Silero VAD model at {self.model_path} could not be loaded "
                           f"({exc}). The file may be damaged: reinstall Video Narrator.")
            return None
        self._session = session
        return session

    def problem(self) -> str:
        self._load()
        return self._error

    def _reset_state(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._input[:] = 0.0

    def _windows(self, windows: np.ndarray) -> np.ndarray:
        session = self._load()
        if session is None:
            raise RuntimeError(self._error)
        out = np.empty(len(windows), dtype=np.float32)
        x = self._input
        feed = {"input": x, "state": self._state, "sr": self._sr}
        run = session.run
        for i, window in enumerate(windows):
            x[0, :self.CONTEXT] = x[0, -self.CONTEXT:]
            x[0, self.CONTEXT:] = window
            prob, state = run(None, feed)
            feed["state"] = np.asarray(state, dtype=np.float32)
            out[i] = np.asarray(prob)[0, 0]
        self._state = np.asarray(feed["state"], dtype=np.float32)
        return out


class EnergyVad(VadEngine):
    """A crude fallback that always works: loudness above the background, discounted for tones.

    Each window's level (RMS, in dB) is compared with a noise floor that falls at once to a
    quieter window and rises only slowly (3 dB a second), so it follows steady background
    sound but not speech, which keeps dipping between syllables; it starts at the level of the
    first window. A window 10 dB or more above the floor counts as speech, less so when its
    spectrum is very peaky (low spectral flatness), as it is for steady tones and many chords.
    It cannot tell speech from other sudden sounds (a door slam, a drum hit, loud music with
    a beat), so over music it finds "speech" that is not there: use it only when Silero VAD is
    unavailable.
    """

    name = "energy"

    RISE_DB = 3.0 * WINDOW_SECONDS
    """How far the noise floor may rise per window (3 dB a second)."""
    MARGIN_DB = 10.0
    """How far above the floor a window must be to count as speech (probability 0.5)."""
    QUIET_DB = -55.0
    """Windows quieter than this never count as speech."""

    def __init__(self) -> None:
        super().__init__()
        self._floor: float | None = None
        self._hann = np.hanning(WINDOW).astype(np.float32)
        freqs = np.fft.rfftfreq(WINDOW, 1.0 / SAMPLE_RATE)
        self._band = (freqs >= 100.0) & (freqs <= 4000.0)

    def problem(self) -> str:
        return ""

    def _reset_state(self) -> None:
        self._floor = None

    def _windows(self, windows: np.ndarray) -> np.ndarray:
        power = np.mean(np.square(windows, dtype=np.float64), axis=1)
        level = 10.0 * np.log10(power + 1e-12)
        floors = np.empty_like(level)
        floor = float(level[0]) if self._floor is None else self._floor
        for i, db in enumerate(level.tolist()):
            floor = db if db < floor else min(db, floor + self.RISE_DB)
            floors[i] = floor
        self._floor = floor
        spectrum = np.abs(np.fft.rfft(windows * self._hann, axis=1))[:, self._band] ** 2 + 1e-12
        flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
        tonal = np.clip((np.log10(flatness) + 5.0) / 3.0, 0.3, 1.0)
        above = level - floors - self.MARGIN_DB
        prob = tonal / (1.0 + np.exp(-above / 2.0))
        prob[level < self.QUIET_DB] = 0.0
        return prob


ENGINES: Mapping[str, Callable[[], VadEngine]] = {"silero": SileroVad, "energy": EnergyVad}
"""The engines by name."""

DEFAULT_ORDER = ("silero", "energy")


def choose_vad(order: Sequence[str] = DEFAULT_ORDER,
               factories: Mapping[str, Callable[[], VadEngine]] = ENGINES,
               ) -> tuple[VadEngine, tuple[str, ...]]:
    """The first usable engine in ``order``, and notes on every engine passed over.

    The chain always ends in :class:`EnergyVad`, added when ``order`` does not name it.
    """
    notes: list[str] = []
    for key in order:
        factory = factories.get(key)
        if factory is None:
            notes.append(f"{key}: no such voice detector (known: {', '.join(factories)}).")
            continue
        try:
            engine = factory()
            problem = engine.problem()
        except Exception as exc:  # noqa: BLE001 - a broken optional engine must not stop the scan
            engine, problem = None, f"could not start ({exc})"
        if engine is not None and not problem:
            if notes:
                notes.append(f"Finding speech with {engine.name}.")
            return engine, tuple(notes)
        notes.append(f"{key}: {problem}")
    engine = EnergyVad()
    notes.append(f"Finding speech with {engine.name}, a rough loudness rule.")
    return engine, tuple(notes)
