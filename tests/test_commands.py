"""The keyboard command table: complete, free of clashes, and safe for screen reader users."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QKeySequence

from player.core.commands import (
    BY_NAME,
    COMMANDS,
    KeymapError,
    effective_keys,
    help_text,
    validate_keymap,
)

REQUIRED = ["play_pause", "seek_back_5", "seek_forward_5", "seek_back_30", "seek_forward_30",
            "volume_up", "volume_down", "speed_up", "speed_down", "describe_now", "repeat_last",
            "ask", "verbosity_up", "verbosity_down", "toggle_narration", "toggle_mode",
            "open_file", "quit", "help"]


def test_every_required_command_has_keys_and_help():
    for name in REQUIRED:
        cmd = BY_NAME[name]
        assert cmd.keys, name
        assert cmd.help.endswith("."), name
    assert "F1" in BY_NAME["help"].keys and "?" in BY_NAME["help"].keys


def test_default_keys_are_unique_parse_and_avoid_screen_reader_modifiers():
    validate_keymap({c.name: c.keys for c in COMMANDS})
    for c in COMMANDS:
        for key in c.keys:
            seq = QKeySequence(key)
            assert not seq.isEmpty(), key
            assert "Ins" not in key and "CapsLock" not in key


def test_overrides_replace_defaults_and_unknown_names_are_ignored():
    keys = effective_keys({"describe_now": ["F5"], "no_such_command": ["X"]})
    assert keys["describe_now"] == ("F5",)
    assert "no_such_command" not in keys
    assert keys["play_pause"] == BY_NAME["play_pause"].keys


def test_clashing_keys_are_refused_with_both_titles():
    with pytest.raises(KeymapError, match="both"):
        validate_keymap({"describe_now": ["D"], "repeat_last": ["d"]})


@pytest.mark.parametrize("key", ["Insert+D", "CapsLock+D", "Ins+Space"])
def test_screen_reader_modifier_keys_are_refused(key):
    with pytest.raises(KeymapError, match="screen readers"):
        validate_keymap({"describe_now": [key]})


def test_help_text_lists_every_command_in_plain_text():
    text = help_text({"describe_now": ["F5"]})
    for c in COMMANDS:
        assert c.title in text
    assert "Describe now: F5." in text
    assert "Playback commands" in text
