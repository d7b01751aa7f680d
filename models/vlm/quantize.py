"""Quantize a GGUF language model (Q8_0, Q4_K_M...) with llama.cpp's own quantizer.

Models from the catalog come already quantized; this is for a model someone converted
themselves (``convert_hf_to_gguf.py`` writes float16 or float32): a 4-bit file is about a
quarter of the float16 size and runs faster on a CPU. The multimodal projector is left as it is
(llama.cpp reads it in float16 or float32). The output is written to a ``.part`` file first and
renamed when complete, so a full disk or a stop halfway never leaves a broken model behind.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from models.vlm.base import VlmError
from models.vlm.gguf import read_gguf

# llama.cpp's llama_ftype values for the types offered here, and the bits per weight they use
# (for the disk-space check).
TYPES: dict[str, tuple[int, float]] = {
    "Q8_0": (7, 8.5),
    "Q6_K": (18, 6.6),
    "Q5_K_M": (17, 5.7),
    "Q4_K_M": (15, 4.9),
    "Q4_0": (2, 4.5),
}
FLOAT_TYPES = {0: "F32", 1: "F16", 32: "BF16"}
"""general.file_type values of unquantized files."""
SOURCE_BITS = {0: 32.0, 1: 16.0, 32: 16.0}


@dataclass(frozen=True)
class Quantized:
    """What :func:`quantize_gguf` wrote: the file, its type and sizes, and how long it took."""

    path: Path
    kind: str
    bytes_before: int
    bytes_after: int
    seconds: float


def default_output(source: Path, kind: str) -> Path:
    """``model-f16.gguf`` -> ``model-Q4_K_M.gguf`` beside the source."""
    stem = source.stem
    for suffix in ("-f32", "-f16", "-bf16", "-F32", "-F16", "-BF16", ".f32", ".f16"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return source.with_name(f"{stem}-{kind}.gguf")


def _check_source(source: Path) -> int:
    info = read_gguf(source)  # VlmError for a missing, corrupt or non-GGUF file
    if info.architecture == "clip" or "clip.has_vision_encoder" in info.metadata:
        raise VlmError(f"{source.name} is a multimodal projector; quantize the language model "
                       f"file instead (the projector stays as it is).")
    file_type = int(info.metadata.get("general.file_type", 0))
    if file_type not in FLOAT_TYPES:
        raise VlmError(f"{source.name} is already quantized; quantizing it again would lose "
                       f"quality. Start from the float16 or float32 file.")
    return file_type


def _check_space(source: Path, output: Path, kind: str, file_type: int) -> None:
    needed = int(source.stat().st_size * TYPES[kind][1] / SOURCE_BITS[file_type] * 1.05)
    free = shutil.disk_usage(output.parent).free
    if needed > free:
        raise VlmError(f"Not enough disk space in {output.parent}: the {kind} file needs about "
                       f"{needed / 2**20:.0f} MB and {free / 2**20:.0f} MB are free. Free some "
                       f"space or write the file elsewhere.")


def quantize_gguf(source: str | Path, kind: str = "Q4_K_M", output: str | Path | None = None,
                  threads: int | None = None, overwrite: bool = False) -> Quantized:
    """Write a ``kind`` quantized copy of the GGUF language model ``source``; VlmError (with
    what to do) for a wrong type, a projector, an already quantized file, too little disk
    space, or a failure inside llama.cpp."""
    if kind not in TYPES:
        raise VlmError(f"Unknown quantization type {kind!r}; choose one of "
                       f"{', '.join(TYPES)}.")
    source = Path(source).expanduser()
    file_type = _check_source(source)
    target = Path(output).expanduser() if output else default_output(source, kind)
    if target.resolve() == source.resolve():
        raise VlmError("The output file must not be the source file.")
    if target.exists() and not overwrite:
        raise VlmError(f"{target} already exists; remove it or choose another output file.")
    if not target.parent.is_dir():
        raise VlmError(f"No folder {target.parent} to write the output to.")
    _check_space(source, target, kind, file_type)
    try:
        import llama_cpp  # noqa: PLC0415
    except ImportError:
        raise VlmError('Quantizing needs llama-cpp-python: pip install '
                       '"video-narrator[llama]".') from None
    part = target.with_name(target.name + ".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = TYPES[kind][0]
    params.nthread = threads or os.cpu_count() or 1
    started = time.perf_counter()
    try:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(part).encode(),
                                              params)
        if code != 0 or not part.exists():
            raise VlmError(f"llama.cpp could not quantize {source.name} to {kind} (code "
                           f"{code}); the disk may be full or the file damaged.")
        read_gguf(part)  # a file cut short by a full disk is caught here
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return Quantized(target, kind, source.stat().st_size, target.stat().st_size,
                     time.perf_counter() - started)
