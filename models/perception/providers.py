"""Which onnxruntime execution providers a detector asks for, and the device it ended up on.

A leaf module with no onnxruntime import: :func:`choose_providers` is a pure function of the
``device`` option ("auto", "cpu", "gpu", "cuda", "rocm", "migraphx" or "amd") and of the
providers this onnxruntime has (``onnxruntime.get_available_providers()``). The list it gives
always ends with the CPU provider, so a session built from it can always run; when the device
asked for is not in this onnxruntime it says so in a plain sentence with the package to install.

:func:`device_name` turns the provider a session really uses (``session.get_providers()[0]``:
onnxruntime quietly drops a GPU provider that cannot start) into a short word: "CPU",
"CUDA GPU", "AMD GPU (MIGraphX)".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
MIGRAPHX = "MIGraphXExecutionProvider"
ROCM = "ROCMExecutionProvider"

DEVICES = ("auto", "cpu", "gpu", "cuda", "rocm", "migraphx", "amd")
"""The values the ``device`` option understands (any case, spaces around ignored)."""

AMD = (MIGRAPHX, ROCM)
"""AMD's providers, preferred first: MIGraphX (ROCm's provider is being retired for it)."""

GPUS = (CUDA, *AMD)
"""Every GPU provider "auto" and "gpu" may use, preferred first."""

_NAMES = {
    CPU: "CPU",
    CUDA: "CUDA GPU",
    MIGRAPHX: "AMD GPU (MIGraphX)",
    ROCM: "AMD GPU (ROCm)",
    "TensorrtExecutionProvider": "NVIDIA GPU (TensorRT)",
    "DmlExecutionProvider": "GPU (DirectML)",
    "CoreMLExecutionProvider": "Apple Neural Engine (Core ML)",
    "OpenVINOExecutionProvider": "OpenVINO",
}

_MISSING = {
    "cuda": ("the CUDA provider is not in this onnxruntime: pip install onnxruntime-gpu "
             "(in place of onnxruntime)"),
    "amd": ("the AMD GPU providers (MIGraphX, ROCm) are not in this onnxruntime: pip install "
            "onnxruntime-migraphx (in place of onnxruntime)"),
    "gpu": ("no GPU provider is in this onnxruntime: pip install onnxruntime-gpu for an NVIDIA "
            "card, or onnxruntime-migraphx for an AMD one"),
}


@dataclass(frozen=True)
class ProviderChoice:
    """The providers to pass to ``InferenceSession``, best first and the CPU last, and a plain
    sentence when the device asked for cannot be had ("" when all is as asked)."""

    providers: tuple[str, ...]
    note: str = ""

    @property
    def gpu(self) -> bool:
        """Whether a provider other than the CPU's comes first."""
        return self.providers[0] != CPU


def choose_providers(device: str, available: Iterable[str], what: str = "the detector"
                     ) -> ProviderChoice:
    """The providers for ``device`` among ``available`` (onnxruntime's own list).

    - "cpu": the CPU alone.
    - "auto": each GPU provider that is available (CUDA, then MIGraphX, then ROCm), then the
      CPU; no note when there is none, the CPU is then the expected device.
    - "cuda": CUDA then the CPU; "rocm" or "migraphx": MIGraphX and ROCm (those available)
      then the CPU; "gpu": like "auto", but it is noted when no GPU provider is there.
    - Anything else: the CPU, with a note naming the values understood.

    When the asked provider is missing, the CPU alone and a note that ``what`` runs on the CPU.
    """
    have = set(available)
    asked = str(device).strip().lower()
    on_cpu = f"{what} runs on the CPU"
    if asked == "cpu":
        return ProviderChoice((CPU,))
    wanted: tuple[str, ...]
    if asked in ("auto", "gpu"):
        wanted, missing = GPUS, _MISSING["gpu"] if asked == "gpu" else ""
    elif asked == "cuda":
        wanted, missing = (CUDA,), _MISSING["cuda"]
    elif asked in ("rocm", "migraphx", "amd"):
        wanted, missing = AMD, _MISSING["amd"]
    else:
        return ProviderChoice((CPU,), f"the device {device!r} is not one of "
                                      f"{', '.join(DEVICES)}; {on_cpu}")
    found = tuple(p for p in wanted if p in have)
    if not found:
        return ProviderChoice((CPU,), f"{missing}; {on_cpu}" if missing else "")
    return ProviderChoice((*found, CPU))


def device_name(provider: str) -> str:
    """A short word for the device behind an onnxruntime provider: "CPU", "CUDA GPU",
    "AMD GPU (MIGraphX)"; an unknown provider by its name without "ExecutionProvider"."""
    if provider in _NAMES:
        return _NAMES[provider]
    return provider.removesuffix("ExecutionProvider") or "CPU"


def device_used(session: Any) -> str:
    """The device an onnxruntime session really runs on (its first provider), as
    :func:`device_name` says it; "CPU" when the session does not say."""
    try:
        providers = list(session.get_providers())
    except Exception:  # noqa: BLE001 - a session that cannot say runs on the CPU fallback
        return "CPU"
    return device_name(str(providers[0])) if providers else "CPU"
