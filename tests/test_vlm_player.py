"""A vision-language model in the player: describe now and questions go to the model (a tiny
random-weight SmolVLM-architecture model built here, loaded by the real transformers code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from player.app import LaunchOptions, build_controller
from player.settings import Settings
from tests.conftest import pump, wait_for
from tests.tiny_vlm import build_tiny_vlm

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny")


@pytest.fixture
def controller(qapp, tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, Settings(narration=False, vlm_model=str(tiny_model)))
    video = tmp_path / "street.mp4"
    shutil.copy(DEMO, video)
    c.open(video)
    wait_for(lambda: c.perception.available and c.perception.has_vlm, timeout=60)
    c.playback.seek_absolute(6.0)
    wait_for(lambda: abs((c.playback.mpv.time_pos or 0) - 6.0) < 0.5, timeout=5)
    pump(0.3)
    yield c
    c.close()


def test_describe_now_and_questions_go_to_the_model(controller):
    c = controller
    said = []
    c.narrator.said.connect(said.append)
    c.describe_now()
    wait_for(lambda: said, timeout=30)
    assert said[0].source == "now" and said[0].text.strip()
    assert "no vision-language model" not in said[0].text
    c.ask("What is the man doing?")
    wait_for(lambda: len(said) == 2, timeout=30)
    assert said[1].source == "answer" and said[1].text.strip()
    assert "can't answer free questions" not in said[1].text


def test_a_broken_model_is_reported_and_the_detectors_still_answer(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"}, speech_options={"ao": "null"})
    c = build_controller(None, opts, Settings(narration=False, vlm_model=str(broken)))
    try:
        messages = []
        c.message.connect(lambda text, kind: messages.append(text))
        wait_for(lambda: any("vision-language model could not be used" in m
                             for m in messages), timeout=30)
        assert not c.perception.has_vlm
    finally:
        c.close()
