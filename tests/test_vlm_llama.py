"""The llama.cpp engine: GGUF checks, refusals, the chat-handler choice, and a real run of a tiny
random-weight SmolVLM-architecture GGUF pair (model + projector) written by scripts/tiny_gguf.py.

The tests that run llama.cpp need llama-cpp-python (``pip install 'video-narrator[llama]'``);
without it they are reported as skipped with that reason.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from models.vlm import VlmError, VlmRequest
from models.vlm import llama as lv
from tests.support import gguf_builder as _builder

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)




@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _builder().build_tiny_gguf(tmp_path_factory.mktemp("gguf"))


def _needs_llama_cpp() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: "
                                            "pip install 'video-narrator[llama]'")


def frame() -> np.ndarray:
    img = np.zeros((48, 80, 3), np.uint8)
    img[:, :40] = (200, 30, 30)
    img[10:30, 50:70] = (20, 180, 240)
    return img


# ----- reading GGUF without llama.cpp ------------------------------------------------------------
def test_reads_metadata_of_model_and_projector(tiny_gguf) -> None:
    model, mmproj = tiny_gguf
    info, proj = lv.read_gguf(model), lv.read_gguf(mmproj)
    assert info.architecture == "llama" and info.version == 3 and info.tensor_count == 21
    assert info.metadata["llama.block_count"] == 2
    assert info.metadata["tokenizer.ggml.tokens"].startswith("<array of")
    assert proj.architecture == "clip"
    assert proj.metadata["clip.projector_type"] == "idefics3"
    assert proj.metadata["clip.vision.image_mean"] == pytest.approx([0.5, 0.5, 0.5])


@pytest.mark.parametrize("content, why", [
    (b"PK\x03\x04 not a gguf at all", "does not start with GGUF"),
    (b"GGUF", "ends too early"),
    (b"GGUF\x07\x00\x00\x00" + b"\0" * 16, "version 7"),
])
def test_corrupt_gguf_is_refused(tmp_path, content, why) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(content)
    with pytest.raises(VlmError, match=why) as err:
        lv.read_gguf(bad)
    assert "broken.gguf" in str(err.value)


def test_truncated_gguf_is_refused(tiny_gguf, tmp_path) -> None:
    model, mmproj = tiny_gguf
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model.read_bytes()[:3000])  # stops inside the vocabulary
    (tmp_path / "mmproj-cut.gguf").write_bytes(mmproj.read_bytes())
    with pytest.raises(VlmError, match="cut.gguf.*not a valid GGUF"):
        lv.read_gguf(cut)
    engine = lv.LlamaVlm(cut)
    if importlib.util.find_spec("llama_cpp") is not None:
        with pytest.raises(VlmError, match="cut.gguf"):
            engine.load()


def test_handler_follows_architecture_and_projector() -> None:
    def info(arch: str, **meta) -> lv.GgufInfo:
        return lv.GgufInfo(Path("x.gguf"), 3, 0, {"general.architecture": arch, **meta})

    chat = {"tokenizer.chat_template": "{{ messages }}"}
    assert lv.handler_name(info("llama", **chat),
                           info("clip", **{"clip.projector_type": "idefics3"})) == "MTMDChatHandler"
    assert lv.handler_name(info("qwen2vl", **chat),
                           info("clip", **{"clip.projector_type": "qwen2.5vl_merger"})
                           ) == "Qwen25VLChatHandler"
    assert lv.handler_name(info("gemma3", **chat),
                           info("clip", **{"clip.projector_type": "gemma3"})) == "MTMDChatHandler"
    assert lv.handler_name(info("gemma4", **chat), info("clip")) == "Gemma4ChatHandler"
    assert lv.handler_name(info("phi2", **{"general.name": "moondream2"}),
                           info("clip")) == "MoondreamChatHandler"
    assert lv.handler_name(info("llama"), info("clip", **{"clip.projector_type": "mlp"})
                           ) == "Llava15ChatHandler"


def test_png_data_uri_round_trips() -> None:
    img = frame()
    png = lv.png_bytes(img)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert lv.data_uri(img).startswith("data:image/png;base64,")
    assert base64.b64decode(lv.data_uri(img).split(",", 1)[1]) == png
    # IHDR then one IDAT whose rows (filter byte + RGB) inflate back to the image
    idat_len = int.from_bytes(png[33:37], "big")
    rows = np.frombuffer(zlib.decompress(png[41:41 + idat_len]), np.uint8).reshape(48, 1 + 80 * 3)
    assert (rows[:, 0] == 0).all() and (rows[:, 1:].reshape(48, 80, 3) == img).all()
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    import io

    assert (np.asarray(pil.open(io.BytesIO(png)).convert("RGB")) == img).all()


# ----- problem() and refusals --------------------------------------------------------------------
def test_problem_names_what_is_missing(tmp_path, tiny_gguf) -> None:
    engine = lv.LlamaVlm(tmp_path / "nowhere.gguf")
    if importlib.util.find_spec("llama_cpp") is None:
        assert "pip install 'video-narrator[llama]'" in engine.problem()
        return
    assert "No model file" in engine.problem() and "nowhere.gguf" in engine.problem()
    with pytest.raises(VlmError, match="nowhere.gguf"):
        engine.load()

    alone = tmp_path / "alone"
    alone.mkdir()
    model = alone / "SmolVLM-256M-Q8_0.gguf"
    model.write_bytes(tiny_gguf[0].read_bytes())
    engine = lv.LlamaVlm(model)
    assert engine.problem() == (
        "SmolVLM-256M-Q8_0.gguf has no multimodal projector (mmproj) file beside it; vision "
        f"needs one. Put the model's mmproj-*.gguf file in {alone}.")
    with pytest.raises(VlmError, match="no multimodal projector"):
        engine.load()
    assert lv.LlamaVlm(*tiny_gguf).problem() == ""
    assert lv.LlamaVlm(tiny_gguf[0]).problem() == ""  # found beside it


def test_projector_is_found_beside_the_model(tmp_path) -> None:
    for name in ("SmolVLM-256M-Q8_0.gguf", "mmproj-Qwen2.5-VL-3B-f16.gguf",
                 "mmproj-SmolVLM-256M-f16.gguf", "notes.txt"):
        (tmp_path / name).write_bytes(b"GGUF")
    model = tmp_path / "SmolVLM-256M-Q8_0.gguf"
    assert lv.find_projector(model) == tmp_path / "mmproj-SmolVLM-256M-f16.gguf"
    assert lv.LlamaVlm(model, mmproj_path=tmp_path / "mmproj-Qwen2.5-VL-3B-f16.gguf"
                       ).mmproj_path.name == "mmproj-Qwen2.5-VL-3B-f16.gguf"
    assert lv.find_projector(tmp_path / "missing" / "m.gguf") is None


def test_model_larger_than_free_ram_is_refused(tiny_gguf) -> None:
    model, mmproj = tiny_gguf
    total = model.stat().st_size + mmproj.stat().st_size
    lv.check_fits([model, mmproj], free=int(total / 0.8) + 10)  # just fits
    with pytest.raises(VlmError, match="too large for this computer's memory") as err:
        lv.check_fits([model, mmproj], free=total)
    assert "tiny-smolvlm.gguf and mmproj-tiny-smolvlm.gguf" in str(err.value)
    lv.check_fits([model], free=None)  # unknown: do not refuse
    assert lv.available_ram() is None or lv.available_ram() > 0


def test_load_checks_ram_before_loading(tiny_gguf, monkeypatch) -> None:
    _needs_llama_cpp()
    monkeypatch.setattr(lv, "available_ram", lambda: 100_000)
    engine = lv.LlamaVlm(*tiny_gguf, n_gpu_layers=0)
    with pytest.raises(VlmError, match="too large"):
        engine.load()
    assert engine._llm is None


def test_projector_and_model_swapped_are_refused(tiny_gguf) -> None:
    _needs_llama_cpp()
    model, mmproj = tiny_gguf
    with pytest.raises(VlmError, match="not a multimodal projector"):
        lv.LlamaVlm(model, mmproj_path=model).load()
    with pytest.raises(VlmError, match="is a projector, not a language model"):
        lv.LlamaVlm(mmproj, mmproj_path=mmproj).load()


# ----- a real run --------------------------------------------------------------------------------
def test_tiny_model_streams_bounded_text(tiny_gguf) -> None:
    _needs_llama_cpp()
    engine = lv.LlamaVlm(*tiny_gguf, n_ctx=512, n_gpu_layers=0)
    start = time.perf_counter()
    engine.load()
    loaded = time.perf_counter()
    assert engine.handler == "MTMDChatHandler" and engine.n_gpu_layers == 0
    request = VlmRequest(frame(), "Describe this video frame.", max_new_tokens=12)
    pieces = list(engine.stream(request))
    done = time.perf_counter()
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip()
    assert len(pieces) <= request.max_new_tokens
    n_tokens = len(engine._llm.tokenize("".join(pieces).encode(), add_bos=False, special=True))
    assert n_tokens <= request.max_new_tokens + 2  # re-tokenising may split differently
    log.warning("llama.cpp tiny GGUF on the CPU: load %.2f s, %d pieces in %.2f s",
                loaded - start, len(pieces), done - loaded)
    # a second request reuses the loaded model; describe() cleans for speech
    assert isinstance(engine.describe(request), str)
    engine.close()
    assert engine._llm is None
    engine.close()  # twice is fine


@pytest.mark.parametrize("which", ["model", "projector"])
def test_gguf_with_missing_tensor_data_is_refused(tiny_gguf, tmp_path, which) -> None:
    """A file cut short after its header passes the header check; llama.cpp must refuse it."""
    _needs_llama_cpp()
    model, mmproj = tiny_gguf
    paths = {"model": tmp_path / "tiny-smolvlm.gguf", "projector": tmp_path / "mmproj-tiny.gguf"}
    for kind, src in (("model", model), ("projector", mmproj)):
        data = src.read_bytes()
        paths[kind].write_bytes(data[: len(data) // 2] if kind == which else data)
    lv.read_gguf(paths[which])  # the header is intact
    engine = lv.LlamaVlm(paths["model"], n_gpu_layers=0)
    with pytest.raises(VlmError, match=paths[which].name if which == "model" else "cannot load"):
        engine.load()
    assert engine._llm is None


# ----- one tile a frame on the CPU ---------------------------------------------------------------
def _prompt_tokens(engine: lv.LlamaVlm, image: np.ndarray) -> int:
    """Tokens in the context after one answer of one token: the prompt, image tiles included."""
    engine.describe(VlmRequest(image, "Describe this video frame.", max_new_tokens=1))
    return int(engine._llm.n_tokens)


def test_on_the_cpu_a_smolvlm_frame_is_one_tile_not_thirteen(tmp_path, monkeypatch) -> None:
    """The projector as real SmolVLM files ship it (longest edge 4 tiles) makes llama.cpp cut a
    16:9 frame into 12 tiles and an overview; on the CPU the engine loads a one-tile copy (made
    once, in the cache), so the frame costs the overview and one tile."""
    _needs_llama_cpp()
    from models.vlm.projector import PREPROC_KEY

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model, mmproj = _builder().build_tiny_gguf(tmp_path / "gguf", preproc=4 * 64)
    wide = np.zeros((72, 128, 3), np.uint8)
    wide[:, 64:] = (30, 160, 60)
    tiled = lv.LlamaVlm(model, n_ctx=2048, n_gpu_layers=0, image_splitting=True)
    tiled.load()
    assert tiled.projector == mmproj
    one = lv.LlamaVlm(model, n_ctx=2048, n_gpu_layers=0)  # the CPU default
    one.load()
    try:
        copy = one.projector
        assert copy is not None and copy != mmproj and copy.is_relative_to(tmp_path / "cache")
        original, changed = lv.read_gguf(mmproj), lv.read_gguf(copy)
        assert original.metadata[PREPROC_KEY] == 256 and changed.metadata[PREPROC_KEY] == 64
        assert {k: v for k, v in changed.metadata.items() if k != PREPROC_KEY} == \
            {k: v for k, v in original.metadata.items() if k != PREPROC_KEY}
        tail = 100_000  # the tensors, copied byte for byte
        assert copy.read_bytes()[-tail:] == mmproj.read_bytes()[-tail:]
        many, few = _prompt_tokens(tiled, wide), _prompt_tokens(one, wide)
        log.warning("prompt tokens for a 16:9 frame: %d in tiles, %d as one tile", many, few)
        assert many - few >= 11 * 4  # at least eleven tiles of four image tokens fewer
        assert one.notes == []
    finally:
        tiled.close()
        one.close()
    made = copy.stat().st_mtime_ns
    again = lv.LlamaVlm(model, n_ctx=2048, n_gpu_layers=0)
    again.load()
    assert again.projector == copy and copy.stat().st_mtime_ns == made  # made once
    again.close()


def test_an_old_projector_without_the_setting_gets_it_added(tmp_path, monkeypatch) -> None:
    _needs_llama_cpp()
    from models.vlm.projector import PREPROC_KEY, one_tile_projector

    model, mmproj = _builder().build_tiny_gguf(tmp_path / "gguf", preproc=0)
    assert PREPROC_KEY not in lv.read_gguf(mmproj).metadata
    copy = one_tile_projector(mmproj, tmp_path / "projectors")
    info = lv.read_gguf(copy)
    assert info.metadata[PREPROC_KEY] == 64 and info.tensor_count == lv.read_gguf(mmproj).tensor_count
    engine = lv.LlamaVlm(model, mmproj_path=copy, n_ctx=1024, n_gpu_layers=0)
    assert isinstance(engine.describe(VlmRequest(frame(), "Describe.", max_new_tokens=4)), str)
    engine.close()


def test_a_damaged_copy_is_written_again_and_writers_never_share_a_file(tmp_path) -> None:
    """A copy cut short (a crash, a power cut) is not used: it is written again. Two writers
    at once (the player and narrate prepare) each write a file of their own, and the copy both
    end with is whole."""
    import threading

    from models.vlm.projector import PREPROC_KEY, copy_size, one_tile_projector

    _model, mmproj = _builder().build_tiny_gguf(tmp_path / "gguf", preproc=4 * 64)
    folder = tmp_path / "projectors"
    copy = one_tile_projector(mmproj, folder)
    whole = copy.read_bytes()
    assert len(whole) == copy_size(mmproj, PREPROC_KEY, 64)
    copy.write_bytes(whole[: len(whole) // 2])
    assert one_tile_projector(mmproj, folder) == copy and copy.read_bytes() == whole
    copy.unlink()
    made, errors = [], []

    def write() -> None:
        try:
            made.append(one_tile_projector(mmproj, folder))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    writers = [threading.Thread(target=write) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert errors == [] and made == [copy] * 4
    assert copy.read_bytes() == whole
    assert [p.name for p in folder.iterdir()] == [copy.name]  # no temporary file left


def test_a_full_disk_keeps_the_tiles_and_says_so(tmp_path, monkeypatch) -> None:
    _needs_llama_cpp()
    import shutil

    from models.vlm import projector

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model, mmproj = _builder().build_tiny_gguf(tmp_path / "gguf", preproc=4 * 64)
    real = shutil.disk_usage
    monkeypatch.setattr(projector.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=1 << 20))
    engine = lv.LlamaVlm(model, n_ctx=2048, n_gpu_layers=0)
    engine.load()
    try:
        assert engine.projector == mmproj
        assert len(engine.notes) == 1 and "could not be written" in engine.notes[0]
        assert not list((tmp_path / "cache").rglob("*.gguf*"))  # nothing half-written
    finally:
        engine.close()


def test_llama_cpp_image_log_goes_to_logging_not_the_terminal(tiny_gguf, capfd, caplog) -> None:
    """libmtmd writes a dozen lines for every frame; in terminal mode a screen reader would read
    them all. They go to Python's logging (debug) instead."""
    _needs_llama_cpp()
    engine = lv.LlamaVlm(*tiny_gguf, n_ctx=512, n_gpu_layers=0)
    with caplog.at_level(logging.DEBUG, logger="llama.cpp.mtmd"):
        engine.describe(VlmRequest(frame(), "Describe this video frame.", max_new_tokens=2))
    engine.close()
    err = capfd.readouterr().err
    assert "encoding image slice" not in err and "add_text" not in err
    mtmd = [r for r in caplog.records if r.name == "llama.cpp.mtmd"]
    assert any("image slice encoded" in r.getMessage() for r in mtmd)
    assert all(r.levelno == logging.DEBUG for r in mtmd), "routine lines must stay quiet"


def test_llama_cpp_image_errors_are_logged_as_errors(tiny_gguf, tmp_path, caplog) -> None:
    _needs_llama_cpp()
    model, mmproj = tiny_gguf
    (tmp_path / model.name).write_bytes(model.read_bytes())
    data = mmproj.read_bytes()
    (tmp_path / mmproj.name).write_bytes(data[: len(data) // 2])  # the tensors cut short
    engine = lv.LlamaVlm(tmp_path / model.name, n_gpu_layers=0)
    with caplog.at_level(logging.DEBUG, logger="llama.cpp.mtmd"), pytest.raises(VlmError):
        engine.load()
    assert any(r.levelno >= logging.WARNING for r in caplog.records
               if r.name == "llama.cpp.mtmd")
