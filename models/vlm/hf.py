"""A transformers vision-language model (SmolVLM / Idefics3 and other image-text-to-text models)
loaded from a local folder.

Only safetensors checkpoints are accepted (pickle files can run code when loaded), and a model
folder's own Python code never runs: a folder whose configs name code (``auto_map``) is refused,
and every load passes ``trust_remote_code=False`` (without it, transformers asks on the terminal
whether to run the code, a question a user of the player never sees). Nothing is ever
downloaded: every load uses ``local_files_only=True``. torch and transformers are imported
inside the engine, so this module imports without them and ``problem()`` says what to install.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import logging
import math
import os
import threading
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from models.vlm.base import VlmEngine, VlmError, VlmRequest
from models.vlm.clean import clean

log = logging.getLogger(__name__)

INSTALL_HINT = 'Install the GPU extra: pip install "video-narrator[gpu]".'
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
OVERHEAD = 1.25
"""Activations, caches and the framework itself, as a share of the weights."""
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "8bit": 1, "4bit": 0.5}
QUANTIZERS = {"cuda": ("bitsandbytes", "accelerate"), "cpu": ("torchao",)}
"""The packages 8bit/4bit quantization needs on a CUDA GPU and on the CPU. On the CPU, torchao's
int8 weight-only layers run about as fast as float32 in less than half the memory, with no
accelerate needed; bitsandbytes and optimum-quanto also run there but 4 to 6 times slower (with
SmolVLM-256M's shape). torchao's 4-bit layers need a GPU kernel library and bitsandbytes' 4-bit
ran 8 times slower than float32 on the CPU, so 4bit is for GPUs only."""


SAFE_LOAD = {"local_files_only": True, "trust_remote_code": False}
"""The arguments of every from_pretrained() call: nothing downloaded, no code from the folder."""


def custom_code(folder: Path) -> list[str]:
    """The files of a model folder that ask transformers to run the folder's own code: its
    JSON configs that hold an ``auto_map`` (config.json, tokenizer_config.json,
    processor_config.json, preprocessor_config.json...)."""
    found: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a broken config is reported where it is read
        if isinstance(config, dict) and config.get("auto_map"):
            found.append(path.name)
    return found


def code_refusal(folder: Path) -> str:
    """One sentence refusing a folder whose configs name code of its own ("" when none do)."""
    configs = custom_code(folder)
    if not configs:
        return ""
    programs = sorted(p.name for p in folder.glob("*.py"))
    named = ", ".join(configs + programs[:3]) + (" and more" if len(programs) > 3 else "")
    return (f"The model folder {folder} was refused: it asks to run its own program code "
            f"({named}), and Video Narrator never runs code from a model folder; choose a model "
            f"that transformers supports without custom code.")


def safetensors_files(folder: Path) -> list[Path]:
    """The folder's safetensors weights; VlmError when it is missing or holds only pickles."""
    if not folder.is_dir():
        raise VlmError(f"No model folder at {folder}. Point the narrator at a folder that holds "
                       f"config.json and *.safetensors files.")
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise VlmError(f"Unsafe pickle checkpoint refused; use safetensors. {folder} holds only "
                       f"{', '.join(pickles)}; convert it or get the safetensors version.")
    raise VlmError(f"No model weights (*.safetensors) in {folder}.")


def read_config(folder: Path, missing: str = "") -> dict[str, Any]:
    """A model folder's config.json as a dict; VlmError in one sentence when it is missing
    (``missing``, if given, is the sentence), unreadable or not a JSON object."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VlmError(missing or f"No config.json in the model folder {folder}.") from None
    except (OSError, ValueError) as exc:
        raise VlmError(f"The model config {folder / 'config.json'} cannot be read: {exc}") from exc
    if not isinstance(config, dict):
        raise VlmError(f"The model config {folder / 'config.json'} is not a JSON object.")
    return config


def stored_dtype(folder: Path) -> str:
    """The dtype config.json says the weights are stored in ("float32" when it does not say)."""
    config = read_config(folder)
    dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    return dtype if dtype in BYTES else "float32"


def tensor_shapes(files: list[Path]) -> list[tuple[str, list[int]]] | None:
    """Name and shape of every tensor, read from the safetensors headers (None if unreadable)."""
    shapes: list[tuple[str, list[int]]] = []
    for path in files:
        try:
            with path.open("rb") as f:
                size = int.from_bytes(f.read(8), "little")
                if not 0 < size < 2**28:
                    return None
                header = json.loads(f.read(size))
            shapes += [(name, [int(n) for n in info["shape"]]) for name, info in header.items()
                       if name != "__metadata__"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
    return shapes


def is_quantized(name: str, shape: list[int]) -> bool:
    """Whether quantization shrinks this tensor: weights of linear layers do; embeddings, the
    output head, norms, biases and convolutions keep the model's dtype."""
    return (len(shape) == 2 and name.endswith(".weight") and "embed" not in name
            and "lm_head" not in name)


def estimate_bytes(folder: Path, dtype: str, quantize: str | None = None) -> int:
    """Memory the model needs once loaded in ``dtype`` (or quantized), with some overhead."""
    files = safetensors_files(folder)
    shapes = tensor_shapes(files) if quantize else None
    if shapes is None:
        on_disk = sum(p.stat().st_size for p in files)
        target = BYTES[quantize] if quantize else BYTES.get(dtype or "", 4)
        return int(on_disk * target / BYTES[stored_dtype(folder)] * OVERHEAD)
    total = 0.0
    for name, shape in shapes:
        count = math.prod(shape)
        total += count * (BYTES[quantize] if quantize and is_quantized(name, shape)
                          else BYTES.get(dtype or "", 4))
    return int(total * OVERHEAD)


def quantization_problem(quantize: str, on_gpu: bool) -> str:
    """Why ``quantize`` ("8bit" or "4bit") cannot run here on a GPU or the CPU ("" when it can)."""
    if quantize == "4bit" and not on_gpu:
        return ("4bit quantization needs a CUDA GPU; on the CPU choose 8bit (it needs "
                "pip install torchao) or turn quantization off.")
    missing = [p for p in QUANTIZERS["cuda" if on_gpu else "cpu"]
               if importlib.util.find_spec(p) is None]
    if not missing:
        return ""
    where = "a GPU" if on_gpu else "the CPU"
    return (f"{quantize} quantization on {where} needs {' and '.join(missing)}: "
            f"pip install {' '.join(missing)} (or turn quantization off).")


def available_memory(device: str) -> int | None:
    """Free bytes on ``device`` ("cpu" or "cuda[:n]"); None when it cannot be told."""
    if device.startswith("cuda"):
        try:
            import torch

            free, _total = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except Exception:  # noqa: BLE001 - no answer is a fine answer here
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_shortage(folder: Path, device: str, dtype: str,
                    quantize: str | None = None) -> tuple[int, int] | None:
    """(needed, free) bytes when the model clearly will not fit in the free memory of
    ``device``; None when it may fit (or the free memory cannot be told)."""
    needed = estimate_bytes(folder, dtype, quantize)
    free = available_memory(device)
    if free is not None and needed > free:
        return needed, free
    return None


def check_fits(folder: Path, device: str, dtype: str, quantize: str | None = None) -> None:
    """VlmError when the model clearly will not fit in the free memory of ``device``."""
    shortage = memory_shortage(folder, device, dtype, quantize)
    if shortage is not None:
        raise VlmError(_shortage_message(folder, device, *shortage))


def _shortage_message(folder: Path, device: str, needed: int, free: int) -> str:
    where = "GPU memory" if device.startswith("cuda") else "RAM"
    return (f"The model in {folder} needs about {needed / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB of {where} is free. Close other programs, choose "
            f"a smaller model, or try 8bit quantization (4bit on a GPU).")


def _size(n: int) -> str:
    """Bytes in words: "3.2 GiB", or "450 MiB" below a gibibyte."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{max(n, 0) / 2**20:.0f} MiB"


def free_unused_memory() -> None:
    """Give back what a failed attempt left behind (its tensors, the CUDA cache)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class Setting:
    """One way to load the model: on which device, in which dtype, quantized or not."""

    device: str
    dtype: str
    quantize: str | None = None

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def label(self) -> str:
        """How the user hears it: "in bfloat16", "in 8-bit"."""
        return f"in {self.quantize[0]}-bit" if self.quantize else f"in {self.dtype}"


@dataclass(frozen=True)
class _PassedOver:
    """A setting the model was not loaded with, and why."""

    setting: Setting
    why: str
    """What follows "on the GPU it ...": "needs about 4.5 GiB in bfloat16 but only ..."."""
    alone: str
    """The whole message when this was the only setting to try."""


def is_out_of_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


class HfVlm(VlmEngine):
    """An image-text-to-text model from a local folder, run with transformers.

    ``device`` is "auto" (CUDA when there is one, else the CPU), "cpu" or "cuda[:n]"; ``dtype``
    "auto" means bfloat16 on CUDA and float32 on the CPU; ``quantize`` is None, "8bit" or "4bit":
    on a GPU with bitsandbytes, on the CPU (8bit only) with torchao's int8 weight-only
    kernels (see :data:`QUANTIZERS`). ``image_splitting``: cut large frames into tiles as the
    model's processor says (None: on a GPU yes, on the CPU one tile, several times faster).
    ``notes`` collects things the user should hear about, such as a fall back to the CPU after
    the GPU ran out of memory.

    Loading on a GPU falls back when the model does not fit there (by the estimate of
    :func:`estimate_bytes` against the free memory, or because loading ran out of memory): to
    8-bit and then 4-bit when bitsandbytes is installed, then to the CPU with the CPU's settings
    (float32, one image tile a frame), and a line in ``notes`` says so. Only a model that does
    not fit in the RAM either is refused, before any weights are read. After loading,
    ``device``, ``dtype`` and ``quantize`` say what is in use: ``device`` becomes "cpu" when the
    model moved there, at load or later when the GPU ran out of memory while describing. ``off``
    is why the engine switched itself off ("" while it works): the GPU ran out of memory and the
    model did not fit in the RAM either; every later question then fails with that reason.
    """

    name = "transformers"

    def __init__(self, model_path: str | Path, device: str = "auto", dtype: str = "auto",
                 quantize: str | None = None, image_splitting: bool | None = None) -> None:
        if quantize not in (None, "8bit", "4bit"):
            raise ValueError(f'quantize must be None, "8bit" or "4bit", not {quantize!r}.')
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, not {dtype!r}.")
        self.path = Path(model_path).expanduser()
        self.device_request = device
        self.dtype_request = dtype
        self.quantize_request = quantize
        self.quantize = quantize
        self.image_splitting = image_splitting
        self.notes: list[str] = []
        self.off = ""
        self.device = ""
        self.dtype = ""
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()
        self._generator: ThreadPoolExecutor | None = None
        self._batch_limit: int | None = None
        self.generate_options: dict[str, Any] = {}
        """Extra keyword arguments for every generate() call, such as
        ``cache_implementation="static"``; the arguments the engine sets itself win."""

    # ----- availability ----------------------------------------------------------------------
    def problem(self) -> str:
        for package in ("torch", "transformers"):
            if importlib.util.find_spec(package) is None:
                return f"The {package} package is not installed. {INSTALL_HINT}"
        if self.quantize_request:
            problem = quantization_problem(self.quantize_request, self._wants_gpu())
            if problem:
                return problem
        try:
            safetensors_files(self.path)
            stored_dtype(self.path)
        except VlmError as exc:
            return str(exc)
        return code_refusal(self.path)

    def _wants_gpu(self) -> bool:
        """Whether the model will run on a CUDA GPU (for "auto" this imports torch to ask)."""
        if self.device_request != "auto":
            return self.device_request.startswith("cuda")
        import torch

        return bool(torch.cuda.is_available())

    # ----- loading ---------------------------------------------------------------------------
    def _pick_device(self, torch: Any) -> tuple[str, str]:
        device = self.device_request
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise VlmError(f"Device {device} was asked for but no CUDA GPU is available; "
                           f'use device "cpu" or "auto".')
        dtype = self.dtype_request
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        return device, dtype

    @staticmethod
    def _cpu_dtype() -> str:
        """The dtype a model that falls back from the GPU gets on the CPU (a dtype asked for
        was the GPU's choice; bfloat16 and float16 run slowly or not at all on many CPUs)."""
        return "float32"

    def _settings(self, device: str, dtype: str) -> list[Setting]:
        """The settings to try, in order: the one asked for and, on a GPU, the fallbacks: the
        smaller quantizations bitsandbytes offers, then the CPU with its own settings (8-bit
        there only when quantization was asked for and torchao is installed)."""
        first = Setting(device, dtype, self.quantize_request)
        if not first.on_gpu:
            return [first]
        settings = [first]
        if not quantization_problem("8bit", on_gpu=True):
            order: list[str | None] = [None, "8bit", "4bit"]
            settings += [Setting(device, dtype, q)
                         for q in order[order.index(first.quantize) + 1:]]
        cpu_quantize = ("8bit" if self.quantize_request
                        and not quantization_problem("8bit", on_gpu=False) else None)
        return [*settings, Setting("cpu", self._cpu_dtype(), cpu_quantize)]

    def load(self) -> None:
        if self._model is not None:
            return
        problem = self.problem()
        if problem:
            raise VlmError(problem)
        # transformers imports torchao when it is installed; torchao then warns about optional
        # GPU kernels it cannot load on this machine, which is noise for the user.
        logging.getLogger("torchao").setLevel(logging.ERROR)
        import torch
        import transformers

        settings = self._settings(*self._pick_device(torch))
        passed: list[_PassedOver] = []
        candidates: list[Setting] = []
        for setting in settings:  # what clearly does not fit is refused before loading
            shortage = memory_shortage(self.path, setting.device, setting.dtype,
                                       setting.quantize)
            if shortage is None:
                candidates.append(setting)
                continue
            needed, free = shortage
            passed.append(_PassedOver(
                setting, f"needs about {_size(needed)} {setting.label} but only {_size(free)} "
                         f"is free", _shortage_message(self.path, setting.device, *shortage)))
            log.info("%s does not fit %s on %s: %s", self.path.name, setting.label,
                     setting.device, passed[-1].why)
        if not candidates:
            raise VlmError(self._too_large(passed))
        try:
            transformers.AutoConfig.from_pretrained(self.path, **SAFE_LOAD)
        except Exception as exc:  # noqa: BLE001 - any failure here means a broken config
            raise VlmError(f"The model config in {self.path} cannot be used: {exc}") from exc
        processor = self._load_processor(transformers)
        model, setting = None, settings[0]
        for setting in candidates:
            if setting is not candidates[0]:
                free_unused_memory()  # what the attempt before left behind
            try:
                model = self._from_pretrained(torch, transformers, setting)
                break
            except Exception as exc:  # noqa: BLE001
                chosen = setting is settings[0] or setting.device == "cpu"
                if not is_out_of_memory(exc) and chosen:
                    raise VlmError(f"The model in {self.path} cannot be loaded: {exc}") from exc
                # out of memory, or a fallback quantization that cannot run here
                why = ("ran out of memory loading it" if is_out_of_memory(exc)
                       else f"could not be loaded ({exc})")
                passed.append(_PassedOver(
                    setting, f"{why} {setting.label}",
                    f"The model in {self.path} does not fit in {setting.device} memory: {exc}"))
                log.warning("%s on %s %s: %s", self.path.name, setting.device, setting.label,
                            exc)
        if model is None:
            free_unused_memory()
            raise VlmError(self._too_large(passed))
        self._model, self._processor = model.eval(), processor
        self._set_tiling(setting.device)
        self.device, self.dtype, self.quantize = setting.device, setting.dtype, setting.quantize
        self.off = ""
        if setting != settings[0]:
            self._note_fallback(settings[0], setting, passed)
        log.info("Loaded %s on %s as %s", self.path, setting.device,
                 setting.quantize or setting.dtype)

    def _from_pretrained(self, torch: Any, transformers: Any, setting: Setting) -> Any:
        """The model's weights loaded with ``setting`` (a seam for tests)."""
        kwargs: dict[str, Any] = dict(SAFE_LOAD, use_safetensors=True,
                                      dtype=getattr(torch, setting.dtype))
        if setting.quantize:
            kwargs.update(self._quantization(transformers, setting))
        elif setting.on_gpu and importlib.util.find_spec("accelerate") is not None:
            kwargs["device_map"] = setting.device  # straight to the GPU, no copy in RAM first
        model = transformers.AutoModelForImageTextToText.from_pretrained(self.path, **kwargs)
        if not setting.quantize and "device_map" not in kwargs:
            model = model.to(setting.device)
        return model

    def _too_large(self, passed: list[_PassedOver]) -> str:
        """Why the model was not loaded when no setting fitted."""
        if len(passed) == 1:
            return passed[0].alone
        gpu = [p for p in passed if p.setting.on_gpu]
        cpu = [p for p in passed if not p.setting.on_gpu]
        if not gpu or not cpu:
            return passed[-1].alone
        return (f"The model {self.path.name} is too large for this computer and was not "
                f"loaded: on the GPU it {gpu[-1].why}, and in the computer's memory (RAM) it "
                f"{cpu[-1].why}. Close other programs or choose a smaller model.")

    def _note_fallback(self, first: Setting, used: Setting, passed: list[_PassedOver]) -> None:
        """The line the user hears when the model is not running as asked."""
        name = self.path.name
        if used.on_gpu:
            note = (f"The GPU had too little memory for {name} {first.label}; it runs on the "
                    f"GPU {used.label}, which can make descriptions a little less accurate.")
        else:
            gpu = [p for p in passed if p.setting.on_gpu]
            if gpu and gpu[-1].why.startswith("could not be loaded"):  # not for lack of memory
                note = (f"{name} could not run on the GPU (the last try {gpu[-1].why}); it runs "
                        f"on the processor (CPU) instead, which is slower.")
            else:
                even = (f" even {gpu[-1].setting.label}"
                        if gpu and gpu[-1].setting != first else "")
                note = (f"The GPU had too little memory for {name}{even}; it runs on the "
                        f"processor (CPU) instead, which is slower.")
        log.warning(note)
        self.notes.append(note)

    def _quantization(self, transformers: Any, setting: Setting) -> dict[str, Any]:
        """from_pretrained() arguments that quantize the model: bitsandbytes on a GPU, torchao
        int8 weight-only on the CPU."""
        if setting.on_gpu:
            import torch

            config = transformers.BitsAndBytesConfig(
                load_in_8bit=setting.quantize == "8bit", load_in_4bit=setting.quantize == "4bit",
                bnb_4bit_compute_dtype=getattr(torch, setting.dtype))
            return {"quantization_config": config, "device_map": setting.device}
        from torchao.quantization import Int8WeightOnlyConfig

        return {"quantization_config": transformers.TorchAoConfig(Int8WeightOnlyConfig())}

    def _set_tiling(self, device: str) -> None:
        """SmolVLM-style processors cut a large frame into many tiles, each costing the vision
        encoder and the language model a full image's work. On the CPU (unless
        ``image_splitting`` asks for it) the frame is shown as one tile: several times faster,
        and enough to describe a scene (on-screen text is read by the OCR stage)."""
        images = getattr(self._processor, "image_processor", None)
        if images is None or not getattr(images, "do_image_splitting", False):
            return
        split = (self.image_splitting if self.image_splitting is not None
                 else device.startswith("cuda"))
        if split:
            return
        tile = getattr(images, "max_image_size", None) or {}
        images.do_image_splitting = False
        if "longest_edge" in tile:
            images.size = {"longest_edge": tile["longest_edge"]}
        log.info("%s: one image tile per frame on %s", self.path.name, device)

    def _load_processor(self, transformers: Any) -> Any:
        try:
            return transformers.AutoProcessor.from_pretrained(self.path, **SAFE_LOAD)
        except Exception as exc:  # noqa: BLE001
            if "torchvision" not in str(exc):
                raise VlmError(f"The processor in {self.path} cannot be loaded: {exc}") from exc
        # transformers 5.x marks some PIL image processors (Idefics3's among them) as needing
        # torchvision; build the processor around the PIL class instead.
        try:
            return _processor_with_pil(self.path, transformers)
        except Exception as exc:  # noqa: BLE001
            raise VlmError(f"The processor in {self.path} needs torchvision: "
                           f"pip install torchvision ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._processor = None
            self.off = ""
            if self._generator is not None:
                self._generator.shutdown()
                self._generator = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    # ----- answering -------------------------------------------------------------------------
    def _chat_text(self, prompt: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": prompt}]}]
        return self._processor.apply_chat_template(messages, add_generation_prompt=True)

    def _on_device(self, inputs: Any) -> Any:
        inputs = inputs.to(self._model.device)
        if "pixel_values" in inputs and self.dtype:
            import torch

            inputs["pixel_values"] = inputs["pixel_values"].to(getattr(torch, self.dtype))
        return inputs

    def _inputs(self, request: VlmRequest) -> Any:
        from PIL import Image

        inputs = self._processor(text=self._chat_text(request.prompt),
                                 images=[Image.fromarray(request.image)], return_tensors="pt")
        return self._on_device(inputs)

    def _batch_inputs(self, requests: Sequence[VlmRequest]) -> Any:
        """One padded batch for several requests, padded on the left so that every row's answer
        starts right after its own prompt."""
        from PIL import Image

        tokenizer = self._processor.tokenizer
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            inputs = self._processor(text=[self._chat_text(r.prompt) for r in requests],
                                     images=[[Image.fromarray(r.image)] for r in requests],
                                     padding=True, return_tensors="pt")
        finally:
            tokenizer.padding_side = side
        return self._on_device(inputs)

    def _generate(self, **kwargs: Any) -> Any:
        """One call of the model's generate(); a seam for tests."""
        return self._model.generate(**{**self.generate_options, **kwargs})

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """Move the model to the CPU, with the CPU's settings (its dtype, one image tile a
        frame), after the GPU ran out of memory; when the RAM cannot hold it either, switch
        the model off (free it, set ``off``) and raise VlmError saying so."""
        import torch

        # The failed generate()'s frames (held by the traceback) keep its tensors on the GPU.
        traceback.clear_frames(exc.__traceback__)
        dtype = self._cpu_dtype()
        shortage = memory_shortage(self.path, "cpu", dtype)
        if shortage is not None:
            needed, free = shortage
            self._switch_off(
                f"The GPU ran out of memory describing a frame, and {self.path.name} cannot "
                f"move to the processor instead: it needs about {_size(needed)} of RAM but only "
                f"{_size(free)} is free. The vision-language model is switched off; close "
                f"other programs and choose it again, or choose a smaller model.")
            raise VlmError(self.off) from exc
        note = (f"The GPU ran out of memory ({exc}); the model now runs on the CPU, "
                f"which is slower.")
        log.warning(note)
        self.notes.append(note)
        self._model = self._model.to("cpu", dtype=getattr(torch, dtype))
        self.device, self.dtype = "cpu", dtype
        self._set_tiling("cpu")  # a GPU's tiles would make every frame several times slower
        self._batch_limit = None  # the limit was the GPU's
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _switch_off(self, why: str) -> None:
        """Free the model (the caller holds the lock) and answer nothing more: ``off`` says why."""
        log.warning(why)
        self.off = why
        self._model = None
        free_unused_memory()

    def _check_on(self) -> None:
        if self.off:
            raise VlmError(self.off)

    def stream(self, request: VlmRequest) -> Iterator[str]:
        self._check_on()
        if self._model is None:
            self.load()
        with self._lock:
            self._check_on()
            for attempt in (1, 2):
                yielded = False
                try:
                    for piece in self._stream_once(request):
                        yielded = True
                        yield piece
                    return
                except Exception as exc:
                    if (attempt == 2 or yielded or not is_out_of_memory(exc)
                            or self.device == "cpu" or self.quantize):
                        if isinstance(exc, VlmError):
                            raise
                        raise VlmError(f"The model failed while describing: {exc}") from exc
                    self._fall_back_to_cpu(exc)

    def describe_batch(self, requests: Sequence[VlmRequest]) -> list[str]:
        """The answers to several requests from batched generate() calls (greedy), equal to what
        :meth:`describe` gives for each alone.

        When the GPU runs out of memory the batch is split in halves and each half retried, down
        to one request, and later batches keep to the size that fitted; only a single request
        that still does not fit moves the model to the CPU, as :meth:`stream` does. ``notes``
        says when either happened.
        """
        rest = list(requests)
        if not rest:
            return []
        self._check_on()
        if self._model is None:
            self.load()
        answers: list[str] = []
        with self._lock:
            self._check_on()
            while rest:
                size = self._batch_limit or len(rest)
                answers += self._answer_batch(rest[:size])
                rest = rest[size:]
        return answers

    def _answer_batch(self, requests: list[VlmRequest]) -> list[str]:
        try:
            return self._generate_batch(requests)
        except Exception as exc:
            if not is_out_of_memory(exc):
                _raise_vlm_error(exc)
            if len(requests) > 1:
                return self._split_batch(requests, exc)
            if self.device == "cpu" or self.quantize:
                _raise_vlm_error(exc)
            self._fall_back_to_cpu(exc)
        try:
            return self._generate_batch(requests)
        except Exception as exc:
            _raise_vlm_error(exc)

    def _split_batch(self, requests: list[VlmRequest], exc: BaseException) -> list[str]:
        half = (len(requests) + 1) // 2
        if self._batch_limit is None or half < self._batch_limit:
            where = "GPU" if self.device.startswith("cuda") else "computer"
            note = (f"The {where} ran out of memory describing {len(requests)} frames at once "
                    f"({exc}); frames are now described {half} at a time.")
            log.warning(note)
            self.notes.append(note)
            self._batch_limit = half
        return self._answer_batch(requests[:half]) + self._answer_batch(requests[half:])

    def _generate_batch(self, requests: list[VlmRequest]) -> list[str]:
        import torch

        inputs = self._batch_inputs(requests)
        with torch.inference_mode():
            out = self._generate(**inputs, do_sample=False,
                                 max_new_tokens=max(r.max_new_tokens for r in requests))
        new = out[:, inputs["input_ids"].shape[1]:]
        rows = [row[:r.max_new_tokens] for row, r in zip(new, requests, strict=True)]
        texts = self._processor.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [clean(text, max_words=r.max_words)
                for text, r in zip(texts, requests, strict=True)]

    def _generation_thread(self) -> ThreadPoolExecutor:
        """The one thread stream() generates on. It lives as long as the model, because CUDA
        graphs recorded for a compiled forward (a static cache) belong to the thread that
        recorded them; a new thread each time would record them again."""
        if self._generator is None:
            self._generator = ThreadPoolExecutor(1, thread_name_prefix="vlm-generate")
        return self._generator

    def _stream_once(self, request: VlmRequest) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        inputs = self._inputs(request)
        streamer = TextIteratorStreamer(self._processor.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._generate(**inputs, streamer=streamer, do_sample=False,
                                   max_new_tokens=request.max_new_tokens,
                                   stopping_criteria=StoppingCriteriaList([_Stop()]))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                failure.append(exc)
                streamer.end()

        done = self._generation_thread().submit(run)
        try:
            for piece in streamer:
                if failure:
                    break
                if piece:
                    yield piece
        finally:
            stop.set()
            done.result()
        if failure:
            raise failure[0]


def _raise_vlm_error(exc: BaseException) -> NoReturn:
    """Raise ``exc`` as the VlmError a caller expects."""
    if isinstance(exc, VlmError):
        raise exc
    raise VlmError(f"The model failed while describing: {exc}") from exc


def _processor_with_pil(folder: Path, transformers: Any) -> Any:
    """The model's processor with its PIL image processor, built from the saved configs."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model_type = config["model_type"]
    settings: dict[str, Any] = {}
    if (folder / "processor_config.json").exists():
        settings = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
    image_settings = dict(settings.pop("image_processor", {}))
    if not image_settings and (folder / "preprocessor_config.json").exists():
        image_settings = json.loads((folder / "preprocessor_config.json").read_text("utf-8"))
    image_type = image_settings.pop("image_processor_type").removesuffix("Fast")
    processor_name = settings.pop("processor_class", None) or image_settings.pop(
        "processor_class")
    image_settings.pop("processor_class", None)
    module = importlib.import_module(
        f"transformers.models.{model_type}.image_processing_pil_{model_type}")
    image_processor = getattr(module, image_type + "Pil")(**image_settings)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **SAFE_LOAD)
    template = folder / "chat_template.jinja"
    chat_template = template.read_text(encoding="utf-8") if template.exists() else None
    if chat_template is None and (folder / "chat_template.json").exists():
        chat_template = json.loads((folder / "chat_template.json").read_text("utf-8"))[
            "chat_template"]
    settings.pop("chat_template", None)
    return getattr(transformers, processor_name)(image_processor, tokenizer,
                                                 chat_template=chat_template, **settings)
