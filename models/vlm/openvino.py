"""A SmolVLM / Idefics3 model converted to OpenVINO IR, run with the OpenVINO runtime.

The folder is what ``narrate models convert MODEL --to openvino`` writes
(:mod:`models.vlm.openvino_convert`): three IR models (image encoder, token embeddings, language
model with its cache as plain tensors), the original configs, tokenizer and processor, and a
manifest written last. The engine runs the processor (transformers, no torch needed), the image
encoder, then greedy decoding step by step in numpy, so the first words stream as soon as they
are decoded and a batch of look-ahead frames is one left-padded pass, as in the transformers
engine. openvino is imported inside the engine; a missing library, folder or file is one
sentence from ``problem()`` or ``load()``.

Why not openvino-genai's VLMPipeline: it reads only the layout optimum-intel writes, and
optimum-intel cannot be installed beside transformers 5.17 (see openvino_convert).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.vlm.base import VlmEngine, VlmError, VlmRequest
from models.vlm.clean import clean
from models.vlm.openvino_convert import FORMAT, INSTALL_HINT, MANIFEST, PARTS

log = logging.getLogger(__name__)

CONVERT_HINT = "narrate models convert MODEL --to openvino"


@dataclass(frozen=True)
class Timing:
    """Where the time of the last answer went, in seconds: the image encoder alone, the whole
    prompt (processor, encoder and the language model's first pass), and the whole answer."""

    encoder: float
    prompt: float
    total: float
    tokens: int


def is_openvino_form(folder: Path) -> bool:
    """Whether ``folder`` is (or was meant to be) an OpenVINO form: it holds the manifest or
    one of the IR files."""
    return folder.is_dir() and any((folder / name).exists()
                                   for name in (MANIFEST, *PARTS.values()))


def read_form(folder: Path) -> dict[str, Any]:
    """The manifest of the OpenVINO form in ``folder``, with every file it names checked (there,
    with the size it had when written); VlmError, one sentence, when anything is wrong."""
    again = f"convert the model again with: {CONVERT_HINT} --overwrite"
    if not folder.is_dir():
        raise VlmError(f"There is no OpenVINO model folder at {folder}; make one with: "
                       f"{CONVERT_HINT}.")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VlmError(f"The OpenVINO model in {folder} is incomplete ({MANIFEST} is missing, "
                       f"so its conversion never finished); {again}.") from None
    except (OSError, ValueError) as exc:
        raise VlmError(f"The OpenVINO model in {folder} is damaged ({MANIFEST} cannot be "
                       f"read: {exc}); {again}.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VlmError(f"The OpenVINO model in {folder} was written in another format than "
                       f"this version reads; {again}.")
    try:
        files = [(str(f["name"]), int(f["size"])) for f in manifest["files"]]
        for key in ("layers", "kv_heads", "head_dim"):
            int(manifest[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise VlmError(f"The OpenVINO model in {folder} is damaged ({MANIFEST} lacks "
                       f"{exc}); {again}.") from exc
    for name, size in files:
        path = folder / name
        if not path.is_file():
            raise VlmError(f"The OpenVINO model in {folder} is damaged: {name} is missing; "
                           f"{again}.")
        if path.stat().st_size != size:
            raise VlmError(f"The OpenVINO model in {folder} is damaged: {name} has the wrong "
                           f"size; {again}.")
    return manifest


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "bad_alloc" in text or "out of memory" in text


class OvVlm(VlmEngine):
    """An image-text-to-text model in OpenVINO IR from a local folder.

    ``device``: "auto" (the CPU), "cpu" or an OpenVINO device such as "GPU" (an Intel GPU);
    when the asked-for device is missing or cannot compile the model, the model runs on the CPU
    and ``notes`` says so. ``precision``: OpenVINO's inference precision ("f32", "bf16"; None
    lets OpenVINO choose, which is bfloat16 on processors that have it). ``image_splitting``:
    cut large frames into tiles as the processor says (None: only on a GPU). After loading,
    ``device`` is "cpu" or the OpenVINO device in lower case; ``off`` is why the engine
    switched itself off ("" while it works): the computer ran out of memory while describing.
    ``min_new_tokens`` keeps the end token back that long (for timing random-weight models).
    ``timing`` says where the last answer's time went. ``fallback``: the transformers folder
    the loader falls back to when this form fails to load (set by the loader when it chose
    OpenVINO by itself).
    """

    name = "openvino"

    def __init__(self, model_path: str | Path, device: str = "auto",
                 precision: str | None = None, image_splitting: bool | None = None) -> None:
        self.path = Path(model_path).expanduser()
        self.device_request = device
        self.precision = precision
        self.image_splitting = image_splitting
        self.notes: list[str] = []
        self.off = ""
        self.device = ""
        self.weights = ""
        self.min_new_tokens = 0
        self.timing: Timing | None = None
        self.fallback: Path | None = None
        self._parts: dict[str, Any] = {}
        self._request: Any = None
        self._processor: Any = None
        self._image_token = -1
        self._stop_ids: set[int] = set()
        self._lock = threading.Lock()

    # ----- availability ----------------------------------------------------------------------
    def problem(self) -> str:
        for package in ("openvino", "transformers"):
            if importlib.util.find_spec(package) is None:
                return (f"The {package} package is not installed, and the OpenVINO engine "
                        f"needs it: {INSTALL_HINT}.")
        try:
            read_form(self.path)
        except VlmError as exc:
            return str(exc)
        return ""

    # ----- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if self._parts:
            return
        problem = self.problem()
        if problem:
            raise VlmError(problem)
        manifest = read_form(self.path)
        import openvino as ov  # noqa: PLC0415

        core = ov.Core()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        try:
            (cache / "video-narrator" / "openvino").mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache / "video-narrator" / "openvino")})
        except (OSError, RuntimeError) as exc:  # no cache: compiling is only slower
            log.info("no OpenVINO model cache: %s", exc)
        device = self._pick_device(core)
        parts = self._compile(core, device)
        if parts is None:
            note = (f"{self.path.name} could not run on the OpenVINO device {device}; it runs "
                    f"on the processor (CPU) instead.")
            log.warning(note)
            self.notes.append(note)
            device = "CPU"
            parts = self._compile(core, device)
            if parts is None:
                raise VlmError(self._compile_error)
        self._processor = self._load_processor()
        self._set_tiling(device)
        self._image_token, self._stop_ids = self._token_ids()
        self._parts = parts
        self._request = parts["language"].create_infer_request()
        self.device = device.lower()
        self.weights = str(manifest.get("weights", ""))
        self.off = ""
        log.info("Loaded %s with OpenVINO on %s (%s weights)", self.path, device, self.weights)

    def _pick_device(self, core: Any) -> str:
        asked = self.device_request
        if asked in ("auto", "cpu", "CPU"):
            return "CPU"
        available = list(core.available_devices)
        if asked.upper() in available or any(d.startswith(asked.upper()) for d in available):
            return asked.upper()
        note = (f"The OpenVINO device {asked} was asked for, but this computer has only "
                f"{', '.join(available)}; the model runs on the processor (CPU).")
        log.warning(note)
        self.notes.append(note)
        return "CPU"

    _compile_error = ""

    def _compile(self, core: Any, device: str) -> dict[str, Any] | None:
        """The three parts compiled for ``device``; None (with ``_compile_error``) when one
        cannot be read or compiled there."""
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.precision:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        parts = {}
        for part, name in PARTS.items():
            try:
                parts[part] = core.compile_model(str(self.path / name), device, config)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                self._compile_error = (
                    f"The OpenVINO model in {self.path} cannot be used: {name} does not load "
                    f"({first}); convert the model again with: {CONVERT_HINT} --overwrite.")
                log.warning("%s on %s: %s", name, device, exc)
                return None
        return parts

    def _load_processor(self) -> Any:
        import transformers  # noqa: PLC0415

        from models.vlm.hf import SAFE_LOAD, _processor_with_pil  # noqa: PLC0415

        try:
            return transformers.AutoProcessor.from_pretrained(self.path, **SAFE_LOAD)
        except Exception as exc:  # noqa: BLE001 - reported as one sentence
            if "torchvision" not in str(exc):
                raise VlmError(f"The processor in {self.path} cannot be loaded: {exc}") from exc
        try:
            return _processor_with_pil(self.path, transformers)
        except Exception as exc:  # noqa: BLE001
            raise VlmError(f"The processor in {self.path} cannot be loaded: {exc}") from exc

    def _set_tiling(self, device: str) -> None:
        """One image tile a frame on the CPU unless ``image_splitting`` asks for more (as the
        transformers engine does): several times faster, and enough to describe a scene."""
        images = getattr(self._processor, "image_processor", None)
        if images is None or not getattr(images, "do_image_splitting", False):
            return
        split = self.image_splitting if self.image_splitting is not None else device != "CPU"
        if split:
            return
        tile = getattr(images, "max_image_size", None) or {}
        images.do_image_splitting = False
        if "longest_edge" in tile:
            images.size = {"longest_edge": tile["longest_edge"]}

    def _token_ids(self) -> tuple[int, set[int]]:
        tokenizer = self._processor.tokenizer
        config: dict[str, Any] = {}
        for name in ("config.json", "generation_config.json"):
            try:
                config.update(json.loads((self.path / name).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        image = config.get("image_token_id")
        if image is None:
            image = tokenizer.convert_tokens_to_ids("<image>")
        stops = config.get("eos_token_id")
        stop_ids = set(stops if isinstance(stops, list) else [stops] if stops is not None else [])
        if tokenizer.eos_token_id is not None:
            stop_ids.add(int(tokenizer.eos_token_id))
        return int(image), stop_ids

    def close(self) -> None:
        with self._lock:
            self._parts = {}
            self._request = None
            self._processor = None
            self.off = ""

    # ----- answering -------------------------------------------------------------------------
    def _check_on(self) -> None:
        if self.off:
            raise VlmError(self.off)

    def _ready(self) -> None:
        self._check_on()
        if not self._parts:
            self.load()

    def stream(self, request: VlmRequest) -> Iterator[str]:
        self._ready()
        with self._lock:
            self._check_on()
            tokenizer = self._processor.tokenizer
            tokens: list[int] = []
            said = ""
            try:
                for step in self._generate([request]):
                    if step[0] is None:
                        break
                    tokens.append(step[0])
                    text = tokenizer.decode(tokens, skip_special_tokens=True)
                    if text.endswith("\ufffd"):
                        continue  # half a character: wait for the rest
                    if len(text) > len(said) and text.startswith(said):
                        yield text[len(said):]
                        said = text
            except VlmError:
                raise
            except Exception as exc:  # noqa: BLE001 - one sentence for the caller
                self._failed(exc)

    def describe_batch(self, requests: Sequence[VlmRequest]) -> list[str]:
        """The answers to several requests from one left-padded batch (greedy): the same
        answers as :meth:`describe` gives for each alone, up to rounding."""
        if not requests:
            return []
        self._ready()
        with self._lock:
            self._check_on()
            rows: list[list[int]] = [[] for _ in requests]
            try:
                for step in self._generate(list(requests)):
                    for row, token in zip(rows, step, strict=True):
                        if token is not None:
                            row.append(token)
            except VlmError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
            texts = self._processor.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [clean(text, max_words=r.max_words) for text, r in zip(texts, requests,
                                                                        strict=True)]

    def _failed(self, exc: BaseException) -> None:
        if _is_out_of_memory(exc):
            self.off = (f"The computer ran out of memory while {self.path.name} described a "
                        f"frame; the vision-language model is switched off. Close other "
                        f"programs and choose it again, or choose a smaller model.")
            log.warning("%s (%s)", self.off, exc)
            self._parts, self._request = {}, None
            raise VlmError(self.off) from exc
        raise VlmError(f"The model failed while describing: {exc}") from exc

    def _inputs(self, requests: list[VlmRequest]) -> dict[str, np.ndarray]:
        from PIL import Image  # noqa: PLC0415

        processor = self._processor
        tokenizer = processor.tokenizer
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            texts = [processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"},
                                              {"type": "text", "text": r.prompt}]}],
                add_generation_prompt=True) for r in requests]
            return processor(text=texts, images=[[Image.fromarray(r.image)] for r in requests],
                             padding=True, return_tensors="np")
        finally:
            tokenizer.padding_side = side

    def _generate(self, requests: list[VlmRequest]) -> Iterator[list[int | None]]:
        """Greedy decoding: one list per step with each row's new token (None once the row
        has ended); stops when every row has ended or reached its ``max_new_tokens``."""
        began = time.perf_counter()
        inputs = self._inputs(requests)
        ids = inputs["input_ids"].astype(np.int64)
        mask = inputs["attention_mask"].astype(np.int64)
        pixels = inputs["pixel_values"]
        pixels = pixels.reshape(-1, *pixels.shape[-3:]).astype(np.float32)
        pixels = pixels[np.any(pixels != 0, axis=(1, 2, 3))]  # padding images are all zero
        encoder_began = time.perf_counter()
        features = self._parts["vision"](pixels)[0]
        encoder = time.perf_counter() - encoder_began
        embeds = np.array(self._parts["embeddings"](ids)[0], dtype=np.float32)
        slots = ids == self._image_token
        features = features.reshape(-1, embeds.shape[-1])
        if int(slots.sum()) != features.shape[0]:
            raise VlmError(f"The prompt has {int(slots.sum())} image places but the image "
                           f"encoder gave {features.shape[0]}; the OpenVINO model does not "
                           f"fit its processor; convert it again with: {CONVERT_HINT} "
                           f"--overwrite.")
        embeds[slots] = features
        positions = np.cumsum(mask, axis=1) - 1
        positions[mask == 0] = 1
        batch = ids.shape[0]
        language = self._request  # its cache lives inside OpenVINO, emptied here
        language.reset_state()
        language.infer([embeds, mask, positions])
        prompt = time.perf_counter() - began
        limit = max(r.max_new_tokens for r in requests)
        ended = [False] * batch
        position = positions[:, -1:]
        steps = 0
        for step in range(limit):
            logits = np.array(language.get_output_tensor(0).data, dtype=np.float32)
            if step < self.min_new_tokens:
                logits[:, sorted(self._stop_ids)] = -np.inf
            chosen = logits.argmax(axis=-1)
            tokens: list[int | None] = []
            for row, token in enumerate(chosen.tolist()):
                if not ended[row] and (token in self._stop_ids
                                       or step >= requests[row].max_new_tokens):
                    ended[row] = True
                tokens.append(None if ended[row] else int(token))
            if all(ended):
                break
            steps += 1
            yield tokens
            if step + 1 == limit:
                break
            mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
            position = position + 1
            token_embeds = self._parts["embeddings"](chosen.reshape(batch, 1))[0]
            language.infer([token_embeds, mask, position])
        self.timing = Timing(encoder, prompt, time.perf_counter() - began, steps)
