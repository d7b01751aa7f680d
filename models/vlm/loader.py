"""Open the vision-language model the user chose: a catalog name or a local path.

A transformers model with an OpenVINO form beside it (``narrate models convert``) runs with
OpenVINO on a computer without a usable GPU, several times faster on the CPU; a damaged form, a
missing openvino library or an OpenVINO load that fails falls back to transformers with a note.
The engine can also be chosen by hand: ``engine="openvino"`` or ``"transformers"``, or the path
of an OpenVINO form as the model.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from models.vlm.base import VlmEngine, VlmError

log = logging.getLogger(__name__)

ENGINES = ("auto", "transformers", "openvino")


def usable_gpu() -> bool:
    """Whether transformers would run on a CUDA GPU here. Without the NVIDIA driver's device
    files there is none (cheap, no torch import); otherwise torch is asked."""
    if not (Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia").exists()):
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch  # noqa: PLC0415

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch cannot use the GPU either
        return False


def open_vlm(name_or_path: str | Path, engine: str = "auto") -> VlmEngine:
    """The engine for a model: GGUF (llama.cpp), a transformers folder, or its OpenVINO form
    (see the module's note for which is chosen). Not loaded yet."""
    from models.catalog import ModelError, openvino_forms, resolve  # noqa: PLC0415

    if engine not in ENGINES:
        raise VlmError(f"The engine can be {', '.join(ENGINES)}, not {engine}.")
    try:
        model = resolve(name_or_path)
    except ModelError as exc:
        raise VlmError(str(exc)) from exc
    if model.backend == "openvino":
        from models.vlm.openvino import OvVlm  # noqa: PLC0415

        return OvVlm(model.path)
    if model.backend == "transformers":
        from models.vlm.hf import HfVlm  # noqa: PLC0415

        forms = openvino_forms(model.path)
        if engine == "openvino" and not forms:
            raise VlmError(f"{model.name} has no OpenVINO form yet; make one with: narrate "
                           f"models convert {name_or_path} --to openvino --weights int8")
        if engine == "openvino" or (engine == "auto" and forms and not usable_gpu()):
            from models.vlm.openvino import OvVlm  # noqa: PLC0415

            chosen = OvVlm(next(iter(forms.values())))
            if engine == "openvino":
                return chosen
            problem = chosen.problem()
            if not problem:
                chosen.fallback = model.path
                return chosen
            fallback = HfVlm(model.path)
            _note(fallback, f"The OpenVINO form of {model.name} cannot be used ({problem}); "
                            f"the slower transformers engine describes instead.")
            return fallback
        return HfVlm(model.path)
    if engine != "auto":
        raise VlmError(f"{model.name} is a GGUF model for llama.cpp; the {engine} engine "
                       f"needs a transformers model folder.")
    try:
        from models.vlm.llama import LlamaVlm  # noqa: PLC0415
    except ImportError as exc:
        raise VlmError("The llama.cpp backend is not available in this version: "
                       f"{exc}.") from exc
    if model.model_file is None:
        raise VlmError(f"{model.name} has no GGUF model file to load.")
    return LlamaVlm(model.model_file, model.mmproj)


def _note(engine: VlmEngine, note: str) -> None:
    log.warning(note)
    notes = getattr(engine, "notes", None)
    if isinstance(notes, list):
        notes.append(note)


def load_vlm(name_or_path: str | Path, engine: str = "auto") -> VlmEngine:
    """:func:`open_vlm`, checked (``problem()``) and loaded; VlmError saying why not. An
    OpenVINO form chosen by itself that fails to load gives way to transformers, with a note."""
    opened = open_vlm(name_or_path, engine)
    problem = opened.problem()
    if problem:
        raise VlmError(problem)
    try:
        opened.load()
    except VlmError as exc:
        fallback = getattr(opened, "fallback", None)
        if fallback is None:
            raise
        from models.vlm.hf import HfVlm  # noqa: PLC0415

        replacement = HfVlm(fallback)
        _note(replacement, f"The OpenVINO form of {Path(fallback).name} did not load ({exc}); "
                           f"the slower transformers engine describes instead.")
        problem = replacement.problem()
        if problem:
            raise VlmError(problem) from exc
        replacement.load()
        return replacement
    return opened
