"""The observation store and its cache (models/pipeline/store.py)."""


from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.cache import cache_path
from models.pipeline.store import ObservationStore, config_hash
from models.types import Observation

FRAME = 1 / 25


def _observations() -> list[Observation]:
    return [
        Observation(3.0, "people", "2 people", 0.9,
                    {"count": 2, "people": [{"id": 1, "box": [0.1, 0.2, 0.3, 0.4]}]}),
        Observation(1.0, "shot", "shot change", data={"score": np.float32(0.75)}),
        Observation(2.0, "text", "EXIT", data={"lines": ["EXIT"], "new": True, "box": (0, 0, 1, 1)}),
        Observation(3.0, "shot", "shot change", data={"score": 0.5}),
        Observation(5.5, "scene", "dark", data={"brightness": 0.02, "fade": None,
                                                "colours": np.array(["black"])}),
    ]


def test_store_queries() -> None:
    store = ObservationStore(_observations())
    assert [o.t for o in store] == [1.0, 2.0, 3.0, 3.0, 5.5]
    assert [o.kind for o in store.between(1.0, 3.0)] == ["shot", "text"]
    assert [o.kind for o in store.between(2.0, 6, kinds=["shot", "scene"])] == ["shot", "scene"]
    assert store.between(0, 10, kinds=["faces"]) == []
    assert store.latest(2.9, "shot").t == 1.0
    assert store.latest(3.0, "shot").t == 3.0
    assert store.latest(0.5, "shot") is None and store.latest(9, "faces") is None
    assert store.kinds == ("people", "scene", "shot", "text")
    store.cover(0, 1)
    store.cover(3, 4)
    store.cover(1, 2)
    store.cover(6, 7)
    store.cover(3.5, 6.5)
    assert store.covered == ((0, 2), (3, 7))
    assert store.is_covered(0.5, 1.5) and not store.is_covered(1.5, 3.5)


def test_store_drops_one_kind_and_keeps_what_was_analysed() -> None:
    store = ObservationStore(_observations(), covered=[(0.0, 6.0)])
    before = [(o.t, o.kind) for o in store]
    assert store.drop_kind("shot") == 2
    assert [(o.t, o.kind) for o in store] == [x for x in before if x[1] != "shot"]
    assert store.between(0, 10, kinds=["shot"]) == [] and store.latest(9, "shot") is None
    assert store.covered == ((0.0, 6.0),) and store.kinds == ("people", "scene", "text")
    assert store.drop_kind("shot") == 0


def test_store_json_round_trip() -> None:
    store = ObservationStore(_observations(), covered=[(0.0, 6.0)])
    back = ObservationStore.from_json(store.to_json())
    assert [(o.t, o.kind, o.text, o.confidence) for o in back] == \
        [(o.t, o.kind, o.text, o.confidence) for o in store]
    assert back.latest(3.0, "people").data["people"][0]["box"] == [0.1, 0.2, 0.3, 0.4]
    assert back.latest(3.0, "shot").data == {"score": 0.5}
    assert back.latest(1.0, "shot").data["score"] == pytest.approx(0.75)
    assert back.latest(2.0, "text").data["box"] == [0, 0, 1, 1]
    assert back.latest(6.0, "scene").data == {"brightness": 0.02, "fade": None,
                                              "colours": ["black"]}
    assert back.covered == ((0.0, 6.0),)
    with pytest.raises(ValueError):
        ObservationStore.from_json('{"version": 1, "observations": [{"t": 1}]}')


def test_store_cache_by_content_and_config(clip_dir: Path, small_clip: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(clip_dir / "cache"))
    config = {"fps": 2.0, "stages": ["pose", "faces"], "width": 640}
    store = ObservationStore(_observations(), covered=[(0, 6)])
    assert ObservationStore.load(small_clip, config) is None
    file = store.save(small_clip, config)
    assert file == cache_path(small_clip, "observations", f"-{config_hash(config)}.json")
    assert not [p for p in file.parent.iterdir() if p.name.endswith(".tmp")]

    renamed = clip_dir / "a copy with another name.mp4"
    shutil.copyfile(small_clip, renamed)
    again = ObservationStore.load(renamed, {"width": 640, "stages": ["pose", "faces"], "fps": 2.0})
    assert again is not None and len(again) == 5 and again.covered == ((0, 6),)
    assert ObservationStore.load(renamed, {**config, "fps": 4.0}) is None
    assert config_hash(config) == config_hash(json.loads(json.dumps(config)))

    with caplog.at_level(logging.WARNING, logger="models.pipeline.store"):
        file.write_text('{"version": 1, "config": {"fps": 2.0,')
        assert ObservationStore.load(small_clip, config) is None
        file.write_text(json.dumps({"version": 1, "config": config, "observations": [3]}))
        assert ObservationStore.load(small_clip, config) is None
    assert "ignoring the unreadable observation cache" in caplog.text


def test_store_save_failure_is_logged_and_ignored(clip_dir: Path, small_clip: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocked = clip_dir / "blocked-cache"
    blocked.mkdir()
    (blocked / "video-narrator").write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with caplog.at_level(logging.WARNING, logger="models.pipeline.store"):
        assert ObservationStore(_observations()).save(small_clip, {"fps": 2}) is None
        assert ObservationStore(_observations()).save(clip_dir / "gone.mp4", {"fps": 2}) is None
    assert "could not save the observations" in caplog.text
    assert ObservationStore.load(small_clip, {"fps": 2}) is None
