"""Convert a transformers SmolVLM / Idefics3 folder into OpenVINO IR, once, beside it.

Why OpenVINO's own converter and not optimum-intel: optimum-intel (2.2, the newest) needs
transformers older than 5.6 and this project runs transformers 5.17, so it cannot be installed
beside it; openvino-genai's VLMPipeline reads only the folder layout optimum-intel writes (a
stateful language model, openvino_tokenizers models). So the model is cut into three parts
(:mod:`models.vlm.openvino_export`: the vision encoder with its connector, the token
embeddings, the language model with its cache as plain tensors), each traced by
``openvino.convert_model``; the engine (:mod:`models.vlm.openvino`) runs them with the OpenVINO
runtime alone. Weights can be compressed by NNCF: int8 for every part, or int4 for the language
model (its embeddings and output layer stay 8-bit, as NNCF does by default) with the other
parts in int8.

The form is written into a hidden folder beside the target and renamed into place only when
complete, with its manifest (``openvino_model.json``) written last; a failure, a full disk or
Ctrl+C removes the unfinished folder, and the original model is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.catalog import OPENVINO_MANIFEST, openvino_form
from models.vlm.base import VlmError

log = logging.getLogger(__name__)

MANIFEST = OPENVINO_MANIFEST
FORMAT = 1
WEIGHTS = ("fp32", "fp16", "int8", "int4")
PARTS = {"vision": "openvino_vision.xml", "embeddings": "openvino_text_embeddings.xml",
         "language": "openvino_language_model.xml"}
INSTALL_HINT = 'pip install "video-narrator[openvino]"'
ARCHITECTURES = ("idefics3", "smolvlm")
"""Model types whose parts :mod:`models.vlm.openvino_export` knows (SmolVLM and SmolVLM2)."""
SHARE = {"fp32": 1.0, "fp16": 0.5, "int8": 0.27, "int4": 0.2}
"""Size of each form against float32 weights (int4: the embeddings and output stay 8-bit)."""
KEEP = (".json", ".txt", ".jinja", ".model")
"""Files copied from the source folder: configs, tokenizer and processor, chat template."""


@dataclass(frozen=True)
class Converted:
    """What :func:`convert` wrote: the folder, its size on disk, the seconds it took."""

    path: Path
    weights: str
    bytes: int
    seconds: float


def form_folder(source: Path, weights: str) -> Path:
    """Where the OpenVINO form of the model folder ``source`` lives: beside it, named
    ``<name>-openvino`` (fp32) or ``<name>-openvino-<weights>``."""
    return openvino_form(source, weights)


def missing_packages(weights: str) -> list[str]:
    """The packages a conversion to ``weights`` needs that are not installed."""
    needed = ["openvino", "torch", "transformers"] + (["nncf"] if weights in ("int8", "int4")
                                                       else [])
    return [p for p in needed if importlib.util.find_spec(p) is None]


def _read_config(folder: Path) -> dict[str, Any]:
    from models.vlm.hf import read_config  # noqa: PLC0415

    return read_config(folder, f"No config.json in {folder}; give a transformers model folder.")


def check_source(folder: Path) -> dict[str, Any]:
    """The source folder's config when it can be converted; VlmError saying why not."""
    from models.vlm.hf import code_refusal, safetensors_files  # noqa: PLC0415

    safetensors_files(folder)
    refusal = code_refusal(folder)
    if refusal:
        raise VlmError(refusal)
    config = _read_config(folder)
    kind = config.get("model_type")
    text_kind = (config.get("text_config") or {}).get("model_type", "llama")
    if kind not in ARCHITECTURES or text_kind != "llama":
        raise VlmError(f"The model in {folder} is a {kind} model; only SmolVLM (Idefics3) "
                       f"models can be converted to OpenVINO so far.")
    return config


def needed_bytes(folder: Path, weights: str) -> int:
    """Disk space the form needs: the float32 weights scaled to ``weights``, with a margin."""
    from models.vlm.hf import BYTES, safetensors_files, stored_dtype  # noqa: PLC0415

    on_disk = sum(p.stat().st_size for p in safetensors_files(folder))
    float32 = on_disk * 4 / BYTES[stored_dtype(folder)]
    return int(float32 * SHARE[weights] * 1.1) + 2**20


def check_space(folder: Path, target: Path, weights: str) -> None:
    """VlmError when the disk holding ``target`` clearly has too little free space."""
    need = needed_bytes(folder, weights)
    free = shutil.disk_usage(target.parent).free
    if free < need:
        raise VlmError(f"Converting {folder.name} to OpenVINO {weights} needs about "
                       f"{_mb(need)} MB of disk space but only {_mb(free)} MB is free in "
                       f"{target.parent}; nothing was written. Free some space and try again.")


def _mb(n: int) -> int:
    return max(0, n) // 2**20


def convert(source: str | Path, weights: str = "fp32", *, overwrite: bool = False,
            say: Callable[[str], None] | None = None) -> Converted:
    """Convert the transformers model folder ``source`` into the OpenVINO form
    :func:`form_folder` names (``weights``: fp32, fp16, int8 or int4); VlmError saying why
    not. An existing form is replaced only with ``overwrite``."""
    if weights not in WEIGHTS:
        raise VlmError(f"The weights can be {', '.join(WEIGHTS)}, not {weights}.")
    folder = Path(source).expanduser()
    target = form_folder(folder, weights)
    missing = missing_packages(weights)
    if missing:
        raise VlmError(f"Converting to OpenVINO needs {' and '.join(missing)}, which "
                       f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}.")
    config = check_source(folder)
    if target.exists() and not overwrite:
        raise VlmError(f"{target} already exists; use --overwrite to convert again.")
    check_space(folder, target, weights)
    began = time.monotonic()
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        _write_form(folder, partial, config, weights, say or log.info)
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            target.rename(old)
            partial.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.rename(target)
    except (OSError, RuntimeError) as exc:  # OpenVINO reports a failed write as RuntimeError
        shutil.rmtree(partial, ignore_errors=True)
        if _disk_full(exc, target.parent):
            raise VlmError(f"The disk ran out of space while converting {folder.name} to "
                           f"OpenVINO; the unfinished copy was removed and the model is as it "
                           f"was. Free some space in {target.parent} and try again.") from exc
        if not isinstance(exc, OSError):
            raise VlmError(f"Converting {folder.name} to OpenVINO failed: "
                           f"{_first_line(exc)}; nothing was kept.") from exc
        raise VlmError(f"Converting {folder.name} to OpenVINO could not write to "
                       f"{target.parent}: {exc.strerror or exc}; nothing was kept.") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in target.iterdir() if p.is_file())
    return Converted(target, weights, size, time.monotonic() - began)


def _disk_full(exc: BaseException, where: Path) -> bool:
    """Whether a failed write ran out of disk space (OpenVINO does not always say so)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    if "no space" in text:
        return True
    try:
        return shutil.disk_usage(where).free < 2**20
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _write_form(source: Path, dest: Path, config: dict[str, Any], weights: str,
                say: Callable[[str], None]) -> None:
    import openvino as ov  # noqa: PLC0415
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415

    from models.vlm import openvino_export as export  # noqa: PLC0415
    from models.vlm.hf import SAFE_LOAD  # noqa: PLC0415

    try:
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            source, **SAFE_LOAD, use_safetensors=True, dtype=torch.float32).eval()
    except Exception as exc:  # noqa: BLE001 - any failure here is a broken model folder
        raise VlmError(f"The model in {source} cannot be loaded for conversion: {exc}") from exc
    text = model.config.text_config
    layers, kv_heads = text.num_hidden_layers, text.num_key_value_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    size = model.config.vision_config.image_size
    parts: dict[str, Any] = {}
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns about every shape it fixes; the tile size and head counts are fixed.
        warnings.simplefilter("ignore")
        say("Converting the image encoder.")
        parts["vision"] = ov.convert_model(
            export.VisionPart(model), example_input=(torch.zeros(1, 3, size, size),),
            input=[ov.PartialShape([-1, 3, size, size])])
        parts["embeddings"] = ov.convert_model(
            export.EmbeddingPart(model), example_input=(torch.tensor([[1, 2]]),),
            input=[ov.PartialShape([-1, -1])])
        say("Converting the language model.")
        batch, length, past = 2, 3, 2
        example = (torch.zeros(batch, length, text.hidden_size),
                   torch.ones(batch, past + length, dtype=torch.int64),
                   torch.arange(past, past + length).expand(batch, length).contiguous(),
                   *[torch.zeros(batch, kv_heads, past, head_dim) for _ in range(2 * layers)])
        shapes = [ov.PartialShape([-1, -1, text.hidden_size]), ov.PartialShape([-1, -1]),
                  ov.PartialShape([-1, -1])]
        shapes += [ov.PartialShape([-1, kv_heads, -1, head_dim])] * (2 * layers)
        parts["language"] = _stateful(ov.convert_model(
            export.LanguagePart(model), example_input=example, input=shapes), layers)
    del model
    if weights in ("int8", "int4"):
        say(f"Compressing the weights to {weights}.")
        parts = _compress(parts, weights)
    for part, model_ir in parts.items():
        ov.save_model(model_ir, dest / PARTS[part], compress_to_fp16=weights == "fp16")
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in KEEP and path.name != MANIFEST:
            shutil.copy2(path, dest / path.name)
    files = sorted(p for p in dest.iterdir() if p.is_file())
    manifest = {
        "format": FORMAT, "weights": weights, "source": str(source.resolve()),
        "model_type": config.get("model_type"), "layers": layers, "kv_heads": kv_heads,
        "head_dim": head_dim, "image_size": size,
        "openvino": ov.__version__,
        "files": [{"name": p.name, "size": p.stat().st_size} for p in files],
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _stateful(language: Any, layers: int) -> Any:
    """The language model with its cache kept inside OpenVINO (as optimum-intel does it):
    each past input and its present output become one state variable, which starts empty, with
    the batch size of the embeddings, after ``reset_state()``. No cache goes in or out of a
    step, which saves a copy of every layer's keys and values per token."""
    import numpy as np  # noqa: PLC0415
    import openvino.opset13 as ops  # noqa: PLC0415
    from openvino._offline_transformations import (  # noqa: PLC0415
        apply_make_stateful_transformation,
    )

    for i in range(2 * layers):
        language.inputs[3 + i].get_tensor().set_names({f"past.{i}"})
        language.outputs[1 + i].get_tensor().set_names({f"present.{i}"})
    apply_make_stateful_transformation(language, {f"past.{i}": f"present.{i}"
                                                  for i in range(2 * layers)})
    batch = ops.gather(ops.shape_of(language.inputs[0], output_type="i64"),
                       ops.constant([0]), ops.constant(0))
    for op in language.get_ops():
        if op.get_type_name() == "ReadValue":
            rest = [d.min_length for d in op.get_output_partial_shape(0)][1:]
            shape = ops.concat([batch, ops.constant(np.array(rest, np.int64))], 0)
            op.set_arguments([ops.broadcast(
                ops.constant(0.0, dtype=op.get_output_element_type(0)), shape)])
    language.validate_nodes_and_infer_types()
    return language


def _compress(parts: dict[str, Any], weights: str) -> dict[str, Any]:
    """NNCF weight compression: int8 (asymmetric, per channel) everywhere, or int4 (symmetric,
    in groups of 64 where a layer's width allows) for the language model."""
    import nncf  # noqa: PLC0415
    from nncf.quantization.advanced_parameters import (  # noqa: PLC0415
        AdvancedCompressionParameters,
    )

    logging.getLogger("nncf").setLevel(logging.ERROR)
    out = {}
    # NNCF draws progress bars on standard output, noise for a screen reader: kept apart.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for part, model_ir in parts.items():
            out[part] = _compress_part(nncf, AdvancedCompressionParameters, part, model_ir,
                                       weights)
    return out


def _compress_part(nncf: Any, advanced: Any, part: str, model_ir: Any, weights: str) -> Any:
    if weights == "int4" and part == "language":
        return nncf.compress_weights(
            model_ir, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=64, ratio=1.0,
            advanced_parameters=advanced(
                group_size_fallback_mode=nncf.GroupSizeFallbackMode.ADJUST,
                min_adjusted_group_size=16))
    return nncf.compress_weights(model_ir, mode=nncf.CompressWeightsMode.INT8_ASYM)
