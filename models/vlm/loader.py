"""Open the vision-language model the user chose: a catalog name or a local path."""

from __future__ import annotations

from pathlib import Path

from models.vlm.base import VlmEngine, VlmError


def open_vlm(name_or_path: str | Path) -> VlmEngine:
    """The engine for a model: GGUF (llama.cpp) or a transformers folder. Not loaded yet."""
    from models.catalog import ModelError, resolve  # noqa: PLC0415

    try:
        model = resolve(name_or_path)
    except ModelError as exc:
        raise VlmError(str(exc)) from exc
    if model.backend == "transformers":
        from models.vlm.hf import HfVlm  # noqa: PLC0415

        return HfVlm(model.path)
    try:
        from models.vlm.llama import LlamaVlm  # noqa: PLC0415
    except ImportError as exc:
        raise VlmError("The llama.cpp backend is not available in this version: "
                       f"{exc}.") from exc
    return LlamaVlm(model.model_file, model.mmproj)


def load_vlm(name_or_path: str | Path) -> VlmEngine:
    """:func:`open_vlm`, checked (``problem()``) and loaded; VlmError saying why not."""
    engine = open_vlm(name_or_path)
    problem = engine.problem()
    if problem:
        raise VlmError(problem)
    engine.load()
    return engine
