"""8-bit and 4-bit models in the transformers engine: torchao int8 weight-only on the CPU,
bitsandbytes on a GPU (opt-in with --run-gpu), and what the user is told when a library is
missing."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import numpy as np
import pytest

from models.vlm import VlmError, VlmRequest, hf
from tests.tiny_vlm import build_tiny_vlm


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


def frame() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)


def linear_layers(model):
    import torch

    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def loaded_bytes(model) -> int:
    """Bytes the model's tensors take, counting the int8 data inside quantized weights."""
    total = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        parts = getattr(tensor, "tensor_data_names", None)
        inner = [getattr(tensor, p) for p in parts] if parts else [tensor]
        total += sum(t.numel() * t.element_size() for t in inner)
    return total


# ----- what is missing, and what to do ---------------------------------------------------------
FIND_SPEC = importlib.util.find_spec


def pretend(monkeypatch, missing: tuple[str, ...] = (), present: tuple[str, ...] = ()) -> None:
    """Make packages look uninstalled (``missing``) or installed (``present``) to the engine."""

    def find_spec(name, *args, **kwargs):
        if name in missing:
            return None
        if name in present:
            return importlib.machinery.ModuleSpec(name, None)
        return FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(hf.importlib.util, "find_spec", find_spec)


def test_cpu_quantization_names_torchao_when_missing(tiny_model, monkeypatch) -> None:
    pretend(monkeypatch, missing=("torchao",))
    engine = hf.HfVlm(tiny_model, device="cpu", quantize="8bit")
    assert engine.problem() == ("8bit quantization on the CPU needs torchao: pip install torchao "
                                "(or turn quantization off).")
    with pytest.raises(VlmError, match="pip install torchao"):
        engine.load()


def test_gpu_quantization_names_bitsandbytes_and_accelerate(tiny_model, monkeypatch) -> None:
    pretend(monkeypatch, missing=("bitsandbytes", "accelerate"))
    problem = hf.HfVlm(tiny_model, device="cuda", quantize="4bit").problem()
    assert "pip install bitsandbytes accelerate" in problem and "GPU" in problem
    pretend(monkeypatch, missing=("accelerate",), present=("bitsandbytes",))
    problem = hf.HfVlm(tiny_model, device="cuda:0", quantize="8bit").problem()
    assert "pip install accelerate" in problem and "bitsandbytes" not in problem
    pretend(monkeypatch, present=("bitsandbytes", "accelerate"))
    assert hf.HfVlm(tiny_model, device="cuda:0", quantize="8bit").problem() == ""


def test_4bit_on_the_cpu_is_refused_with_what_to_do(tiny_model) -> None:
    engine = hf.HfVlm(tiny_model, device="cpu", quantize="4bit")
    assert "4bit quantization needs a CUDA GPU" in engine.problem()
    assert "8bit" in engine.problem()
    with pytest.raises(VlmError, match="CUDA GPU"):
        engine.load()


def test_quantized_memory_estimate_counts_what_stays_unquantized(tiny_model) -> None:
    f32 = hf.estimate_bytes(tiny_model, "float32")
    q8 = hf.estimate_bytes(tiny_model, "float32", "8bit")
    # the tiny model's embeddings and output head (kept in float32) are a large share of it
    assert f32 / 4 < q8 < f32 / 1.5


# ----- torchao on the CPU ----------------------------------------------------------------------
needs_torchao = pytest.mark.skipif(
    importlib.util.find_spec("torchao") is None,
    reason="torchao is not installed: pip install torchao to test 8bit on the CPU")


@pytest.fixture(scope="module")
def int8_engine(tiny_model):
    if importlib.util.find_spec("torchao") is None:
        pytest.skip("torchao is not installed: pip install torchao to test 8bit on the CPU")
    engine = hf.HfVlm(tiny_model, device="cpu", quantize="8bit")
    assert engine.problem() == ""
    engine.load()
    yield engine
    engine.close()


@needs_torchao
def test_8bit_on_cpu_stores_linear_weights_as_int8(int8_engine) -> None:
    import torch

    layers = linear_layers(int8_engine._model)
    quantized = {name: m for name, m in layers.items() if name != "lm_head"}
    assert len(quantized) >= 20  # vision encoder, connector and text model
    for name, module in quantized.items():
        weight = module.weight
        assert type(weight).__name__ == "Int8Tensor", name
        assert weight.qdata.dtype == torch.int8, name
        assert tuple(weight.qdata.shape) == (module.out_features, module.in_features), name
    assert layers["lm_head"].weight.dtype == torch.float32  # the output head stays exact
    assert int8_engine.device == "cpu" and int8_engine.quantize == "8bit"


@needs_torchao
def test_8bit_memory_matches_the_estimate(int8_engine, tiny_model) -> None:
    real = loaded_bytes(int8_engine._model) * hf.OVERHEAD
    assert hf.estimate_bytes(tiny_model, "float32", "8bit") == pytest.approx(real, rel=0.05)


@needs_torchao
def test_8bit_streams_text(int8_engine) -> None:
    request = VlmRequest(frame(), "Describe.", max_new_tokens=12)
    pieces = list(int8_engine.stream(request))
    assert pieces and "".join(pieces).strip()
    text = int8_engine.describe(request)
    assert text and text[-1] in ".!?"
    assert int8_engine.describe_batch([request, request]) == [text, text]


@needs_torchao
def test_8bit_logits_stay_close_to_float32(int8_engine, tiny_model) -> None:
    import torch

    full = hf.HfVlm(tiny_model, device="cpu")
    full.load()
    try:
        inputs = full._inputs(VlmRequest(frame(), "Describe.", max_new_tokens=4))
        with torch.inference_mode():
            exact = full._model(**inputs).logits[0, -1]
            approx = int8_engine._model(**inputs).logits[0, -1]
    finally:
        full.close()
    assert not torch.equal(exact, approx)  # it really is a different, quantized model
    assert torch.nn.functional.cosine_similarity(exact, approx, dim=0) > 0.99


# ----- bitsandbytes on a GPU (opt-in) ----------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("bits, layer", [("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")])
def test_bitsandbytes_on_gpu(tiny_model, bits, layer) -> None:
    engine = hf.HfVlm(tiny_model, device="cuda", quantize=bits)
    assert engine.problem() == ""
    engine.load()
    try:
        names = {type(m).__name__ for m in linear_layers(engine._model).values()}
        assert layer in names
        assert engine.describe(VlmRequest(frame(), "Describe.", max_new_tokens=8))
    finally:
        engine.close()
