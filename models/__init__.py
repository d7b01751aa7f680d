"""Narration brain: descriptions, timelines, WebVTT description tracks and the on-disk cache."""

from __future__ import annotations

from models.cache import cache_path, content_key
from models.types import Description, Gap, Observation, Timeline
from models.webvtt import (
    TrackWriteError,
    VttProblem,
    VttReadError,
    VttResult,
    format_timestamp,
    parse_timestamp,
    parse_vtt,
    read_vtt,
    write_vtt,
)

__all__ = [
    "Description",
    "Gap",
    "Observation",
    "Timeline",
    "TrackWriteError",
    "VttProblem",
    "VttReadError",
    "VttResult",
    "cache_path",
    "content_key",
    "format_timestamp",
    "parse_timestamp",
    "parse_vtt",
    "read_vtt",
    "write_vtt",
]
