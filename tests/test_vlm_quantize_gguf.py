"""Quantizing a GGUF language model with llama.cpp's quantizer (``narrate models quantize``), on
the tiny random-weight SmolVLM-architecture pair from scripts/tiny_gguf.py, and running the
quantized model with its projector."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from models.vlm import VlmError, VlmRequest
from models.vlm import quantize as q
from models.vlm.gguf import read_gguf
from models.vlm.llama import LlamaVlm
from player.cli.models_cmd import main
from tests.support import gguf_builder as _builder

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: "
                                        "pip install 'video-narrator[llama]'")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return _builder().build_tiny_gguf(tmp_path / "gguf")


@pytest.mark.parametrize(("kind", "ftype"), [("Q8_0", 7), ("Q4_K_M", 15)])
def test_quantized_models_are_smaller_and_still_describe(pair, kind: str, ftype: int) -> None:
    model, mmproj = pair
    done = q.quantize_gguf(model, kind)
    assert done.path == model.with_name(f"tiny-smolvlm-{kind}.gguf")
    assert read_gguf(done.path).metadata["general.file_type"] == ftype
    assert done.bytes_before == model.stat().st_size
    assert done.bytes_after == done.path.stat().st_size
    # f32 -> 8.5 bits a weight (Q8_0) or fewer: at most a third of the size, embeddings included
    assert done.bytes_after < done.bytes_before / 3
    assert not list(model.parent.glob("*.part"))
    engine = LlamaVlm(done.path, mmproj, n_ctx=512, n_gpu_layers=0)
    engine.load()
    try:
        # (A 48x80 frame with a longer prompt made llama.cpp's decode fail with the Q8_0 copy
        # of this 64-wide random model, "llama_decode returned 1"; the f32 original runs.)
        square = np.zeros((64, 64, 3), np.uint8)
        square[:, :32] = (200, 30, 30)
        pieces = list(engine.stream(VlmRequest(square, "Describe.", max_new_tokens=8)))
    finally:
        engine.close()
    assert "".join(pieces).strip()


def test_refusals_say_what_to_do(pair, tmp_path: Path) -> None:
    model, mmproj = pair
    with pytest.raises(VlmError, match="Unknown quantization type 'Q3'"):
        q.quantize_gguf(model, "Q3")
    with pytest.raises(VlmError, match="multimodal projector"):
        q.quantize_gguf(mmproj, "Q8_0")
    done = q.quantize_gguf(model, "Q8_0")
    with pytest.raises(VlmError, match="already quantized"):
        q.quantize_gguf(done.path, "Q4_K_M")
    with pytest.raises(VlmError, match="already exists"):
        q.quantize_gguf(model, "Q8_0")
    assert q.quantize_gguf(model, "Q8_0", overwrite=True).path == done.path
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(VlmError, match="not a valid GGUF file"):
        q.quantize_gguf(text, "Q8_0")
    with pytest.raises(VlmError, match="must not be the source"):
        q.quantize_gguf(model, "Q8_0", output=model, overwrite=True)


def test_a_full_disk_is_refused_before_writing(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = pair
    usage = namedtuple("usage", "total used free")
    # A real full disk cannot be made safely in a test; the free-space reading is replaced.
    monkeypatch.setattr(q.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(VlmError, match="Not enough disk space"):
        q.quantize_gguf(model, "Q4_K_M")
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(
        [model.name, "mmproj-tiny-smolvlm.gguf"])


def test_the_command(pair, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model, mmproj = pair
    out = tmp_path / "small.gguf"
    assert main(["quantize", str(model), "--type", "q8_0", "--output", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"Wrote {out}" in said and f"narrate --model {out}" in said
    assert read_gguf(out).metadata["general.file_type"] == 7
    assert main(["quantize", str(mmproj)]) == 1
    assert "multimodal projector" in capsys.readouterr().err


def test_default_output_names() -> None:
    assert q.default_output(Path("/m/SmolVLM-f16.gguf"), "Q4_K_M") == \
        Path("/m/SmolVLM-Q4_K_M.gguf")
    assert q.default_output(Path("/m/model.gguf"), "Q8_0") == Path("/m/model-Q8_0.gguf")


def test_the_quantized_file_keeps_the_projector_pairing(pair, tmp_path: Path) -> None:
    """A quantized model copied to a folder with its projector is found by the loader."""
    model, mmproj = pair
    done = q.quantize_gguf(model, "Q4_K_M")
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(done.path, folder / done.path.name)
    shutil.copy(mmproj, folder / mmproj.name)
    engine = LlamaVlm(folder / done.path.name)
    assert engine.problem() == ""
    assert engine.mmproj_path == folder / mmproj.name
    assert np.isfinite(done.seconds)
