"""A GGUF vision-language model run with llama.cpp (through llama-cpp-python).

A vision model in GGUF form is two files: the language model (``SmolVLM-256M-Instruct-Q8_0.gguf``)
and its multimodal projector, the image encoder (``mmproj-SmolVLM-256M-Instruct-Q8_0.gguf``).
Put both in one folder and point the narrator at the language model; the projector is found
beside it (any ``*mmproj*.gguf``), or can be named with ``mmproj_path``.

Installing
----------
``pip install 'video-narrator[llama]'`` builds llama-cpp-python from source for the CPU (about
eight minutes on two cores). For an NVIDIA GPU build it with CUDA instead (needs the CUDA
toolkit, ``nvcc``, on the PATH)::

    CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python

When the installed build can offload to a GPU, every layer goes there (``n_gpu_layers=-1``);
otherwise the model runs on the CPU. Build the wheel once (``pip wheel -w DIR llama-cpp-python``)
to make later installs instant.

Memory: on the CPU the model and projector files together must fit in 80% of the free RAM
(MemAvailable in /proc/meminfo), or loading is refused before llama.cpp starts. On a GPU the
layers asked for are tried first, then half of them (the rest on the CPU), then none: an attempt
is skipped when the free GPU memory (:func:`gpu_free_memory`) clearly cannot hold it, and moved
on from when llama.cpp cannot load it; ``notes`` says where the model ended up. Only a model
that does not fit in the RAM either is refused.

Which chat handler
------------------
The handler is picked from the GGUF metadata (``general.architecture`` of the model and
``clip.projector_type`` of the projector): Qwen2.5-VL uses ``Qwen25VLChatHandler``, Moondream
``MoondreamChatHandler``, Gemma 4 ``Gemma4ChatHandler``; SmolVLM / Idefics3, Gemma 3 and any other
model that carries its own chat template use the generic ``MTMDChatHandler``; a model with no
chat template falls back to the LLaVA 1.5 prompt format.
"""

from __future__ import annotations

import base64
import gc
import importlib.util
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.catalog import find_projector
from models.vlm.base import VlmEngine, VlmError, VlmRequest
from models.vlm.gguf import GgufInfo, read_gguf

log = logging.getLogger(__name__)

INSTALL_HINT = "Install it with: pip install 'video-narrator[llama]'."
RAM_SHARE = 0.8
"""The model and projector files together may use at most this share of the free RAM."""
def available_ram() -> int | None:
    """MemAvailable from /proc/meminfo in bytes; None when it cannot be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


GPU_OVERHEAD = 1.2
"""The context's cache and the compute buffers, as a share of the weights put on the GPU."""


def gpu_free_memory() -> int | None:
    """Free bytes of GPU memory on all visible NVIDIA GPUs together; None when it cannot be told.

    Asked of torch when something already imported it (importing it only for this would cost
    seconds and memory), else of nvidia-smi.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return sum(int(torch.cuda.mem_get_info(i)[0])
                           for i in range(torch.cuda.device_count()))
        except Exception:  # noqa: BLE001 - no answer is a fine answer here
            pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return sum(int(line) for line in out.split()) * 2**20 or None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def gpu_bytes(files: list[Path], layers: int, total: int | None) -> int:
    """GPU memory ``layers`` of the model's ``total`` layers (-1: all) and the projector need:
    ``files`` are the model and then the projector."""
    model, projector = (p.stat().st_size for p in files)
    share = 1.0 if layers < 0 or not total or layers >= total else layers / total
    return int((model * share + projector) * GPU_OVERHEAD)


def layer_plan(asked: int, total: int | None) -> list[int]:
    """The GPU layer counts to try in order: ``asked`` (-1: all), half of them, then 0 (the
    CPU). ``total`` is the model's layer count as llama.cpp counts them (None if unknown)."""
    if asked == 0:
        return [0]
    top = total if total and (asked < 0 or asked > total) else asked
    plan = [asked]
    if top > 1:
        plan.append(top // 2)
    return [*plan, 0]


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{max(n, 0) / 2**20:.0f} MiB"


def check_fits(files: list[Path], free: int | None, share: float = RAM_SHARE) -> None:
    """VlmError when the files together are larger than ``share`` of ``free`` bytes of RAM."""
    if free is None:
        return
    needed = sum(p.stat().st_size for p in files)
    if needed > free * share:
        names = " and ".join(p.name for p in files)
        raise VlmError(f"The model is too large for this computer's memory: {names} take "
                       f"{needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB of RAM is "
                       f"free (at most {share:.0%} of it may be used). Close other programs or "
                       f"choose a smaller or more strongly quantized model.")


_MTMD_LOG: Any = None
"""The callback given to libmtmd (kept alive here as long as the library may call it)."""
_MTMD_LOG_LOCK = threading.Lock()


def quiet_mtmd_log() -> bool:
    """Send libmtmd's log (a dozen lines on stderr for every frame: tiles, encode times) to
    Python's logging instead, warnings and errors at their level and the rest at debug, so a
    terminal (and the screen reader reading it) hears only the narration. False when this
    llama-cpp-python has no libmtmd."""
    with _MTMD_LOG_LOCK:  # two models loading at once must not replace a callback in use
        return _quiet_mtmd_log()


def _quiet_mtmd_log() -> bool:
    global _MTMD_LOG
    if _MTMD_LOG is not None:
        return True
    try:
        import ctypes  # noqa: PLC0415

        import llama_cpp  # noqa: PLC0415
        from llama_cpp import mtmd_cpp  # noqa: PLC0415

        lib = mtmd_cpp._libmtmd
        set_log = getattr(lib, "mtmd_helper_log_set", None) or lib.mtmd_log_set  # helper: both
    except (ImportError, AttributeError, OSError):
        return False
    mtmd_log = logging.getLogger("llama.cpp.mtmd")
    # ggml's levels: 1 debug, 2 info, 3 warning, 4 error, 5 continues the line before.
    levels = {3: logging.WARNING, 4: logging.ERROR}
    last = [logging.DEBUG]

    def forward(level: int, text: bytes | None, _user: Any) -> None:
        at = last[0] if level == 5 else levels.get(level, logging.DEBUG)
        last[0] = at
        if text and text.strip():
            mtmd_log.log(at, "%s", text.decode("utf-8", "replace").rstrip())

    _MTMD_LOG = llama_cpp.llama_log_callback(forward)
    set_log.argtypes = [llama_cpp.llama_log_callback, ctypes.c_void_p]
    set_log.restype = None
    set_log(_MTMD_LOG, None)
    return True


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ----- images ------------------------------------------------------------------------------------
def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image as a PNG file (no compression filter; zlib level 1)."""
    height, width, _ = image.shape
    rows = np.empty((height, 1 + width * 3), np.uint8)
    rows[:, 0] = 0  # filter type "none" for every row
    rows[:, 1:] = np.ascontiguousarray(image).reshape(height, width * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))


def data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


# ----- choosing the chat handler -----------------------------------------------------------------
def handler_name(model: GgufInfo, projector: GgufInfo) -> str:
    """The llama_cpp.llama_chat_format class that fits this model and projector."""
    arch = model.architecture.lower()
    kind = str(projector.metadata.get("clip.projector_type", "")).lower()
    name = " ".join(str(model.metadata.get(k, "")) for k in ("general.name", "general.basename"))
    if arch in ("qwen2vl", "qwen25vl") or kind.startswith(("qwen2.5vl", "qwen25vl")):
        return "Qwen25VLChatHandler"
    if "moondream" in name.lower() or "moondream" in kind:
        return "MoondreamChatHandler"
    if arch.startswith("gemma4"):
        return "Gemma4ChatHandler"
    if model.metadata.get("tokenizer.chat_template"):
        # SmolVLM / Idefics3, Gemma 3 and the rest: the model's own template, mtmd's markers.
        return "MTMDChatHandler"
    return "Llava15ChatHandler"


# ----- the engine --------------------------------------------------------------------------------
class LlamaVlm(VlmEngine):
    """A GGUF vision-language model and its projector, run with llama.cpp.

    ``n_gpu_layers`` None means every layer on the GPU when this llama-cpp-python build can
    offload (a CUDA build), else 0 (the CPU). ``n_threads`` None means every CPU this process
    may use (llama-cpp-python's own default is half of them, which on a two-core machine made
    the image encoder twice as slow). ``image_splitting`` None means: on a GPU, frames are cut
    into tiles as the model ships; on the CPU a SmolVLM-family model sees each frame as one tile
    (see :mod:`models.vlm.projector`), several times faster. ``notes`` collects what the user
    should hear about (a one-tile copy that could not be written, a model that did not fit on
    the GPU). After loading, ``n_gpu_layers`` is the number of layers on the GPU (-1: all, 0:
    the model runs on the CPU).
    """

    name = "llama.cpp"

    def __init__(self, model_path: str | Path, mmproj_path: str | Path | None = None,
                 n_ctx: int = 2048, n_threads: int | None = None,
                 n_gpu_layers: int | None = None, image_splitting: bool | None = None) -> None:
        self.path = Path(model_path).expanduser()
        self.mmproj_request = Path(mmproj_path).expanduser() if mmproj_path else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_gpu_layers_request = n_gpu_layers
        self.n_gpu_layers = 0
        self.image_splitting = image_splitting
        self.projector: Path | None = None  # the projector file in use
        self.notes: list[str] = []
        self.handler = ""
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def mmproj_path(self) -> Path | None:
        return self.mmproj_request or find_projector(self.path)

    # ----- availability ----------------------------------------------------------------------
    def problem(self) -> str:
        if importlib.util.find_spec("llama_cpp") is None:
            return f"The llama-cpp-python package is not installed. {INSTALL_HINT}"
        if not self.path.is_file():
            return f"No model file at {self.path}. Point the narrator at a .gguf model file."
        mmproj = self.mmproj_path
        if mmproj is None:
            return (f"{self.path.name} has no multimodal projector (mmproj) file beside it; "
                    f"vision needs one. Put the model's mmproj-*.gguf file in {self.path.parent}.")
        if not mmproj.is_file():
            return f"No projector file at {mmproj}."
        return ""

    # ----- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if self._llm is not None:
            return
        problem = self.problem()
        if problem:
            raise VlmError(problem)
        mmproj = self.mmproj_path
        assert mmproj is not None
        model_info, projector_info = read_gguf(self.path), read_gguf(mmproj)
        if projector_info.architecture != "clip":
            raise VlmError(f"{mmproj.name} is not a multimodal projector (its architecture is "
                           f"{projector_info.architecture or 'missing'}, not clip).")
        if model_info.architecture == "clip":
            raise VlmError(f"{self.path.name} is a projector, not a language model; point the "
                           f"narrator at the language model beside it.")
        import llama_cpp
        from llama_cpp import llama_chat_format

        quiet_mtmd_log()

        asked = self.n_gpu_layers_request
        if asked is None:
            asked = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        blocks = model_info.metadata.get(f"{model_info.architecture}.block_count")
        total = blocks + 1 if isinstance(blocks, int) and blocks > 0 else None  # + output layer
        plan = layer_plan(asked, total)
        files = [self.path, mmproj]
        name = handler_name(model_info, projector_info)
        handler_class = getattr(llama_chat_format, name, None) or llama_chat_format.MTMDChatHandler
        free = gpu_free_memory() if plan != [0] else None
        passed: list[tuple[int, str]] = []  # GPU layer counts not used, and why
        for layers in plan:
            if layers == 0:  # on the CPU the weights live in RAM
                self._check_ram(files, passed)
            else:
                needed = gpu_bytes(files, layers, total)
                if free is not None and needed > free:
                    passed.append((layers, f"needs about {_size(needed)} with "
                                           f"{self._layers(layers, total)} there but only "
                                           f"{_size(free)} is free"))
                    log.info("%s: %s", self.path.name, passed[-1][1])
                    continue
            if passed:
                gc.collect()  # what the attempt before left behind
            try:
                llm, projector = self._open(llama_cpp, llama_chat_format, handler_class,
                                            mmproj, layers)
            except (ValueError, RuntimeError, OSError) as exc:
                if layers == 0:
                    raise VlmError(f"llama.cpp cannot load {self.path.name} with {mmproj.name}: "
                                   f"{exc}. The file may be corrupt, or too new for this "
                                   f"llama-cpp-python; try updating it.") from exc
                passed.append((layers, f"could not be loaded with {self._layers(layers, total)} "
                                       f"there ({exc})"))
                log.warning("%s: %s", self.path.name, passed[-1][1])
                continue
            break
        self._llm, self.handler, self.n_gpu_layers = llm, name, layers
        self.projector = projector
        if layers != plan[0]:
            self._note_fallback(layers, total)
        log.info("Loaded %s with %s (%s, %d GPU layers)", self.path, projector, name, layers)

    @staticmethod
    def _layers(layers: int, total: int | None) -> str:
        if layers < 0 or (total and layers >= total):
            return "all its layers"
        return f"{layers} of its {total} layers" if total else f"{layers} layers"

    def _check_ram(self, files: list[Path], passed: list[tuple[int, str]]) -> None:
        """Refuse, before llama.cpp starts, a model the RAM cannot hold (and, when GPU
        attempts came first, say that the GPU could not either)."""
        try:
            check_fits(files, available_ram())
        except VlmError as exc:
            if not passed:
                raise
            raise VlmError(f"{exc} The GPU cannot hold it either: it {passed[-1][1]}.") from None

    def _open(self, llama_cpp: Any, llama_chat_format: Any, handler_class: Any, mmproj: Path,
              layers: int) -> tuple[Any, Path]:
        """llama.cpp's model with ``layers`` on the GPU and its projector, loaded now; the
        model is closed again when any part fails."""
        projector = self._projector_for(mmproj, layers)
        llm = None
        try:
            if issubclass(handler_class, llama_chat_format.MTMDChatHandler):
                handler = handler_class(clip_model_path=str(projector), verbose=False,
                                        use_gpu=layers != 0)
            else:
                handler = handler_class(clip_model_path=str(projector), verbose=False)
            threads = self.n_threads or cpu_count()
            llm = llama_cpp.Llama(model_path=str(self.path), chat_handler=handler,
                                  n_ctx=self.n_ctx, n_threads=threads, n_threads_batch=threads,
                                  n_gpu_layers=layers, verbose=False)
            init = getattr(handler, "_init_mtmd_context", None)
            if init is not None:  # load the projector now, not on the first question
                init(llm)
        except BaseException:
            if llm is not None:
                llm.close()
            raise
        return llm, projector

    def _note_fallback(self, layers: int, total: int | None) -> None:
        """The line the user hears when the model did not fit on the GPU as asked."""
        if layers == 0:
            note = (f"The GPU had too little memory for {self.path.name}; it runs on the "
                    f"processor (CPU) instead, which is slower.")
        else:
            note = (f"The GPU had too little memory for all of {self.path.name}; "
                    f"{self._layers(layers, total)} run on the GPU and the rest on the "
                    f"processor (CPU), which is slower.")
        log.warning(note)
        self.notes.append(note)

    def _projector_for(self, mmproj: Path, gpu_layers: int) -> Path:
        """The projector file to load: a one-tile copy on the CPU (unless ``image_splitting``
        says otherwise), the file itself when tiles are wanted or the copy cannot be made."""
        split = self.image_splitting if self.image_splitting is not None else gpu_layers != 0
        if split:
            return mmproj
        from models.vlm.projector import one_tile_projector  # noqa: PLC0415

        try:
            return one_tile_projector(mmproj)
        except OSError as exc:
            self.notes.append(f"Frames are cut into tiles, which is slower on this computer: a "
                              f"one-tile copy of {mmproj.name} could not be written "
                              f"({exc.strerror or exc}).")
            return mmproj

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    # ----- answering -------------------------------------------------------------------------
    def stream(self, request: VlmRequest) -> Iterator[str]:
        if self._llm is None:
            self.load()
        messages = [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_uri(request.image)}},
            {"type": "text", "text": request.prompt}]}]
        with self._lock:
            llm = self._llm
            if llm is None:
                raise VlmError("The llama.cpp model was closed while a description was asked for.")
            try:
                chunks = llm.create_chat_completion(messages=messages, stream=True,
                                                    max_tokens=request.max_new_tokens,
                                                    temperature=0.0)
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise VlmError(f"llama.cpp failed to describe the frame with "
                               f"{self.path.name}: {exc}") from exc
