"""A model folder's own Python code never runs.

The folder built here is what an attacker would publish: a config.json with ``auto_map`` naming
a module of the folder, and that module, which leaves a marker file the moment it is imported.
transformers would ask on the terminal whether to run it (a question the player's user never
sees) and run it on "y"; the narrator must refuse the folder with one sentence and never import
the module, whichever way it is loaded.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.vlm import hf
from models.vlm.base import VlmError
from models.vlm.loader import load_vlm
from tests.media import make_clip

pytest.importorskip("transformers")

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("the model folder's code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


def evil_folder(root: Path) -> tuple[Path, Path]:
    folder, marker = root / "evil-model", root / "marker.txt"
    folder.mkdir()
    code = EVIL.format(marker=str(marker))
    (folder / "configuration_evil.py").write_text(code, encoding="utf-8")
    (folder / "modeling_evil.py").write_text(code, encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil",
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                     "AutoModelForImageTextToText": "modeling_evil.EvilModel",
                     "AutoProcessor": "modeling_evil.EvilProcessor"},
    }), encoding="utf-8")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    return folder, marker


def test_a_folder_that_names_its_own_code_is_refused_in_one_sentence(tmp_path) -> None:
    folder, marker = evil_folder(tmp_path)
    engine = hf.HfVlm(folder)
    problem = engine.problem()
    assert "never runs code from a model folder" in problem
    assert "config.json" in problem and "configuration_evil.py" in problem
    assert problem.count(". ") == 0  # one sentence
    with pytest.raises(VlmError, match="never runs code"):
        load_vlm(folder)
    assert not marker.exists()


def test_the_code_never_runs_even_past_the_check(tmp_path, monkeypatch) -> None:
    """Every from_pretrained() refuses the folder's code by itself (trust_remote_code=False):
    with the check taken away, loading fails at once instead of asking, and nothing runs."""
    folder, marker = evil_folder(tmp_path)
    monkeypatch.setattr(hf, "code_refusal", lambda _folder: "")
    engine = hf.HfVlm(folder)
    assert engine.problem() == ""
    began = time.monotonic()
    with pytest.raises(VlmError):
        engine.load()
    assert time.monotonic() - began < 10  # transformers' question waits 15 s for an answer
    assert not marker.exists()


def test_other_configs_that_name_code_are_found_too(tmp_path) -> None:
    folder, _marker = evil_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["auto_map"]
    (folder / "config.json").write_text(json.dumps(config))
    assert hf.code_refusal(folder) == ""
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    assert "tokenizer_config.json" in hf.code_refusal(folder)


def test_prepare_refuses_the_folder_and_never_asks(tmp_path) -> None:
    """`narrate prepare --model FOLDER film` in a terminal: the refusal is printed, nothing
    waits for an answer, and the folder's code never runs."""
    folder, marker = evil_folder(tmp_path)
    film = make_clip(tmp_path, seconds=2.0)
    env_home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "player.cli", "prepare", "--model", str(folder), str(film)],
        input="y\ny\n", capture_output=True, text=True, timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(env_home),
             "XDG_CACHE_HOME": str(tmp_path / "cache"),
             "XDG_CONFIG_HOME": str(tmp_path / "config")},
        cwd=Path(__file__).resolve().parent.parent)
    assert "never runs code from a model folder" in proc.stderr
    assert proc.returncode == 1
    assert not marker.exists()
