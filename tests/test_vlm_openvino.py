"""The OpenVINO engine on a tiny random-weight Idefics3 (SmolVLM) model, converted here with
the real converter and run with the real OpenVINO runtime: it answers as transformers does,
streams, batches, cleans; int8 and int4 forms are smaller and answer; the loader chooses it on
a computer without a GPU; a missing or damaged folder, a missing library and a full disk are
one sentence each, and lose nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the OpenVINO tests need: pip install "
                    "'video-narrator[openvino]'")

from models import catalog  # noqa: E402
from models.vlm import VlmError, VlmRequest, clean  # noqa: E402
from models.vlm.hf import HfVlm  # noqa: E402
from models.vlm.loader import load_vlm, open_vlm, usable_gpu  # noqa: E402
from models.vlm.openvino import OvVlm, read_form  # noqa: E402
from models.vlm.openvino_convert import PARTS, convert, needed_bytes  # noqa: E402
from player.cli import doctor  # noqa: E402
from player.cli import models_cmd as models_cli  # noqa: E402
from tests.tiny_vlm import build_tiny_vlm  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "smolvlm-256m-hf"


def image(seed: int, height: int = 90, width: int = 160) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.rstrip().endswith(".")


def install(folder: Path) -> None:
    """Mark a model folder as a complete catalog download (what narrate models pull writes)."""
    files = [{"name": p.name, "size": p.stat().st_size} for p in sorted(folder.iterdir())]
    (folder / catalog.MANIFEST).write_text(json.dumps(
        {"format": 1, "name": NAME, "backend": "transformers", "files": files}))


@pytest.fixture(scope="module")
def data_home(tmp_path_factory: pytest.TempPathFactory):
    """A models folder holding the tiny model as the catalog's transformers model, with its
    float32 OpenVINO form converted beside it."""
    home = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_DATA_HOME", str(home))
    mp.setenv("XDG_CACHE_HOME", str(home / "cache"))
    source = build_tiny_vlm(catalog.models_dir() / NAME)
    install(source)
    convert(source, "fp32")
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def source(data_home: Path) -> Path:
    return catalog.models_dir() / NAME


@pytest.fixture(scope="module")
def form(source: Path) -> Path:
    return catalog.openvino_form(source, "fp32")


@pytest.fixture(scope="module")
def engines(source: Path, form: Path):
    """The OpenVINO engine (in float32, to compare with transformers) and the transformers one
    on the same model."""
    ov = OvVlm(form, precision="f32")
    hf = HfVlm(source, device="cpu")
    ov.load()
    hf.load()
    yield ov, hf
    ov.close()
    hf.close()


# ----- answering -------------------------------------------------------------------------------
def test_converted_model_answers_as_transformers_does(engines) -> None:
    ov, hf = engines
    for seed, prompt in ((0, "Describe this."), (1, "Say what changed in one sentence.")):
        request = VlmRequest(image(seed), prompt, max_new_tokens=12)
        raw = "".join(ov.stream(request))
        assert raw and raw == "".join(hf.stream(request))
        assert ov.describe(request) == hf.describe(request)
    assert ov.device == "cpu" and ov.weights == "fp32" and ov.notes == [] and ov.off == ""
    assert 0 < ov.timing.encoder < ov.timing.prompt < ov.timing.total
    assert ov.timing.tokens == 12


def test_answer_streams_piece_by_piece_and_stops_when_dropped(engines) -> None:
    ov, _ = engines
    request = VlmRequest(image(2), "Describe this.", max_new_tokens=16)
    pieces = list(ov.stream(request))
    assert len(pieces) > 3
    ov.timing = None
    stream = ov.stream(request)
    assert next(stream) == pieces[0]
    assert ov.timing is None  # the answer is still being written
    stream.close()  # the listener moved on: decoding stops and the engine is free again
    assert ov.timing is None
    assert "".join(ov.stream(request)) == "".join(pieces)


def test_answers_are_cleaned_for_speech(engines) -> None:
    ov, _ = engines
    request = VlmRequest(image(3), "Describe this.", max_new_tokens=12, max_words=2)
    raw = "".join(ov.stream(request))
    answer = ov.describe(request)
    assert answer == clean(raw, max_words=2) and answer != raw
    assert len(answer.split()) <= 2 and answer.endswith(".")


def test_batch_gives_the_answers_of_one_by_one(engines) -> None:
    ov, hf = engines
    requests = [VlmRequest(image(4), "Describe this.", max_new_tokens=10),
                VlmRequest(image(5, 120, 120), "Say what changed now, please.", max_new_tokens=6),
                VlmRequest(image(6), "Who is there?", max_new_tokens=8, max_words=3)]
    batch = ov.describe_batch(requests)
    assert batch == [ov.describe(r) for r in requests]
    assert batch == hf.describe_batch(requests)
    assert len(set(batch)) == 3 and ov.describe_batch([]) == []


def test_int8_and_int4_forms_are_smaller_and_answer(source: Path, form: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert models_cli.main(["convert", NAME, "--to", "openvino", "--weights", "int8"]) == 0
    out = capsys.readouterr().out
    int8 = catalog.openvino_form(source, "int8")
    assert f"Wrote {int8}" in out
    int4 = convert(source, "int4").path
    language = Path(PARTS["language"]).with_suffix(".bin").name
    sizes = {p: (p / language).stat().st_size for p in (form, int8, int4)}
    assert sizes[int8] < 0.5 * sizes[form] and sizes[int4] < sizes[int8]
    request = VlmRequest(image(7), "Describe this.", max_new_tokens=8)
    for folder, weights in ((int8, "int8"), (int4, "int4")):
        engine = OvVlm(folder)
        assert engine.describe(request) and engine.weights == weights
        assert len(engine.describe_batch([request, request])) == 2
        engine.close()
    assert list(catalog.openvino_forms(source)) == ["int8", "fp32", "int4"]
    models_cli.main(["list"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"{NAME}:"))
    assert "installed" in line and "OpenVINO form int8 and fp32 and int4" in line
    # an existing form is kept unless asked to overwrite
    assert models_cli.main(["convert", NAME, "--to", "openvino", "--weights", "int8"]) == 1
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and one_sentence(err)
    shutil.rmtree(int4)
    shutil.rmtree(int8)


# ----- choosing the engine ---------------------------------------------------------------------
def test_loader_chooses_openvino_without_a_gpu(source: Path, form: Path,
                                              tmp_path: Path) -> None:
    chosen = open_vlm(NAME)
    assert isinstance(chosen, OvVlm if not usable_gpu() else HfVlm)
    assert isinstance(open_vlm(NAME, engine="transformers"), HfVlm)
    by_hand = open_vlm(NAME, engine="openvino")
    assert isinstance(by_hand, OvVlm) and by_hand.path == form
    assert isinstance(open_vlm(form), OvVlm)  # the form's own path
    assert catalog.resolve(form).backend == "openvino"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "mmproj-m.gguf").write_bytes(b"GGUF")
    with pytest.raises(VlmError, match="is a GGUF model for llama.cpp; the openvino engine"):
        open_vlm(tmp_path / "m.gguf", engine="openvino")
    plain = tmp_path / "plain"
    shutil.copytree(source, plain)  # no form beside it
    assert isinstance(open_vlm(plain), HfVlm)
    with pytest.raises(VlmError, match="has no OpenVINO form yet; make one with: narrate"):
        open_vlm(plain, engine="openvino")


def test_a_damaged_form_gives_way_to_transformers_with_a_note(source: Path, form: Path,
                                                             tmp_path: Path) -> None:
    if usable_gpu():
        pytest.skip("with a GPU the transformers engine is chosen anyway")
    model = tmp_path / "model"
    shutil.copytree(source, model)
    copy = catalog.openvino_form(model, "fp32")
    shutil.copytree(form, copy)
    xml = copy / PARTS["language"]
    xml.write_bytes(b"x" * xml.stat().st_size)  # same size, unreadable
    engine = load_vlm(model)
    assert isinstance(engine, HfVlm)
    assert len(engine.notes) == 1 and "did not load" in engine.notes[0]
    assert "transformers engine describes instead" in engine.notes[0]
    assert engine.describe(VlmRequest(image(8), "Describe this.", max_new_tokens=6))
    (copy / PARTS["vision"]).with_suffix(".bin").unlink()  # now read_form sees it at once
    engine = open_vlm(model)
    assert isinstance(engine, HfVlm) and "is damaged" in engine.notes[0]


# ----- one sentence for what is wrong ----------------------------------------------------------
def test_missing_or_damaged_folder_is_one_sentence(form: Path, tmp_path: Path) -> None:
    missing = OvVlm(tmp_path / "nowhere")
    problem = missing.problem()
    assert problem.startswith("There is no OpenVINO model folder") and one_sentence(problem)
    with pytest.raises(VlmError) as caught:
        missing.load()
    assert str(caught.value) == problem

    copy = tmp_path / "copy"
    shutil.copytree(form, copy)
    (copy / catalog.OPENVINO_MANIFEST).unlink()  # a conversion that never finished
    assert "incomplete" in OvVlm(copy).problem() and one_sentence(OvVlm(copy).problem())

    shutil.rmtree(copy)
    shutil.copytree(form, copy)
    weights = (copy / PARTS["language"]).with_suffix(".bin")
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    problem = OvVlm(copy).problem()
    assert "damaged" in problem and weights.name in problem and one_sentence(problem)
    with pytest.raises(VlmError, match="wrong size"):
        OvVlm(copy).describe(VlmRequest(image(0), "Describe this."))

    shutil.rmtree(copy)
    shutil.copytree(form, copy)
    xml = copy / PARTS["vision"]
    xml.write_bytes(b"<" * xml.stat().st_size)  # the right size, but not IR
    engine = OvVlm(copy)
    assert engine.problem() == ""
    with pytest.raises(VlmError) as caught:
        engine.load()
    message = str(caught.value)
    assert "cannot be used" in message and xml.name in message and one_sentence(message)


def test_missing_openvino_library_is_one_sentence(form: Path, source: Path) -> None:
    # A child process where openvino cannot be imported (the library is not installed there).
    script = (
        "import sys; sys.modules['openvino'] = None\n"
        "from models.vlm.openvino import OvVlm\n"
        "from models.vlm.openvino_convert import convert\n"
        f"print(OvVlm({str(form)!r}).problem())\n"
        f"try: convert({str(source)!r}, 'fp16')\n"
        "except Exception as exc: print(exc)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("The openvino package is not installed")
    assert lines[1].startswith("Converting to OpenVINO needs openvino")
    assert all("video-narrator[openvino]" in line for line in lines)
    assert not catalog.openvino_form(source, "fp16").exists()


def test_conversion_refuses_what_it_cannot_convert(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(VlmError, match="No model folder"):
        convert(tmp_path / "nowhere")
    with pytest.raises(VlmError, match="weights can be"):
        convert(tmp_path, "int3")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    (tmp_path / "mmproj-m.gguf").write_bytes(b"GGUF")
    assert models_cli.main(["convert", str(gguf), "--to", "openvino"]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a GGUF model for llama.cpp" in err and one_sentence(err)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real file system of a few megabytes (a tmpfs), for running out of disk space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"a small file system cannot be mounted here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_during_conversion_keeps_nothing(source: Path, small_disk: Path) -> None:
    model = small_disk / "model"
    shutil.copytree(source, model, ignore=shutil.ignore_patterns(catalog.MANIFEST))
    before = sorted(p.name for p in model.iterdir())
    free = shutil.disk_usage(small_disk).free
    assert needed_bytes(model, "fp32") < free  # the check before converting lets it start

    def fill(line: str) -> None:  # someone else fills the disk while the model is converted
        if "language model" in line:
            (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free
                                                         - 4096))

    with pytest.raises(VlmError) as caught:
        convert(model, "fp32", say=fill)
    message = str(caught.value)
    assert message.startswith("The disk ran out of space while converting model")
    assert one_sentence(message) and "the model is as it was" in message
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "model"]
    assert sorted(p.name for p in model.iterdir()) == before

    (small_disk / "filler").unlink()
    (small_disk / "filler").write_bytes(b"\0" * (free - needed_bytes(model, "fp32") // 2))
    with pytest.raises(VlmError) as caught:
        convert(model, "fp32")
    message = str(caught.value)
    assert "needs about" in message and "nothing was written" in message
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "model"]


def test_form_folder_is_read_back(form: Path) -> None:
    manifest = read_form(form)
    assert manifest["weights"] == "fp32" and manifest["layers"] == 2
    assert {f["name"] for f in manifest["files"]} >= set(PARTS.values())


def test_doctor_names_the_openvino_devices() -> None:
    assert doctor._openvino in doctor.CHECKS
    check = doctor._openvino()
    assert check.ok and "devices: CPU" in check.detail
    assert f"{check.name}: OK." in doctor.report([check])
