"""Batched answers (describe_batch) for the look-ahead: the default in VlmEngine, and the real
batched generation of the transformers engine on a tiny random-weight Idefics3 model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from models.vlm import VlmEngine, VlmError, VlmRequest, hf
from tests.tiny_vlm import build_tiny_vlm


class OutOfMemoryError(RuntimeError):
    """Named like torch's, which is what the engine recognises."""


# ----- the default: one by one -----------------------------------------------------------------
class ScriptedEngine(VlmEngine):
    """Answers with a fixed text per prompt, and counts the calls."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def load(self) -> None:
        pass

    def stream(self, request: VlmRequest) -> Iterator[str]:
        self.asked.append(request.prompt)
        yield from self.answers[request.prompt].split(" ")[:1]
        for word in self.answers[request.prompt].split(" ")[1:]:
            yield " " + word


def image(seed: int, height: int = 90, width: int = 160) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_default_describe_batch_answers_each_in_order_and_cleans() -> None:
    engine = ScriptedEngine({
        "first": "The image shows a dog running along the beach as waves roll in.",
        "second": "In this image, a person opens a red door",
    })
    requests = [VlmRequest(image(0), "first", max_words=6), VlmRequest(image(1), "second")]
    assert engine.describe_batch(requests) == ["A dog running along the beach.",
                                               "A person opens a red door."]
    assert engine.asked == ["first", "second"]
    assert engine.describe_batch([]) == [] and engine.asked == ["first", "second"]


# ----- the transformers engine -----------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    e = hf.HfVlm(build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm")), device="cpu")
    e.load()
    yield e
    e.close()
    mp.undo()


def requests() -> list[VlmRequest]:
    """Three different frames and prompts of quite different lengths (so the batch is padded),
    with different token limits and one word budget."""
    return [
        VlmRequest(image(1), "Describe.", max_new_tokens=12),
        VlmRequest(image(2, 120, 120), "Describe this video frame for a blind viewer in one "
                   "short present-tense sentence, at most ten words, and say what changed.",
                   max_new_tokens=20),
        VlmRequest(image(3, 64, 200), "Say what changed since the last description.",
                   max_new_tokens=16, max_words=3),
    ]


def test_batch_is_left_padded(engine) -> None:
    inputs = engine._batch_inputs(requests())
    mask = inputs["attention_mask"]
    lengths = mask.sum(dim=1).tolist()
    assert len(set(lengths)) == 3  # really padded
    assert mask[:, -1].tolist() == [1, 1, 1]  # every prompt ends at the right edge
    assert engine._processor.tokenizer.padding_side == "right"  # put back after the call


def test_batch_equals_each_request_alone(engine) -> None:
    alone = [engine.describe(r) for r in requests()]
    batched = engine.describe_batch(requests())
    assert batched == alone
    assert all(alone) and len(set(alone)) == 3  # a swap of rows would show
    assert len(batched[2].split()) <= 3


def test_batch_tokens_equal_greedy_generation_alone(engine) -> None:
    """Token for token, not only after cleaning: left padding with the attention mask gives each
    row exactly the greedy tokens it gets alone (float32, this tiny model)."""
    import torch

    pad = engine._processor.tokenizer.pad_token_id

    def tokens(row: torch.Tensor) -> list[int]:
        return [t for t in row.tolist() if t != pad]

    reqs = requests()
    with torch.inference_mode():
        inputs = engine._batch_inputs(reqs)
        batch = engine._generate(**inputs, do_sample=False, max_new_tokens=20)
        start = inputs["input_ids"].shape[1]
        for i, request in enumerate(reqs):
            one = engine._inputs(request)
            alone = engine._generate(**one, do_sample=False, max_new_tokens=20)
            expected = tokens(alone[0, one["input_ids"].shape[1]:])
            assert len(expected) >= 10
            assert tokens(batch[i, start:]) == expected, f"row {i}"


def test_empty_batch_and_batch_of_one(engine, monkeypatch) -> None:
    calls = []
    real = engine._generate

    def counting(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", counting)
    assert engine.describe_batch([]) == [] and calls == []
    request = requests()[1]
    assert engine.describe_batch([request]) == [engine.describe(request)]
    assert calls == [1, 1]


def test_one_generate_call_for_the_whole_batch(engine, monkeypatch) -> None:
    sizes = []
    real = engine._generate

    def counting(**kwargs):
        sizes.append((kwargs["input_ids"].shape[0], kwargs["max_new_tokens"]))
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", counting)
    engine.describe_batch(requests())
    assert sizes == [(3, 20)]


def test_out_of_memory_splits_the_batch_and_remembers(engine, monkeypatch) -> None:
    expected = [engine.describe(r) for r in requests()]
    sizes = []
    real = engine._generate

    def tight(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 1:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", tight)
    monkeypatch.setattr(engine, "device", "cuda:0")  # as if it had been loaded on a GPU
    monkeypatch.setattr(engine, "notes", [])
    monkeypatch.setattr(engine, "_batch_limit", None)
    assert engine.describe_batch(requests()) == expected
    assert sizes == [3, 2, 1, 1, 1]
    assert engine.device == "cuda:0"  # halving was enough: no move to the CPU
    assert len(engine.notes) == 2 and "1 at a time" in engine.notes[-1]
    assert "GPU ran out of memory" in engine.notes[0]
    sizes.clear()
    assert engine.describe_batch(requests()) == expected
    assert sizes == [1, 1, 1]  # later batches keep to the size that fitted


def test_out_of_memory_for_one_frame_falls_back_to_cpu(engine, monkeypatch) -> None:
    expected = [engine.describe(r) for r in requests()[:2]]
    calls = []
    real = engine._generate

    def gpu_full(**kwargs):
        calls.append((kwargs["input_ids"].shape[0], engine.device))
        if engine.device != "cpu":
            raise OutOfMemoryError("CUDA out of memory.")
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", gpu_full)
    monkeypatch.setattr(engine, "device", "cuda:0")
    monkeypatch.setattr(engine, "notes", [])
    monkeypatch.setattr(engine, "_batch_limit", None)
    assert engine.describe_batch(requests()[:2]) == expected
    assert calls == [(2, "cuda:0"), (1, "cuda:0"), (1, "cpu"), (1, "cpu")]
    assert engine.device == "cpu" and engine._batch_limit is None
    assert "now runs on the CPU" in engine.notes[-1]


def test_quantized_model_does_not_move_to_cpu(engine, monkeypatch) -> None:
    def gpu_full(**kwargs):
        raise OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(engine, "_generate", gpu_full)
    monkeypatch.setattr(engine, "device", "cuda:0")
    monkeypatch.setattr(engine, "quantize", "8bit")
    monkeypatch.setattr(engine, "notes", [])
    monkeypatch.setattr(engine, "_batch_limit", None)
    with pytest.raises(VlmError, match="out of memory"):
        engine.describe_batch(requests()[:1])
    assert engine.device == "cuda:0"


def test_other_errors_are_not_retried(engine, monkeypatch) -> None:
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(engine, "_generate", broken)
    with pytest.raises(VlmError, match="shape mismatch"):
        engine.describe_batch(requests())
    assert calls == [1]


@pytest.mark.gpu
def test_batch_on_gpu_in_bfloat16(tmp_path) -> None:
    e = hf.HfVlm(build_tiny_vlm(tmp_path / "tiny"), device="cuda")
    e.load()
    try:
        assert e.dtype == "bfloat16"
        answers = e.describe_batch(requests())
        assert len(answers) == 3 and all(answers)
    finally:
        e.close()


def test_on_the_cpu_a_frame_is_one_tile(tmp_path) -> None:
    """A processor that tiles large frames (as SmolVLM's do) shows the CPU one tile per frame,
    unless tiling is asked for; the answer still comes."""
    from models.vlm import VlmRequest
    from models.vlm.hf import HfVlm
    from tests.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path / "tiling", splitting=True)
    frame = np.zeros((180, 320, 3), np.uint8)
    frame[:, :160] = (200, 40, 40)
    request = VlmRequest(frame, "Describe the picture.", max_new_tokens=6)
    tiled = HfVlm(folder, device="cpu", image_splitting=True)
    tiled.load()
    one = HfVlm(folder, device="cpu")
    one.load()
    tiles = tiled._inputs(request)["pixel_values"].shape[1]
    assert tiles > 2  # 320x180 at 4 tiles wide: a grid of tiles and the overview
    assert one._inputs(request)["pixel_values"].shape[1] == 1
    assert one._inputs(request)["input_ids"].shape[1] < tiled._inputs(request)["input_ids"].shape[1]
    assert isinstance(one.describe(request), str)
