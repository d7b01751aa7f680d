"""``narrate lab tune``: a real Optuna study (SQLite storage) of three fine-tuning trials on the
tiny model, one of them pruned after its first epoch, each trial an MLflow run read back with
MLflow's client; the study resumes; and the loss masks everything but the describer's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.lab.tracking import Tracker
from models.lab.tune import TuneOptions, score, tune

TRIAL = {"rank": 8, "alpha": 16, "epochs": 2, "prompt": "standard", "max_new_tokens": 4,
         "repetition_penalty": 1.0}


def test_a_three_trial_study_prunes_one_and_is_recorded(tuning_lab, tmp_path,  # noqa: F811
                                                        monkeypatch) -> None:
    import mlflow
    import optuna

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Two trials that learn, then one whose learning rate is too small to move the test loss:
    # after its first epoch it is behind both, and the median pruner stops it.
    options = TuneOptions(trials=3, study="s", latency_budget_s=60.0, max_epochs=2,
                          max_new_tokens=(4, 8), enqueue=(
        {**TRIAL, "learning_rate": 1e-2}, {**TRIAL, "learning_rate": 5e-3},
        {**TRIAL, "learning_rate": 1e-5}))
    tracker = Tracker("tune")
    said: list[str] = []
    result = tune(tuning_lab["model"], tuning_lab["dataset"], tmp_path / "studies", options,
                  tracker, said.append)
    assert (result.complete, result.pruned) == (2, 1)
    assert any("Trial 2 is pruned after epoch 1" in line for line in said)

    study = optuna.load_study(study_name="s", storage=result.storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.PRUNED]
    assert [len(t.intermediate_values) for t in study.trials] == [2, 2, 1]
    assert study.trials[2].params["learning_rate"] == pytest.approx(1e-5)
    assert result.best_value == pytest.approx(study.best_value)
    assert not (tmp_path / "studies" / "s-trial-2").exists()  # a pruned trial's files go
    assert (tmp_path / "studies" / "s-trial-0" / "adapter").is_dir()

    client = mlflow.MlflowClient(tracking_uri=tracker.uri)
    runs = client.search_runs([tracker.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("lab.kind") == "tune")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3
    assert sorted(r.info.status for r in trials) == ["FINISHED", "FINISHED", "KILLED"]
    pruned = [r for r in trials if r.data.tags.get("lab.pruned") == "true"]
    assert len(pruned) == 1 and float(pruned[0].data.params["learning_rate"]) == pytest.approx(
        1e-5)
    assert parent.data.metrics["trials_pruned"] == 1
    assert parent.data.metrics["trials_complete"] == 2
    history = client.get_metric_history(pruned[0].info.run_id, "eval_loss")
    assert [m.step for m in history] == [1]

    # run again with four trials: the study resumes and adds one
    more = tune(tuning_lab["model"], tuning_lab["dataset"], tmp_path / "studies",
                TuneOptions(trials=4, study="s", latency_budget_s=60.0, max_epochs=2,
                            max_new_tokens=(4, 8)), None, said.append)
    assert "Resuming study s: 3 trials already finished." in said
    assert more.complete + more.pruned == 4


def test_score_keeps_within_the_latency_budget() -> None:
    assert score(0.6, 1.0, 2.0) == 0.6
    assert score(0.6, 4.0, 2.0) == pytest.approx(0.3)


def test_the_loss_sees_only_the_describers_words(tuning_lab) -> None:  # noqa: F811
    from models.lab.dataset import load_examples
    from models.lab.finetune import encode, load_processor

    processor = load_processor(Path(tuning_lab["model"]))
    example = load_examples(tuning_lab["dataset"], "train")[0]
    batch = encode(processor, example, "standard")
    labels = batch["labels"][0]
    kept = labels[labels != -100]
    text = processor.tokenizer.decode(kept)
    assert text.strip() == example.text + processor.tokenizer.eos_token
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    ids = batch["input_ids"][0]
    assert (labels[ids == image_token] == -100).all() and (ids == image_token).sum() > 0
    assert int((labels != -100).sum()) < len(ids) // 2
