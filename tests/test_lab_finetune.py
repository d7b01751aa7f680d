"""LoRA fine-tuning with real peft on a tiny random-weight Idefics3 (SmolVLM architecture): the
loss falls when it overfits four examples, each epoch is scored and checkpointed, the merged
bfloat16 copy loads in the player's transformers engine and answers, a full disk keeps the last
checkpoint, Ctrl-C keeps the finished epochs, and bad input is one sentence."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest

from models.lab import LabError
from models.lab.finetune import EpochResult, FinetuneOptions, finetune
from models.lab.tracking import Tracker
from tests.tiny_vlm import build_tiny_vlm


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "data"


def test_lora_overfits_and_the_merged_model_answers_in_the_player(tuning_lab, data_home,
                                                                  tmp_path) -> None:
    from models.catalog import resolve
    from models.lab.dataset import load_examples
    from models.lab.metrics import rouge_l
    from models.lab.narrators import prompt_for
    from models.vlm import VlmRequest
    from models.vlm.hf import HfVlm, stored_dtype

    tracker = Tracker("ft")
    said: list[str] = []
    out = tmp_path / "run"
    result = finetune(tuning_lab["model"], tuning_lab["dataset"], out,
                      FinetuneOptions(epochs=8, learning_rate=3e-3, rank=16, alpha=32,
                                      max_new_tokens=8), tracker, say=said.append)
    losses = [e.train_loss for e in result.epochs]
    assert len(losses) == 8 and losses[-1] < 0.3 * losses[0], losses
    assert all(e.scores is not None and e.eval_loss is not None for e in result.epochs)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        f"epoch-{n}" for n in range(1, 9))
    assert (result.adapter / "adapter_model.safetensors").is_file()
    assert any(line.startswith("Epoch 8 of 8: training loss") for line in said)

    # the merged copy: bfloat16, changed weights, and the player's engine loads it and answers
    assert result.merged is not None and stored_dtype(result.merged) == "bfloat16"
    assert resolve(result.merged).backend == "transformers"
    from safetensors import safe_open

    def weight(folder: Path) -> object:
        with safe_open(str(next(folder.glob("*.safetensors"))), "pt") as f:
            name = next(k for k in f.keys() if "layers.0.self_attn.q_proj.weight" in k)
            return f.get_tensor(name).float()

    import torch

    change = (weight(result.merged) - weight(tuning_lab["model"])).abs().max()
    assert change > 1e-3
    assert torch.isfinite(change)

    def overlap(folder: Path) -> float:
        """Mean ROUGE-L of the model's raw answers for the training examples."""
        engine = HfVlm(folder, device="cpu")
        engine.load()
        try:
            said = ["".join(engine.stream(VlmRequest(e.image(), prompt_for("standard", e),
                                                     max_new_tokens=12))) for e in train]
        finally:
            engine.close()
        return rouge_l(said, [e.references for e in train])

    # what it learned: the merged copy says words of the four descriptions, the base none
    train = load_examples(tuning_lab["dataset"], "train")
    assert len(train) == 4
    before, after = overlap(tuning_lab["model"]), overlap(result.merged)
    assert before < 0.05 and after > 0.15, (before, after)

    # the run in MLflow: one training loss a epoch, falling
    client = tracker.client
    run = client.search_runs([tracker.experiment_id])[0]
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, 9))
    assert [m.value for m in history] == pytest.approx(losses)
    assert run.info.status == "FINISHED" and "quality" in run.data.metrics


def test_a_full_disk_keeps_the_last_checkpoint(tuning_lab, tmp_path) -> None:
    """After epoch 1 the process may write files of 10 kB at most (the adapter is about 30 kB),
    so saving epoch 2 fails as on a full disk."""
    out = tmp_path / "run"
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill_disk(result: EpochResult) -> None:
        if result.epoch == 1:
            resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, old_limit[1]))

    try:
        with pytest.raises(LabError) as caught:
            finetune(tuning_lab["model"], tuning_lab["dataset"], out,
                     FinetuneOptions(epochs=3, evaluate=False, merge=False),
                     on_epoch=fill_disk, say=lambda _: None)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    kept = out / "checkpoints" / "epoch-1"
    assert str(caught.value) == (f"The disk filled up while saving epoch 2; the adapter of "
                                 f"epoch 1 is kept in {kept}. Free some space and train again.")
    assert (kept / "adapter_model.safetensors").stat().st_size > 10_000
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-1"]


def test_ctrl_c_keeps_finished_epochs(tuning_lab, data_home, tmp_path) -> None:
    tracker = Tracker("stop")
    said: list[str] = []

    def stop(result: EpochResult) -> None:
        if result.epoch == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune(tuning_lab["model"], tuning_lab["dataset"], out,
                 FinetuneOptions(epochs=4, evaluate=False, merge=False), tracker,
                 on_epoch=stop, say=said.append)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-1", "epoch-2"]
    run = tracker.client.search_runs([tracker.experiment_id])[0]
    assert run.info.status == "KILLED"


def test_bad_input_is_one_sentence(tuning_lab, tmp_path) -> None:
    with pytest.raises(LabError, match="no-such-model"):
        finetune(tmp_path / "no-such-model", tuning_lab["dataset"], tmp_path / "o")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    (tmp_path / "mmproj-model.gguf").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(LabError, match="is a llama.cpp \\(GGUF\\) model; fine-tuning needs"):
        finetune(gguf, tuning_lab["dataset"], tmp_path / "o")
    (tmp_path / "used" / "checkpoints").mkdir(parents=True)
    with pytest.raises(LabError, match="already holds a fine-tuning run; choose a new folder"):
        finetune(tuning_lab["model"], tuning_lab["dataset"], tmp_path / "used")
    with pytest.raises(LabError, match="is not a lab dataset"):
        finetune(tuning_lab["model"], tmp_path, tmp_path / "o")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(LabError, match="QLoRA needs an NVIDIA GPU"):
            finetune(tuning_lab["model"], tuning_lab["dataset"], tmp_path / "o",
                     FinetuneOptions(qlora=True))


@pytest.mark.gpu
def test_qlora_trains_a_4bit_base_on_the_gpu(tuning_lab, tmp_path) -> None:
    result = finetune(tuning_lab["model"], tuning_lab["dataset"], tmp_path / "q",
                      FinetuneOptions(epochs=3, learning_rate=1e-2, qlora=True,
                                      max_new_tokens=4), say=lambda _: None)
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    assert result.merged is not None and (result.merged / "config.json").is_file()


def test_cli_finetune_and_tune(tuning_lab, data_home, tmp_path, capsys) -> None:
    from player.cli.main import main

    out = tmp_path / "cli"
    assert main(["lab", "finetune", str(tuning_lab["model"]), str(tuning_lab["dataset"]),
                 "-o", str(out), "--epochs", "1", "--no-eval"]) == 0
    said = capsys.readouterr().out
    assert f"The adapter is in {out / 'adapter'}." in said
    assert f"narrate --model {out / 'merged'} VIDEO" in said
    assert (out / "merged" / "config.json").is_file()

    assert main(["lab", "tune", str(tuning_lab["model"]), str(tuning_lab["dataset"]),
                 "-o", str(tmp_path / "studies"), "--trials", "1", "--max-epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert "Study narrate-lab: 1 trial complete, 0 pruned. Best score" in said
    assert (tmp_path / "studies" / "optuna.db").is_file()

    assert main(["lab", "finetune", str(tmp_path / "absent"), str(tuning_lab["dataset"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "absent" in err and len(err.splitlines()) == 1
    assert main(["lab"]) == 2


def test_on_a_cpu_training_sees_one_tile_and_the_merged_copy_keeps_the_tiles(
        tuning_lab, tmp_path) -> None:
    import json

    from models.lab.finetune import load_base

    base = build_tiny_vlm(tmp_path / "tiles", splitting=True)
    loaded = load_base(base, qlora=False)
    import torch

    assert loaded.processor.image_processor.do_image_splitting is torch.cuda.is_available()
    result = finetune(base, tuning_lab["dataset"], tmp_path / "run",
                      FinetuneOptions(epochs=1, evaluate=False), say=lambda _: None)
    saved = {}
    for name in ("processor_config.json", "preprocessor_config.json"):
        if (result.merged / name).is_file():
            data = json.loads((result.merged / name).read_text())
            saved.update(data.get("image_processor", data))
    assert saved["do_image_splitting"] is True
