"""The analysis configuration: sampling, frame size, what the cache depends on, and the stages.

Live analysis (the player) and ``narrate prepare`` read the same values from here, so a film
prepared in advance and one analysed while it plays are looked at the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from models.cache import content_key

LOOKAHEAD_FPS = 2.0
RECENT_SECONDS = 30.0
"""The model's context: what was said in the last this many seconds of film."""
RECENT_KEPT = 20
FRAME_WIDTH = 640
CACHE_CONFIG = {"fps": LOOKAHEAD_FPS, "width": FRAME_WIDTH, "version": 3}
"""What cached analysis depends on; version 2: people keep their ids across shots; version 3:
the object detector's people (far ones too) are the pose stage's."""
INSTALL_HINT = "pip install 'video-narrator[perception]'"


def cache_config(model: str = "") -> dict[str, Any]:
    """The analysis cache's key settings; with a model, which one: a catalog name as it is; a
    model file by its name and content (two different files called model.gguf must not share
    answers); a model folder by its name and full path."""
    if not model:
        return dict(CACHE_CONFIG)
    path = Path(model).expanduser()
    key = path.name
    try:
        if path.is_file():
            key = f"{path.name}#{content_key(path)[:16]}"
        elif path.is_dir():
            key = f"{path.name}#{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
    except OSError:  # unreadable now: its answers cannot be told apart from another's
        pass
    return {**CACHE_CONFIG, "vlm": key}


def build_stage(label: str, module: str, cls: str, **options: Any) -> tuple[Any, str]:
    """The stage ``module.cls`` built with ``options`` and ready to use, and ""; or None and
    a note saying why it is off (not installed, broken, or its own ``problem()``)."""
    import importlib  # noqa: PLC0415

    try:
        stage = getattr(importlib.import_module(module), cls)(**options)
        check = getattr(stage, "problem", None)
        problem = check() if check is not None else ""
    except ImportError as exc:
        return None, f"{label} is off: {exc.name or exc} is not installed ({INSTALL_HINT})."
    except Exception as exc:  # noqa: BLE001 - one broken stage must not stop the rest
        return None, f"{label} is off: {exc}."
    if problem:
        return None, f"{label} is off: {problem}"
    return stage, ""


def default_stages() -> tuple[list[Any], list[str]]:
    """The perception stages that can be built here, and notes on those that cannot. The shot
    detector is built first and shared: the scene, pose and face stages ask it about cuts, so
    each frame is measured once. The object detector is shared with the pose stage, whose
    proposals are its person boxes (one detector run a frame for both)."""
    stages: list[Any] = []
    notes: list[str] = []
    shared: dict[str, Any] = {}

    def build(label: str, module: str, cls: str, *uses: str) -> None:
        stage, note = build_stage(label, module, cls,
                                  **{use: shared.get(use) for use in uses})
        if stage is None:
            notes.append(note)
            return
        stages.append(stage)
        shared[{"ShotStage": "cuts", "ObjectStage": "objects"}.get(cls, cls)] = stage

    build("shot changes", "models.perception.shots", "ShotStage")
    build("objects", "models.perception.objects", "ObjectStage")
    build("scene", "models.perception.scene", "SceneStage", "cuts")
    build("people and poses", "models.perception.pose", "PoseStage", "cuts", "objects")
    build("faces", "models.perception.faces", "FaceStage", "cuts")
    build("on-screen text", "models.perception.ocr", "TextStage")
    return stages, notes


def frame_array(frame: tuple[int, int, bytes], width: int = FRAME_WIDTH) -> np.ndarray:
    """mpv's RGB screenshot as an (H, W, 3) array, scaled down to ``width`` at most."""
    w, h, data = frame
    image = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
    if w > width:
        step = int(np.ceil(w / width))
        image = image[::step, ::step]
    return np.ascontiguousarray(image)
