"""``narrate lab tune``: an Optuna study over LoRA rank, alpha, learning rate and epochs, the
prompt variant and the decoding settings, maximising quality within a latency budget.

The study lives in a SQLite file (``FOLDER/optuna.db``) and resumes under its name. Each
trial fine-tunes (without merging) and reports after every epoch the negative test loss, a
smooth per-epoch score: a median pruner stops trials that fall behind the others at the same
epoch. A trial that finishes is scored by its answers on the test split:
``quality * min(1, budget / seconds an answer)``. Every trial is an MLflow run under one run
for the study. Ctrl-C ends the study; finished trials stay in the file.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.lab import LabError, need
from models.lab.dataset import load_examples
from models.lab.finetune import EpochResult, FinetuneOptions, finetune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneOptions:
    """The search: how many trials, the study's name, the latency budget (seconds an answer),
    the ranges searched, and the pruner's warm-up (trials that are never pruned)."""

    trials: int = 10
    study: str = "narrate-lab"
    latency_budget_s: float = 3.0
    max_epochs: int = 3
    ranks: tuple[int, ...] = (4, 8, 16)
    alphas: tuple[int, ...] = (8, 16, 32)
    learning_rates: tuple[float, float] = (1e-5, 1e-2)
    prompts: tuple[str, ...] = ("standard", "brief", "no-context")
    max_new_tokens: tuple[int, ...] = (24, 48)
    repetition_penalties: tuple[float, ...] = (1.0, 1.2)
    startup_trials: int = 2
    seed: int = 0
    enqueue: tuple[Mapping[str, Any], ...] = field(default=())
    """Trials to run first with these settings (the rest are sampled)."""


@dataclass(frozen=True)
class TuneResult:
    best_value: float
    best_params: dict[str, Any]
    complete: int
    pruned: int
    storage: str


def default_folder() -> Path:
    from models.lab.tracking import lab_dir  # noqa: PLC0415

    return lab_dir() / "studies"


def score(quality: float, seconds: float, budget: float) -> float:
    """Quality, cut in proportion when an answer takes longer than the budget."""
    if seconds <= budget or seconds <= 0:
        return quality
    return quality * budget / seconds


def tune(model: str | Path, dataset: Path, folder: Path, options: TuneOptions = TuneOptions(),
         tracker: Any = None, say: Callable[[str], None] = print) -> TuneResult:
    """Run (or resume) the study; trials beyond those already finished are added up to
    ``options.trials`` in all."""
    optuna = need("optuna")
    from models.lab.finetune import model_folder  # noqa: PLC0415

    model_folder(model)  # a missing model is said before the study starts
    if not load_examples(dataset, "test"):
        raise LabError(f"The dataset {Path(dataset).name} has no test examples to score "
                       f"trials on.")
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # type: ignore[attr-defined]
    study = optuna.create_study(  # type: ignore[attr-defined]
        study_name=options.study, storage=storage, load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=options.seed),  # type: ignore[attr-defined]
        pruner=optuna.pruners.MedianPruner(  # type: ignore[attr-defined]
            n_startup_trials=options.startup_trials, n_warmup_steps=0))
    states = optuna.trial.TrialState  # type: ignore[attr-defined]
    done = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
    if done:
        say(f"Resuming study {options.study}: {len(done)} trials already finished.")
    if not done:
        for params in options.enqueue:
            study.enqueue_trial(dict(params))
    left = max(options.trials - len(done), 0)
    parent = tracker.start(f"tune {options.study}", {
        "model": str(model), "dataset": str(dataset), "study": options.study,
        "storage": storage, "latency_budget_s": options.latency_budget_s},
        tags={"lab.kind": "tune"}) if tracker else None
    objective = _Objective(model, dataset, folder, options, tracker, parent, say)
    status = "FAILED"
    try:
        study.optimize(objective, n_trials=left, catch=(),
                       show_progress_bar=sys.stderr.isatty())
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if parent:
            _finish_parent(parent, study, states, status)
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    pruned = [t for t in study.trials if t.state == states.PRUNED]
    if not complete:
        raise LabError(f"No trial of study {options.study} finished; every one was pruned or "
                       f"failed.")
    return TuneResult(study.best_value, dict(study.best_params), len(complete), len(pruned),
                      storage)


def _finish_parent(parent: Any, study: Any, states: Any, status: str) -> None:
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    metrics = {"trials_complete": len(complete),
               "trials_pruned": sum(t.state == states.PRUNED for t in study.trials)}
    if complete:
        metrics["best_score"] = study.best_value
        parent.params({f"best_{k}": v for k, v in study.best_params.items()})
    parent.metrics(metrics)
    parent.finish(status)


class _Objective:
    def __init__(self, model: str | Path, dataset: Path, folder: Path, options: TuneOptions,
                 tracker: Any, parent: Any, say: Callable[[str], None]) -> None:
        self.model, self.dataset, self.folder = model, dataset, folder
        self.options, self.tracker, self.parent, self.say = options, tracker, parent, say

    def suggest(self, trial: Any) -> tuple[FinetuneOptions, dict[str, Any]]:
        o = self.options
        rank = trial.suggest_categorical("rank", list(o.ranks))
        alpha = trial.suggest_categorical("alpha", list(o.alphas))
        lr = trial.suggest_float("learning_rate", *o.learning_rates, log=True)
        epochs = trial.suggest_int("epochs", 1, o.max_epochs)
        prompt = trial.suggest_categorical("prompt", list(o.prompts))
        tokens = trial.suggest_categorical("max_new_tokens", list(o.max_new_tokens))
        penalty = trial.suggest_categorical("repetition_penalty", list(o.repetition_penalties))
        ft = FinetuneOptions(rank=rank, alpha=alpha, learning_rate=lr, epochs=epochs,
                             prompt=prompt, max_new_tokens=tokens, merge=False,
                             evaluate=True, seed=o.seed)
        return ft, {"repetition_penalty": penalty}

    def __call__(self, trial: Any) -> float:
        optuna = need("optuna")
        ft, decoding = self.suggest(trial)
        out = self.folder / f"{self.options.study}-trial-{trial.number}"
        self.say(f"Trial {trial.number}: {trial.params}")
        last: list[EpochResult] = []

        def on_epoch(result: EpochResult) -> None:
            last[:] = [result]
            trial.report(-(result.eval_loss or 0.0), result.epoch)
            if trial.should_prune():
                self.say(f"Trial {trial.number} is pruned after epoch {result.epoch}: its test "
                         f"loss {result.eval_loss:.3f} is behind the other trials'.")
                raise optuna.TrialPruned()  # type: ignore[attr-defined]

        began = time.perf_counter()
        try:
            finetune(self.model, self.dataset, out, ft, self.tracker, on_epoch, self.say,
                     parent=self.parent, decoding=decoding)
        except optuna.TrialPruned:  # type: ignore[attr-defined]
            shutil.rmtree(out, ignore_errors=True)
            raise
        result = last[0]
        seconds = result.seconds_per_example or 0.0
        value = score(result.quality, seconds, self.options.latency_budget_s)
        trial.set_user_attr("seconds_per_example", seconds)
        trial.set_user_attr("quality", result.quality)
        trial.set_user_attr("adapter", str(out / "adapter"))
        self.say(f"Trial {trial.number}: score {value:.3f} (quality {result.quality:.3f}, "
                 f"{seconds:.2f} seconds an answer) in {time.perf_counter() - began:.0f} s.")
        return value
