"""Checks on a file before it is handed to libmpv, and human messages for what mpv reports.

Every message names the file, says what is wrong in plain words and, where there is one, what
to do. They are shown, announced to the screen reader and spoken.
"""

from __future__ import annotations

from pathlib import Path

from models.files import check_path

__all__ = ["check_path", "codec_error_message", "load_error_message"]

# libmpv error codes (client.h, enum mpv_error) that end-file reports for a file.
_MPV_LOADING_FAILED = -13
_MPV_UNKNOWN_FORMAT = -17
_MPV_NOTHING_TO_PLAY = -18
_MPV_UNSUPPORTED = -16


def load_error_message(path: str, mpv_error: int) -> str:
    """Turn libmpv's end-file error code into a message for the user."""
    name = Path(path).name
    if mpv_error == _MPV_UNKNOWN_FORMAT:
        return (f"{name} is not a format the player can open. It may be damaged, or not a video "
                f"at all.")
    if mpv_error == _MPV_NOTHING_TO_PLAY:
        return f"{name} has no audio or video the player can play."
    if mpv_error == _MPV_UNSUPPORTED:
        return f"{name} uses a format this player does not support."
    return f"{name} could not be played. It may be damaged or incomplete."


def codec_error_message(path: str) -> str:
    """The file opened but its picture or sound is in a codec no installed decoder handles."""
    return (f"{Path(path).name} uses a video or audio format (codec) this player cannot decode. "
            f"Try converting it, for example with: ffmpeg -i INPUT -c:v libx264 -c:a aac OUTPUT.mp4")
