"""The perception stages a worker builds, chosen by name, so the choice travels to a worker
as a few strings (a stage itself holds models and cannot be sent).

A name is one of :data:`STAGES` ("shots", "scene", "people", "faces", "text", "objects") or
``module:Class`` for a stage class of one's own (a test's, say) that the workers can import.
"""

from __future__ import annotations

from typing import Any

from models.pipeline.config import build_stage, default_stages

STAGES: dict[str, str] = {
    "shots": "models.perception.shots:ShotStage",
    "scene": "models.perception.scene:SceneStage",
    "people": "models.perception.pose:PoseStage",
    "faces": "models.perception.faces:FaceStage",
    "text": "models.perception.ocr:TextStage",
    "objects": "models.perception.objects:ObjectStage",
}


def unknown_stages(names: tuple[str, ...]) -> list[str]:
    """The names that are neither known stages nor ``module:Class`` paths."""
    return [n for n in names if n not in STAGES and ":" not in n]


def build_stages(names: tuple[str, ...], keep_partial: bool = False,
                 ) -> tuple[list[Any], list[str]]:
    """The stages named (every stage that can be built, for none) and notes on those that
    could not be built. A chosen subset adds a note of its own unless ``keep_partial``, so the
    Preparer does not cache it as the full analysis."""
    if not names:
        return default_stages()
    stages: list[Any] = []
    notes: list[str] = []
    for name in names:
        module, _, cls = STAGES.get(name, name).partition(":")
        stage, note = build_stage(name, module, cls)
        if stage is None:
            notes.append(note)
        else:
            stages.append(stage)
    if not keep_partial and stages:
        notes.append(f"Only these stages run: {', '.join(names)}; the analysis is not cached.")
    return stages, notes
