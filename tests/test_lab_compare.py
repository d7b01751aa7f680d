"""``narrate lab compare``: the detector narrator, a tiny transformers model (two prompt
variants) and a tiny GGUF model on a dataset made from a generated described film; the table,
the picture and the MLflow runs, in a local SQLite store and on a real MLflow server started on
127.0.0.1 by ``narrate lab ui``."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from models.lab import LabError
from models.lab.compare import compare, evaluate
from models.lab.dataset import Example, load_examples
from models.lab.narrators import Narrator, NarratorSpec, parse_spec
from models.lab.speed import Timed
from models.lab.tracking import Tracker
from tests.lab_media import make_film_dataset
from tests.tiny_vlm import build_tiny_vlm

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lab")
    return {"dataset": make_film_dataset(folder, test_share=0.5),
            "tiny": build_tiny_vlm(folder / "tiny")}


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "data"


def _tiny_gguf(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_gguf", ROOT / "scripts" / "tiny_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_gguf(folder)[0]


def test_compare_writes_table_picture_and_runs(lab, data_home, tmp_path, capsys) -> None:
    from player.cli.main import main

    narrators = ["detector@stages=shots+objects", str(lab["tiny"]),
                 f"{lab['tiny']}@prompt=brief,repetition_penalty=1.3",
                 f"{lab['tiny']}@quantize=8bit",
                 str(tmp_path / "missing-model.gguf")]
    if importlib.util.find_spec("llama_cpp") is not None:
        narrators.append(str(_tiny_gguf(tmp_path / "gguf")))
    out = tmp_path / "out"
    code = main(["lab", "compare", "--experiment", "cmp", str(lab["dataset"]), *narrators,
                 "-o", str(out)])
    said = capsys.readouterr().out
    assert code == 0, said
    assert "missing-model.gguf" in said and "is left out" in said
    ran = len(narrators) - 1
    with open(out / "comparison.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ran
    labels = {r["narrator"] for r in rows}
    assert {"detector (shots+objects)", "tiny (standard)", "tiny (standard, 8bit)",
            "tiny (brief, repetition_penalty=1.3)"} <= labels
    qualities = [float(r["quality"]) for r in rows]
    assert qualities == sorted(qualities, reverse=True)
    for r in rows:
        assert 0.0 <= float(r["quality"]) <= 1.0
        assert float(r["total_s"]) > 0 and float(r["peak_memory_mb"]) > 10
        assert r["device"] == "cpu"
    vlm = next(r for r in rows if r["narrator"] == "tiny (standard)")
    assert float(vlm["tokens_per_s"]) > 0 and float(vlm["first_sentence_s"]) <= float(
        vlm["total_s"]) + 1e-6
    table = (out / "comparison.md").read_text(encoding="utf-8")
    assert table.startswith("| Narrator | Quality | BLEU-4 | ROUGE-L | CIDEr-D |")
    assert table.count("\n") == ran + 2
    picture = (out / "comparison.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 5000

    # every narrator is an MLflow run in the local SQLite store in the data folder
    import mlflow

    store = data_home / "video-narrator" / "lab" / "mlflow.db"
    assert store.is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("cmp")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(narrators)
    status = {r.data.params["narrator"]: r.info.status for r in runs}
    params = {r.data.params["narrator"]: r.data.params for r in runs}
    assert params["tiny (standard, 8bit)"]["quantize"] == "8bit"
    assert params["tiny (brief, repetition_penalty=1.3)"]["repetition_penalty"] == "1.3"
    assert status["missing-model.gguf (standard)"] == "FAILED"
    assert sum(s == "FINISHED" for s in status.values()) == ran
    for run in runs:
        if run.info.status == "FINISHED":
            row = next(r for r in rows if r["narrator"] == run.data.params["narrator"])
            assert run.data.metrics["quality"] == pytest.approx(float(row["quality"]), abs=1e-3)
            assert run.data.params["split"] == "test"
            assert {"cider_d", "bleu4", "rouge_l", "rules_fits_pause", "tokens_per_s",
                    "peak_memory_mb"} <= set(run.data.metrics)


class Parrot(Narrator):
    """Says the reference, or nothing: what the scores must reward and punish."""

    def __init__(self, spec: NarratorSpec, silent: bool = False) -> None:
        super().__init__(spec)
        self.silent = silent

    def load(self) -> None:
        pass

    def narrate(self, example: Example) -> Timed:
        return Timed("" if self.silent else example.text, 0.01, 0.02, 5)


def test_scores_reward_the_describers_words(lab) -> None:
    examples = load_examples(lab["dataset"], "train") + load_examples(lab["dataset"], "test")
    perfect = evaluate(NarratorSpec("parrot"), examples, narrator=Parrot(NarratorSpec("p")))
    assert perfect.scores.bleu4 == pytest.approx(1.0)
    assert perfect.scores.rouge_l == pytest.approx(1.0)
    assert perfect.scores.cider_d > 3
    assert perfect.scores.quality == pytest.approx(1.0)
    assert perfect.rules.present_tense == 1.0 and perfect.rules.no_guesses == 1.0
    assert perfect.speed.tokens_per_s == pytest.approx(5 / 0.02)
    silent = evaluate(NarratorSpec("silent"), examples,
                      narrator=Parrot(NarratorSpec("s"), silent=True))
    assert silent.scores.quality == pytest.approx(0.0, abs=1e-6)


def test_bad_narrator_names_are_sentences(lab, data_home, tmp_path) -> None:
    with pytest.raises(LabError, match="'beams' is not a narrator setting"):
        parse_spec("tiny@beams=2")
    with pytest.raises(LabError, match="no prompt variant 'poetic'"):
        parse_spec("tiny@prompt=poetic")
    with pytest.raises(LabError, match="'max_new_tokens=many' is not a setting"):
        parse_spec("tiny@max_new_tokens=many")
    with pytest.raises(LabError, match="No narrator could run"):
        compare(lab["dataset"], [parse_spec(str(tmp_path / "nothing-here"))], tmp_path / "o",
                tracker=None, say=lambda _: None)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_reach_a_real_mlflow_server_started_by_lab_ui(lab, tmp_path, monkeypatch,
                                                            capsys) -> None:
    from player.cli.main import main

    port = _free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    ui = subprocess.Popen([sys.executable, "-m", "player.cli", "lab", "ui", "--port", str(port)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        line = ui.stdout.readline()
        assert re.search(rf"The MLflow interface is at http://127\.0\.0\.1:{port}/", line), line
        address = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 150  # a loaded two-core machine is slow to start it
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise AssertionError("the MLflow server did not answer") from None
                time.sleep(0.5)
        out = tmp_path / "out"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", address)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
        code = main(["lab", "compare", str(lab["dataset"]), "detector@stages=shots",
                     "--experiment", "served", "-o", str(out)])
        said = capsys.readouterr()
        assert code == 0, said.err[-2000:]
        assert address in said.out
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=address)
        experiment = client.get_experiment_by_name("served")
        runs = client.search_runs([experiment.experiment_id])
        assert [r.data.params["narrator"] for r in runs] == ["detector (shots)"]
        assert runs[0].info.status == "FINISHED" and "quality" in runs[0].data.metrics
        assert [a.path for a in client.list_artifacts(runs[0].info.run_id)] == ["narration.json"]
        # the server's store is the one in its data folder; the client wrote no store of its own
        assert (tmp_path / "data" / "video-narrator" / "lab" / "mlflow.db").is_file()
        assert not (tmp_path / "elsewhere").exists()
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            ui.wait(30)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait()
    assert ui.returncode == 0
    assert "Stopping the MLflow interface." in ui.stdout.read()
    with pytest.raises(OSError):  # the server and its workers are gone
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_tracker_refuses_a_store_it_cannot_use(tmp_path) -> None:
    folder = tmp_path / "file-not-folder"
    folder.write_text("x")
    with pytest.raises(LabError, match="The MLflow store at .* cannot be used"):
        Tracker("x", uri=f"sqlite:///{folder}/sub/mlflow.db")


class Interrupted(Parrot):
    def narrate(self, example: Example) -> Timed:
        raise KeyboardInterrupt


def test_ctrl_c_keeps_the_narrators_that_finished(lab, data_home, tmp_path) -> None:
    tracker = Tracker("stopped")
    specs = [NarratorSpec("first"), NarratorSpec("second"), NarratorSpec("third")]
    made = {"first": Parrot, "second": Interrupted, "third": Parrot}
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        compare(lab["dataset"], specs, tmp_path / "out", tracker=tracker, say=said.append,
                factory=lambda spec: made[spec.model](spec))
    table = (tmp_path / "out" / "comparison.md").read_text(encoding="utf-8")
    assert "| first (standard) |" in table and "second" not in table
    assert (tmp_path / "out" / "comparison.png").is_file()
    assert said[-1] == f"Stopped; the table in {tmp_path / 'out'} holds what finished: 1 narrator."
    runs = tracker.client.search_runs([tracker.experiment_id])
    assert sorted((r.data.params["model"], r.info.status) for r in runs) == [
        ("first", "FINISHED"), ("second", "KILLED")]


def test_a_server_that_does_not_answer_is_said_at_once(lab, tmp_path, monkeypatch,
                                                       capsys) -> None:
    from player.cli.main import main

    address = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", address)
    began = time.monotonic()
    assert main(["lab", "compare", str(lab["dataset"]), "detector@stages=shots",
                 "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: The MLflow server at {address} does not answer")
    assert "unset MLFLOW_TRACKING_URI" in err and time.monotonic() - began < 10


def test_installed_models_join_the_comparison(lab, data_home, tmp_path, capsys) -> None:
    import json
    import shutil

    from player.cli.main import main

    folder = data_home / "video-narrator" / "models" / "tiny-hf"
    shutil.copytree(lab["tiny"], folder)
    files = [{"name": p.name, "size": p.stat().st_size} for p in folder.iterdir()]
    (folder / "manifest.json").write_text(json.dumps(
        {"format": 1, "name": "tiny-hf", "backend": "transformers", "files": files}))
    out = tmp_path / "out"
    assert main(["lab", "compare", str(lab["dataset"]), "detector@stages=shots", "--installed",
                 "-o", str(out)]) == 0
    said = capsys.readouterr().out
    with open(out / "comparison.csv", encoding="utf-8") as handle:
        labels = {row["narrator"] for row in csv.DictReader(handle)}
    assert labels == {"detector (shots)", "tiny-hf (standard)"}, said
    assert main(["lab", "compare", str(lab["dataset"])]) == 1
    assert "Name the narrators to compare, or give --installed." in capsys.readouterr().err


def test_lab_ui_names_a_server_already_chosen(data_home, monkeypatch, capsys) -> None:
    from player.cli.main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert main(["lab", "ui"]) == 0
    assert capsys.readouterr().out.strip() == (
        "Runs are on the MLflow server at http://127.0.0.1:5999; open that address in a "
        "browser.")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["lab", "ui", "--port", "70000"]) == 1
    assert "A port is a number from 1 to 65535, not 70000." in capsys.readouterr().err
