"""A model too large for the GPU falls back (smaller settings, then the CPU) and says so; one too
large for the RAM as well is refused before loading; a GPU that runs out of memory while
describing moves the model to the CPU with the CPU's settings, or switches it off when the RAM
cannot hold it.

There is no GPU here: only what cannot exist without one is stood in for (torch.cuda's
is_available and mem_get_info, a from_pretrained that runs out of memory on its "cuda" attempt,
a llama_cpp.Llama that cannot load with GPU layers). Everything else runs for real on the CPU,
with the tiny random-weight models of tests/tiny_vlm.py and scripts/tiny_gguf.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models.vlm import VlmError, VlmRequest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from models.vlm import hf  # noqa: E402 - after the skips: it needs torch to load a model

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30
FRAME = np.zeros((180, 320, 3), np.uint8)  # wide: a GPU's processor cuts it into many tiles
FRAME[:, :160] = (200, 40, 40)


def request(words: int = 6) -> VlmRequest:
    return VlmRequest(FRAME, "Describe the picture.", max_new_tokens=words)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_vlm import build_tiny_vlm

    # splitting=True: the processor tiles large frames, as the published SmolVLM ones do
    return build_tiny_vlm(tmp_path_factory.mktemp("fallback") / "tiny-smolvlm", splitting=True)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class Gpu:
    """A stand-in CUDA GPU with ``free`` bytes of free memory: torch.cuda answers as if it were
    there. Nothing can really be put on it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, free: int | None = 80 * GIB) -> None:
        self.free = free
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "mem_get_info", self.mem_get_info)

    def mem_get_info(self, device: object = None) -> tuple[int, int]:
        if self.free is None:
            raise RuntimeError("no answer")
        return self.free, 80 * GIB


class Loads:
    """transformers' from_pretrained, recording each attempt as (device, quantization). An
    attempt on "cuda" runs out of memory, as it would on a full GPU; ``fits`` lists the
    quantizations a GPU attempt succeeds with instead (the model then stays in RAM, standing in
    for the GPU's copy). Attempts on the CPU load for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fits: tuple[str | None, ...] = ()) -> None:
        self.real = transformers.AutoModelForImageTextToText.from_pretrained
        self.fits = fits
        self.attempts: list[tuple[str, str | None]] = []
        monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained",
                            self.from_pretrained)

    def from_pretrained(self, path: object, **kwargs: object) -> object:
        config = kwargs.get("quantization_config")
        quantize = None
        if config is not None and getattr(config, "load_in_8bit", False):
            quantize = "8bit"
        elif config is not None and getattr(config, "load_in_4bit", False):
            quantize = "4bit"
        device = str(kwargs.get("device_map") or "cpu")
        self.attempts.append((device, quantize))
        if device.startswith("cuda"):
            if quantize not in self.fits:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
            kwargs = {k: v for k, v in kwargs.items()
                      if k not in ("quantization_config", "device_map")}
        return self.real(path, **kwargs)


def ram(monkeypatch: pytest.MonkeyPatch, free: int) -> list[str]:
    """The RAM has only ``free`` bytes free (the GPU's answer is left to torch.cuda); returns
    the devices asked about."""
    asked: list[str] = []
    real = hf.available_memory

    def available(device: str) -> int | None:
        asked.append(device)
        return free if device == "cpu" else real(device)

    monkeypatch.setattr(hf, "available_memory", available)
    return asked


def tiles(engine: hf.HfVlm) -> int:
    return int(engine._inputs(request())["pixel_values"].shape[1])


# ----- transformers: loading -------------------------------------------------------------------
def test_gpu_out_of_memory_at_load_tries_8bit_then_4bit_then_the_cpu(tiny_model,
                                                                      monkeypatch) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed: pip install bitsandbytes accelerate")
    Gpu(monkeypatch)  # plenty free: every attempt is made, and each runs out of memory
    loads = Loads(monkeypatch)
    engine = hf.HfVlm(tiny_model)  # device "auto": the GPU
    engine.load()
    try:
        assert loads.attempts == [("cuda", None), ("cuda", "8bit"), ("cuda", "4bit"),
                                  ("cpu", None)]
        assert (engine.device, engine.dtype, engine.quantize) == ("cpu", "float32", None)
        assert engine.notes == [
            "The GPU had too little memory for tiny-smolvlm even in 4-bit; it runs on the "
            "processor (CPU) instead, which is slower."]
        assert tiles(engine) == 1  # the CPU's setting: one tile a frame, not the GPU's grid
        assert isinstance(engine.describe(request()), str)  # and it answers
    finally:
        engine.close()


def test_without_bitsandbytes_a_full_gpu_goes_straight_to_the_cpu(tiny_model,
                                                                  monkeypatch) -> None:
    find_spec = importlib.util.find_spec

    def without_bitsandbytes(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "bitsandbytes" else find_spec(name, *args, **kwargs)

    monkeypatch.setattr(hf.importlib.util, "find_spec", without_bitsandbytes)
    Gpu(monkeypatch)
    loads = Loads(monkeypatch)
    engine = hf.HfVlm(tiny_model, device="cuda")
    engine.load()
    try:
        assert loads.attempts == [("cuda", None), ("cpu", None)]
        assert engine.device == "cpu" and tiles(engine) == 1
        assert engine.notes == [
            "The GPU had too little memory for tiny-smolvlm; it runs on the processor (CPU) "
            "instead, which is slower."]
    finally:
        engine.close()


class BrokenQuantization(Loads):
    """As Loads, but bitsandbytes cannot run on this GPU: quantized attempts fail for that
    reason, not for lack of memory."""

    def from_pretrained(self, path: object, **kwargs: object) -> object:
        if kwargs.get("quantization_config") is not None:
            self.attempts.append((str(kwargs.get("device_map")), "quantized"))
            raise RuntimeError("bitsandbytes was compiled without GPU support")
        return super().from_pretrained(path, **kwargs)


def test_a_note_does_not_blame_memory_for_a_quantization_that_cannot_run(tiny_model,
                                                                         monkeypatch) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed: pip install bitsandbytes accelerate")
    Gpu(monkeypatch)
    BrokenQuantization(monkeypatch)
    engine = hf.HfVlm(tiny_model, device="cuda")
    engine.load()
    try:
        assert engine.device == "cpu"
        assert engine.notes[-1].startswith("tiny-smolvlm could not run on the GPU (the last try "
                                           "could not be loaded (bitsandbytes was compiled")
        assert "too little memory" not in engine.notes[-1]
    finally:
        engine.close()


def test_a_gpu_too_small_for_bfloat16_is_not_tried_and_8bit_is_used(tiny_model,
                                                                   monkeypatch) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed: pip install bitsandbytes accelerate")
    bf16 = hf.estimate_bytes(tiny_model, "bfloat16")
    q8 = hf.estimate_bytes(tiny_model, "bfloat16", "8bit")
    assert q8 < bf16
    Gpu(monkeypatch, free=(q8 + bf16) // 2)
    loads = Loads(monkeypatch, fits=("8bit",))
    engine = hf.HfVlm(tiny_model)
    engine.load()
    try:
        assert loads.attempts == [("cuda", "8bit")]  # bfloat16 was refused by the estimate
        assert (engine.device, engine.quantize) == ("cuda", "8bit")
        assert engine.notes == [
            "The GPU had too little memory for tiny-smolvlm in bfloat16; it runs on the GPU in "
            "8-bit, which can make descriptions a little less accurate."]
        assert tiles(engine) > 2  # on the GPU the frame keeps its tiles
    finally:
        engine.close()


def test_too_large_for_the_gpu_and_the_ram_is_refused_before_loading(tiny_model,
                                                                    monkeypatch) -> None:
    Gpu(monkeypatch, free=1000)
    ram(monkeypatch, free=1000)
    loads = Loads(monkeypatch)
    engine = hf.HfVlm(tiny_model)
    with pytest.raises(VlmError) as refused:
        engine.load()
    assert loads.attempts == []  # nothing was read
    assert engine._model is None and engine.notes == []
    message = str(refused.value)
    assert message.startswith("The model tiny-smolvlm is too large for this computer and was "
                              "not loaded: on the GPU it needs about ")
    assert "in the computer's memory (RAM) it needs about" in message and "in float32" in message
    assert "but only 0 MiB is free" in message
    assert message.endswith("Close other programs or choose a smaller model.")
    if importlib.util.find_spec("bitsandbytes") is not None:
        assert "in 4-bit" in message  # even the smallest setting did not fit


def test_out_of_memory_on_the_gpu_and_too_little_ram_is_refused(tiny_model, monkeypatch) -> None:
    """The estimate said the GPU might hold it, loading said no; the RAM cannot either."""
    Gpu(monkeypatch)
    ram(monkeypatch, free=1000)
    loads = Loads(monkeypatch)
    with pytest.raises(VlmError, match="on the GPU it ran out of memory loading it in .*RAM"):
        hf.HfVlm(tiny_model).load()
    assert ("cpu", None) not in loads.attempts


# ----- transformers: out of memory while describing ----------------------------------------------
def on_a_full_gpu(engine: hf.HfVlm, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``engine`` (loaded on the CPU with the GPU's settings: bfloat16, tiles) as if it ran on a
    GPU that runs out of memory for every frame; returns the devices generate() ran on."""
    engine._model = engine._model.to(torch.bfloat16)
    engine.dtype, engine.device, engine.image_splitting = "bfloat16", "cuda:0", None
    ran: list[str] = []
    real = engine._generate

    def generate(**kwargs: object) -> object:
        ran.append(engine.device)
        if engine.device != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB.")
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", generate)
    return ran


@pytest.fixture
def gpu_engine(tiny_model):
    engine = hf.HfVlm(tiny_model, device="cpu", image_splitting=True)  # tiles, as on a GPU
    engine.load()
    yield engine
    engine.close()


def test_after_out_of_memory_the_cpu_gets_its_own_settings(gpu_engine, monkeypatch) -> None:
    asked = ram(monkeypatch, free=64 * GIB)
    ran = on_a_full_gpu(gpu_engine, monkeypatch)
    assert tiles(gpu_engine) > 2
    answer = gpu_engine.describe(request())
    assert isinstance(answer, str)
    assert ran == ["cuda:0", "cpu"]
    assert "cpu" in asked  # the RAM was checked before the move
    assert (gpu_engine.device, gpu_engine.dtype) == ("cpu", "float32")
    assert gpu_engine._model.dtype == torch.float32
    assert tiles(gpu_engine) == 1  # the GPU's tiling would be several times slower here
    assert "now runs on the CPU" in gpu_engine.notes[-1]


def test_after_out_of_memory_too_little_ram_switches_the_model_off(gpu_engine,
                                                                   monkeypatch) -> None:
    ram(monkeypatch, free=1000)
    ran = on_a_full_gpu(gpu_engine, monkeypatch)
    with pytest.raises(VlmError) as off:
        gpu_engine.describe(request())
    message = str(off.value)
    assert message.startswith("The GPU ran out of memory describing a frame, and tiny-smolvlm "
                              "cannot move to the processor instead: it needs about ")
    assert "of RAM but only 0 MiB is free. The vision-language model is switched off" in message
    assert gpu_engine.off == message and gpu_engine._model is None  # the GPU's memory is freed
    assert ran == ["cuda:0"]
    monkeypatch.setattr(gpu_engine, "load", lambda: pytest.fail("must not load again"))
    for ask in (lambda: gpu_engine.describe(request()),
                lambda: gpu_engine.describe_batch([request(), request()])):
        with pytest.raises(VlmError, match="switched off"):
            ask()
    assert ran == ["cuda:0"]  # nothing more was tried
    gpu_engine.close()  # closed and chosen again, it may load afresh
    assert gpu_engine.off == ""


def test_the_worker_switches_off_a_model_that_no_longer_fits(gpu_engine, monkeypatch) -> None:
    from models.pipeline.worker import (
        MAX_FAILURES_IN_A_ROW,
        NO_FRAME,
        VLM,
        AnalysisWorker,
        Priority,
        Request,
    )
    from tests.support import wait_until

    ram(monkeypatch, free=1000)
    on_a_full_gpu(gpu_engine, monkeypatch)
    results, switched_off, reasons = [], [], []
    with AnalysisWorker([], on_result=results.append, vlm_batch=1,
                        on_vlm_off=lambda engine, why: (switched_off.append(engine),
                                                        reasons.append(why))) as worker:
        worker.attach_vlm(gpu_engine)
        wait_until(lambda: worker.has_vlm)
        for i in range(MAX_FAILURES_IN_A_ROW):
            worker.submit(Request(Priority.GAP, float(i), NO_FRAME, kind=VLM, vlm=request()))
        assert worker.wait_idle(60)
    assert switched_off == [gpu_engine]
    # Switched off at its first failure, and the user hears why once (from the player's
    # "the model is off"), not with each failure nor also as a note.
    assert len(reasons) == 1 and "cannot move to the processor" in reasons[0]
    assert reasons[0].endswith("choose a smaller model.")  # whole: the player says it as is
    notes = [note for result in results for note in result.notes]
    assert not any("cannot move to the processor" in note for note in notes), notes


# ----- llama.cpp -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    spec = importlib.util.spec_from_file_location("tiny_gguf", ROOT / "scripts" / "tiny_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # a projector that tiles frames (4 tiles wide), as the published SmolVLM ones do
    return module.build_tiny_gguf(tmp_path_factory.mktemp("gguf"), preproc=4 * 64)


class LlamaOnAFullGpu:
    """llama_cpp.Llama as on a GPU build whose GPU cannot hold ``refused`` layer counts: such
    an attempt fails as llama.cpp's does (ValueError); the others load for real on the CPU."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, refused=lambda layers: layers != 0):
        import llama_cpp

        self.real = llama_cpp.Llama
        self.refused = refused
        self.layers: list[int] = []
        monkeypatch.setattr(llama_cpp, "Llama", self.make)
        monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)

    def make(self, *args: object, **kwargs: object) -> object:
        self.layers.append(int(kwargs["n_gpu_layers"]))
        if self.refused(kwargs["n_gpu_layers"]):
            raise ValueError(f"Failed to load model from file: {kwargs['model_path']}")
        return self.real(*args, **kwargs)


@pytest.fixture
def lv(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the one-tile copies
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: "
                                            "pip install 'video-narrator[llama]'")
    from models.vlm import llama

    return llama


def test_llama_tries_all_layers_then_half_then_the_cpu(lv, tiny_gguf, monkeypatch) -> None:
    model, mmproj = tiny_gguf
    Gpu(monkeypatch, free=None)  # how much is free cannot be told: every attempt is made
    monkeypatch.setattr(lv.shutil, "which", lambda name: None)  # nor by nvidia-smi
    assert lv.gpu_free_memory() is None
    llama = LlamaOnAFullGpu(monkeypatch)
    engine = lv.LlamaVlm(model, n_ctx=512)  # n_gpu_layers None: all, on a GPU build
    engine.load()
    try:
        assert llama.layers == [-1, 1, 0]  # the tiny model's 2 blocks and output layer: 3
        assert engine.n_gpu_layers == 0
        assert engine.notes == [
            "The GPU had too little memory for tiny-smolvlm.gguf; it runs on the processor "
            "(CPU) instead, which is slower."]
        assert engine.projector != mmproj  # the CPU's setting: a one-tile copy of the projector
        assert engine.describe(VlmRequest(FRAME, "Describe.", max_new_tokens=4)) is not None
    finally:
        engine.close()


def test_llama_skips_what_the_free_gpu_memory_cannot_hold(lv, tiny_gguf, monkeypatch) -> None:
    model, mmproj = tiny_gguf
    files = [model, mmproj]
    half, full = lv.gpu_bytes(files, 1, 3), lv.gpu_bytes(files, -1, 3)
    assert half < full
    Gpu(monkeypatch, free=(half + full) // 2)
    assert lv.gpu_free_memory() == (half + full) // 2
    llama = LlamaOnAFullGpu(monkeypatch, refused=lambda layers: layers < 0)
    engine = lv.LlamaVlm(model, n_ctx=512)
    engine.load()
    try:
        assert llama.layers == [1]  # all layers were not tried: they clearly do not fit
        assert engine.n_gpu_layers == 1
        assert engine.notes == [
            "The GPU had too little memory for all of tiny-smolvlm.gguf; 1 of its 3 layers run "
            "on the GPU and the rest on the processor (CPU), which is slower."]
        assert engine.projector == mmproj  # the GPU encodes the frame's tiles
    finally:
        engine.close()


def test_llama_too_large_for_the_gpu_and_the_ram_is_refused(lv, tiny_gguf, monkeypatch) -> None:
    Gpu(monkeypatch, free=1000)
    monkeypatch.setattr(lv, "available_ram", lambda: 1000)
    llama = LlamaOnAFullGpu(monkeypatch)
    engine = lv.LlamaVlm(tiny_gguf[0], n_ctx=512)
    with pytest.raises(VlmError) as refused:
        engine.load()
    assert llama.layers == []  # refused before llama.cpp started
    message = str(refused.value)
    assert message.startswith("The model is too large for this computer's memory")
    assert "The GPU cannot hold it either: it needs about" in message
    assert engine._llm is None


def test_llama_on_a_gpu_that_fits_loads_once_with_no_note(lv, tiny_gguf, monkeypatch) -> None:
    Gpu(monkeypatch)
    llama = LlamaOnAFullGpu(monkeypatch, refused=lambda layers: False)
    engine = lv.LlamaVlm(tiny_gguf[0], n_ctx=512)
    engine.load()
    try:
        assert llama.layers == [-1] and engine.n_gpu_layers == -1 and engine.notes == []
    finally:
        engine.close()


def test_the_player_asks_a_model_that_moved_to_the_cpu_one_question_at_a_time(
        qapp, gpu_engine, monkeypatch) -> None:
    """On a GPU the model gets batches of questions; once it has moved to the processor after
    running out of memory, one at a time, as any model on the CPU."""
    from models.schedule import GapMap
    from player.core.perception import Perception
    from tests.support import wait_for

    ram(monkeypatch, free=64 * GIB)
    on_a_full_gpu(gpu_engine, monkeypatch)
    p = Perception(stages_factory=lambda: ([], []))
    gaps = GapMap()
    p.use_gaps(gaps.room_at, gaps.gap_at, gaps.next_gap)
    problems: list[str] = []
    p.problem.connect(problems.append)
    answers: list[str] = []
    p.answer.connect(lambda _t, text: answers.append(text))
    p.warm_up()
    p.use_engine(gpu_engine, "tiny")
    wait_for(lambda: p.has_vlm and p.session._gpu_worker is not None, timeout=20)  # noqa: SLF001
    assert p.session._gpu_worker.vlm_batch == 8 and p.session._planner.max_outstanding == 4  # noqa: SLF001
    frame = (320, 180, FRAME.tobytes())
    assert p.describe_now(1.0, frame)
    wait_for(lambda: any("now runs on the CPU" in m for m in problems), timeout=60)
    assert p.session._gpu_worker.vlm_batch == 1 and p.session._planner.max_outstanding == 1  # noqa: SLF001
    p.close()
