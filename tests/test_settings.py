"""Settings persist between runs, survive damage, and clamp bad values."""

from __future__ import annotations

import errno
import json

from player.core import settings as store
from player.core.settings import Settings


def test_defaults_when_no_file(private_config):
    result = store.load()
    assert result.settings == Settings() and result.problem == ""


def test_round_trip_in_the_config_folder(private_config):
    s = Settings(volume=55, mode="pause", verbosity=3, speech_output="both",
                 keymap={"describe_now": ["F5"]})
    assert store.save(s) == ""
    path = private_config / "video-narrator" / "settings.json"
    assert json.loads(path.read_text())["mode"] == "pause"
    loaded = store.load().settings
    assert loaded.volume == 55 and loaded.verbosity == 3 and loaded.speech_output == "both"
    assert loaded.keymap == {"describe_now": ["F5"]}


def test_damaged_file_gives_defaults_a_message_and_keeps_the_old_file(private_config):
    path = store.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    result = store.load()
    assert result.settings == Settings()
    assert "could not be read" in result.problem
    assert path.with_suffix(".json.bad").read_text() == "{ not json"


def test_out_of_range_values_are_clamped_and_unknown_keys_ignored(private_config):
    path = store.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"volume": 900, "verbosity": 7, "mode": "shout",
                                "speed": 0.01, "from_the_future": 1}))
    s = store.load().settings
    assert (s.volume, s.verbosity, s.mode, s.speed) == (130.0, 3, "auto", 0.25)


def test_full_disk_is_reported_and_the_old_file_survives(private_config, monkeypatch):
    assert store.save(Settings(volume=40)) == ""

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(store.os, "replace", full)
        message = store.save(Settings(volume=90))
    assert "could not be saved" in message and "No space left" in message
    assert store.load().settings.volume == 40
    leftovers = [p.name for p in store.settings_path().parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_doctor_reports_a_damaged_file_and_leaves_it_in_place(private_config):
    """narrate doctor only reads: it says the file is damaged; the player moves it aside."""
    from player.cli.doctor import _models

    path = store.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2")
    check = _models()
    assert "cannot be read" in check.detail and "settings.json.bad" in check.detail
    assert path.read_text() == "[1, 2" and not path.with_suffix(".json.bad").exists()
    assert "could not be read" in store.load().problem
    assert not path.exists() and path.with_suffix(".json.bad").exists()


def test_values_of_the_wrong_type_keep_a_bad_copy_and_the_good_values(private_config):
    path = store.settings_path()
    path.parent.mkdir(parents=True)
    text = json.dumps({"volume": 60, "verbosity": "loud", "narration": "yes", "mode": "pause",
                       "speed": [1], "keymap": {"describe_now": "F5"}, "voice": 3})
    path.write_text(text)
    result = store.load()
    s = result.settings
    assert (s.volume, s.mode) == (60.0, "pause")  # the good values are kept
    assert (s.verbosity, s.narration, s.speed, s.keymap, s.voice) == (2, True, 1.0, {}, "en-us")
    for name in ("verbosity", "narration", "speed", "keymap", "voice"):
        assert name in result.problem
    assert "not valid" in result.problem and "settings.json.bad" in result.problem
    assert path.with_suffix(".json.bad").read_text() == text
    assert json.loads(path.read_text())["verbosity"] == 2  # repaired, so said once
    assert store.load() == store.LoadResult(s)


def test_doctor_reads_wrong_types_without_touching_the_file(private_config):
    path = store.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"verbosity": "loud"}))
    result = store.load(move_damaged=False)
    assert "verbosity" in result.problem
    assert path.read_text() == json.dumps({"verbosity": "loud"})
    assert not path.with_suffix(".json.bad").exists()
