"""Where the object detector runs: the providers chosen for each ``device``, the device word, and
the fall back to the CPU when a GPU is missing or fails (the real model, on a real photograph)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.perception.objects import ObjectOptions, ObjectStage
from models.perception.providers import (
    CPU,
    CUDA,
    DEVICES,
    MIGRAPHX,
    ROCM,
    choose_providers,
    device_name,
    device_used,
)
from tests.media import grace_hopper

CPU_ONLY = ["AzureExecutionProvider", CPU]
NVIDIA = ["TensorrtExecutionProvider", CUDA, CPU]
AMD = [MIGRAPHX, ROCM, CPU]


# ----- the pure choice -------------------------------------------------------------------------

@pytest.mark.parametrize("available", [CPU_ONLY, NVIDIA, AMD, [CUDA, MIGRAPHX, CPU], []])
def test_the_cpu_is_always_last_and_never_twice(available):
    for device in (*DEVICES, "nonsense", ""):
        choice = choose_providers(device, available)
        assert choice.providers[-1] == CPU and choice.providers.count(CPU) == 1
        assert len(set(choice.providers)) == len(choice.providers)
        # Only providers this onnxruntime has, besides the CPU.
        assert set(choice.providers) - {CPU} <= set(available)
        assert choice.gpu == (choice.providers[0] != CPU)


def test_cpu_is_the_cpu_alone_without_a_note():
    for available in (CPU_ONLY, NVIDIA, AMD):
        assert choose_providers("cpu", available).providers == (CPU,)
        assert choose_providers("cpu", available).note == ""


def test_auto_takes_a_gpu_when_there_is_one_and_the_cpu_quietly_otherwise():
    assert choose_providers("auto", NVIDIA).providers == (CUDA, CPU)  # never TensorRT
    assert choose_providers("auto", AMD).providers == (MIGRAPHX, ROCM, CPU)
    assert choose_providers("auto", [ROCM, CPU]).providers == (ROCM, CPU)
    assert choose_providers("auto", [CUDA, MIGRAPHX, CPU]).providers == (CUDA, MIGRAPHX, CPU)
    quiet = choose_providers("auto", CPU_ONLY)
    assert quiet.providers == (CPU,) and quiet.note == "" and not quiet.gpu


def test_cuda_asked_for():
    assert choose_providers("cuda", NVIDIA) == choose_providers(" CUDA ", NVIDIA)
    assert choose_providers("cuda", NVIDIA).providers == (CUDA, CPU)
    assert choose_providers("cuda", NVIDIA).note == ""
    # An AMD card does not stand in for CUDA.
    for available in (CPU_ONLY, AMD):
        missing = choose_providers("cuda", available)
        assert missing.providers == (CPU,)
        assert missing.note == ("the CUDA provider is not in this onnxruntime: pip install "
                                "onnxruntime-gpu (in place of onnxruntime); the detector runs "
                                "on the CPU")


@pytest.mark.parametrize("device", ["rocm", "migraphx", "MIGraphX", "amd"])
def test_amd_asked_for(device):
    assert choose_providers(device, AMD).providers == (MIGRAPHX, ROCM, CPU)
    assert choose_providers(device, [ROCM, CPU]).providers == (ROCM, CPU)
    assert choose_providers(device, [MIGRAPHX, CPU]).providers == (MIGRAPHX, CPU)
    missing = choose_providers(device, NVIDIA, "the object detector")
    assert missing.providers == (CPU,)
    assert "pip install onnxruntime-migraphx" in missing.note
    assert missing.note.endswith("; the object detector runs on the CPU")


def test_gpu_asked_for_says_when_there_is_none():
    assert choose_providers("gpu", NVIDIA).providers == (CUDA, CPU)
    assert choose_providers("gpu", AMD).providers == (MIGRAPHX, ROCM, CPU)
    none = choose_providers("gpu", CPU_ONLY)
    assert none.providers == (CPU,)
    assert "onnxruntime-gpu" in none.note and "onnxruntime-migraphx" in none.note


@pytest.mark.parametrize("device", ["nonsense", "", "cuda:1", "tpu"])
def test_an_unknown_device_runs_on_the_cpu_and_says_what_is_understood(device):
    choice = choose_providers(device, NVIDIA)
    assert choice.providers == (CPU,)
    assert repr(device) in choice.note and "auto" in choice.note and "cuda" in choice.note
    assert choice.note.endswith("runs on the CPU")


def test_the_device_in_a_word():
    assert device_name(CPU) == "CPU"
    assert device_name(CUDA) == "CUDA GPU"
    assert device_name(MIGRAPHX) == "AMD GPU (MIGraphX)"
    assert device_name(ROCM) == "AMD GPU (ROCm)"
    assert device_name("SomethingNewExecutionProvider") == "SomethingNew"

    class Session:
        def __init__(self, providers: Any) -> None:
            self.providers = providers

        def get_providers(self) -> list[str]:
            if isinstance(self.providers, Exception):
                raise self.providers
            return self.providers

    assert device_used(Session([CUDA, CPU])) == "CUDA GPU"
    assert device_used(Session([])) == "CPU"
    assert device_used(Session(RuntimeError("gone"))) == "CPU"


# ----- the stage on a CPU-only onnxruntime that claims a GPU ----------------------------------

@pytest.fixture(scope="module")
def cpu_boxes() -> list[tuple[str, tuple[float, float, float, float], float]]:
    stage = ObjectStage(ObjectOptions(device="cpu"))
    assert stage.problem() == "" and stage.device == "CPU" and stage.notes() == []
    found = stage.detections(0.0, grace_hopper())
    assert {d.label for d in found} == {"person", "tie"}
    return [(d.label, d.box, d.score) for d in found]


def same(stage: ObjectStage, cpu_boxes: list) -> None:
    found = [(d.label, d.box, d.score) for d in stage.detections(0.0, grace_hopper())]
    assert [f[0] for f in found] == [c[0] for c in cpu_boxes]
    for (_, box, score), (_, cbox, cscore) in zip(found, cpu_boxes, strict=True):
        assert np.allclose(box, cbox, atol=1e-4) and abs(score - cscore) < 1e-4


def test_the_cpu_only_onnxruntime_here_runs_auto_on_the_cpu_without_a_note(cpu_boxes):
    stage = ObjectStage()
    assert stage.options.device == "auto"
    assert stage.device == "CPU" and stage.notes() == [] and stage.problem() == ""
    same(stage, cpu_boxes)


def test_a_claimed_cuda_that_cannot_run_leaves_the_detector_on_the_cpu(monkeypatch, cpu_boxes):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnxruntime warns that it has no CUDA provider
        stage = ObjectStage(ObjectOptions(device="cuda"))
    assert stage.problem() == "" and stage.device == "CPU"
    (note,) = stage.notes()
    assert "GPU" in note and note.endswith("runs on the CPU")
    same(stage, cpu_boxes)


def test_a_gpu_session_that_raises_is_retried_on_the_cpu(monkeypatch, cpu_boxes):
    real = ort.InferenceSession
    asked: list[list[str]] = []

    def session(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        asked.append(list(providers))
        if providers[0] != CPU:
            raise RuntimeError("CUDA failure 2: out of memory")
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    stage = ObjectStage()
    assert asked == [[CUDA, CPU], [CPU]]
    assert stage.problem() == "" and stage.device == "CPU"
    (note,) = stage.notes()
    assert "could not start on the GPU" in note and "out of memory" in note
    assert note.endswith("it runs on the CPU")
    same(stage, cpu_boxes)


class FailingGpu:
    """A real CPU session that says it runs on CUDA and runs out of memory after ``good`` runs."""

    def __init__(self, inner: Any, good: int) -> None:
        self.inner, self.good = inner, good

    def get_inputs(self) -> Any:
        return self.inner.get_inputs()

    def get_providers(self) -> list[str]:
        return [CUDA, CPU]

    def run(self, *args: Any) -> Any:
        if self.good <= 0:
            raise RuntimeError("CUDA error: out of memory")
        self.good -= 1
        return self.inner.run(*args)


def gpu_that_fails_after(monkeypatch, good: int) -> list[list[str]]:
    real = ort.InferenceSession
    asked: list[list[str]] = []

    def session(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        asked.append(list(providers))
        inner = real(path, sess_options=sess_options, providers=[CPU])
        return FailingGpu(inner, good) if providers[0] != CPU else inner

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    return asked


def test_a_gpu_that_fails_its_first_run_is_left_for_the_cpu(monkeypatch, cpu_boxes):
    asked = gpu_that_fails_after(monkeypatch, 0)
    stage = ObjectStage()
    assert asked == [[CUDA, CPU], [CPU]] and stage.problem() == "" and stage.device == "CPU"
    assert "out of memory" in stage.notes()[0]
    same(stage, cpu_boxes)


def test_a_gpu_that_fails_while_the_film_plays_is_left_for_the_cpu(monkeypatch, cpu_boxes):
    asked = gpu_that_fails_after(monkeypatch, 2)  # the load's check and one frame
    stage = ObjectStage()
    assert stage.device == "CUDA GPU" and stage.notes() == []
    frame = np.zeros((90, 160, 3), dtype=np.uint8)
    assert stage.process(0.0, frame)[0].data["count"] == 0  # on the "GPU"
    # The next frame fails there: it is run again on the CPU and the stage goes on.
    (obs,) = stage.process(1.0, grace_hopper())
    assert {o["label"] for o in obs.data["objects"]} == {"person", "tie"}
    assert asked == [[CUDA, CPU], [CPU]] and stage.device == "CPU" and stage.problem() == ""
    (note,) = stage.notes()
    assert "stopped working on the CUDA GPU" in note and note.endswith("it runs on the CPU")
    stage.reset()
    same(stage, cpu_boxes)


def test_a_damaged_model_is_a_problem_not_a_gpu_note(monkeypatch, tmp_path):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    path = tmp_path / "nanodet.onnx"
    path.write_bytes(b"not an onnx model" * 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage = ObjectStage(ObjectOptions(model=path))
    assert "object detector's model file" in stage.problem() and stage.notes() == []
    assert stage.device == "" and stage.detections(0.0, grace_hopper()) == []
