"""Options given on the command line apply to that run only; what the user changes in the
player is saved, on top of the settings saved before."""

from __future__ import annotations

import json

from player.app import LaunchOptions, build_controller
from player.core import settings as store
from player.core.settings import Settings

ONE_OFF = {"narration": False, "verbosity": 3, "mode": "pause", "live_analysis": False,
           "vlm_model": "/no/such/model", "wait_for_narrator": False}


def controller_with_overrides(saved: Settings):
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"},
                         speech_options={"ao": "null"}, overrides=dict(ONE_OFF))
    return build_controller(None, opts, saved)


def test_one_off_options_are_used_but_never_saved(qapp, private_config, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    saved = Settings(volume=70, voice="en-gb")
    assert store.save(saved) == ""
    controller = controller_with_overrides(saved)
    try:
        s = controller.settings
        assert (s.narration, s.verbosity, s.mode, s.live_analysis, s.vlm_model) == (
            False, 3, "pause", False, "/no/such/model")
        controller.change_volume(-10)  # the user changes one thing in the player
        assert controller.settings.verbosity == 3  # the one-off options still apply
    finally:
        controller.close()
    on_disk = json.loads(store.settings_path().read_text())
    assert on_disk["volume"] == 60  # what the user changed is saved
    assert on_disk["voice"] == "en-gb"  # with what was saved before
    for name, value in ONE_OFF.items():  # and none of the one-off options
        assert on_disk[name] == getattr(Settings(), name) != value
    assert store.load().problem == ""


def test_a_one_off_option_the_user_then_changes_is_saved(qapp, private_config, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    controller = controller_with_overrides(Settings())
    try:
        controller.set_verbosity(1)  # from the command line's 3: the user's own choice
    finally:
        controller.close()
    on_disk = json.loads(store.settings_path().read_text())
    assert on_disk["verbosity"] == 1
    assert on_disk["narration"] is True and on_disk["mode"] == Settings().mode
