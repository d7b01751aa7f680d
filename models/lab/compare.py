"""Run several narrators on one dataset split and compare them: caption metrics, the
audio-description rules and speed, as a Markdown and CSV table and a picture of quality against
latency; every narrator is one MLflow run."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from models.lab import LabError, need
from models.lab.dataset import Example, load_examples
from models.lab.metrics import CaptionScores, caption_scores
from models.lab.narrators import Narrator, NarratorSpec, make, narrate_all
from models.lab.progress import bar
from models.lab.rules import RuleRates, rates
from models.lab.speed import MemoryWatch, SpeedStats, summarise
from models.lab.tracking import Tracker
from models.wording import counted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """One narrator's figures on the dataset, and what it said."""

    spec: NarratorSpec
    scores: CaptionScores
    rules: RuleRates
    speed: SpeedStats
    texts: tuple[str, ...]

    def metrics(self) -> dict[str, float]:
        out = {**asdict(self.scores), "quality": self.scores.quality}
        out.update({f"rules_{k}": v for k, v in asdict(self.rules).items()})
        out.update({k: v for k, v in asdict(self.speed).items() if k != "device"})
        return out


def evaluate(spec: NarratorSpec, examples: Sequence[Example],
             say: Callable[[str], None] = print, narrator: Narrator | None = None) -> Result:
    """Load one narrator (``narrator``, else the one ``spec`` names), let it narrate every
    example, and score it."""
    narrator = narrator or make(spec)
    with MemoryWatch() as watch:
        began = time.perf_counter()
        narrator.load()
        load_s = time.perf_counter() - began
        try:
            with bar(len(examples), spec.label) as tick:
                timed = narrate_all(narrator, examples, tick)
        finally:
            narrator.close()
    for note in getattr(narrator, "notes", []):
        say(note)
    texts = [t.text for t in timed]
    scores = caption_scores(texts, [e.references for e in examples])
    rule_rates = rates(texts, [e.pause for e in examples])
    return Result(spec, scores, rule_rates, summarise(timed, load_s, watch, narrator.device),
                  tuple(texts))


Factory = Callable[[NarratorSpec], Narrator]


def compare(dataset: Path, specs: Sequence[NarratorSpec], out: Path, split: str = "test",
            tracker: Tracker | None = None, say: Callable[[str], None] = print,
            factory: Factory = make) -> list[Result]:
    """Evaluate each narrator (one failing is said and skipped), write ``comparison.md``,
    ``comparison.csv`` and ``comparison.png`` into ``out``, and log each run. ``factory``
    builds the narrator of a spec. Ctrl-C writes the table of the narrators that finished."""
    examples = load_examples(dataset, split)
    if not examples:
        raise LabError(f"The {split} split of {Path(dataset).name} has no examples.")
    out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    try:
        _run_all(dataset, specs, examples, split, tracker, say, results, factory)
    except KeyboardInterrupt:
        if results:  # what finished is kept
            write_table(results, out)
            plot(results, out / "comparison.png")
            say(f"Stopped; the table in {out} holds what finished: "
                f"{counted(len(results), 'narrator')}.")
        raise
    if not results:
        raise LabError("No narrator could run, so there is nothing to compare.")
    write_table(results, out)
    plot(results, out / "comparison.png")
    return results


def _run_all(dataset: Path, specs: Sequence[NarratorSpec], examples: Sequence[Example],
             split: str, tracker: Tracker | None, say: Callable[[str], None],
             results: list[Result], factory: Factory) -> None:
    for spec in specs:
        run = tracker.start(f"compare {spec.label}", {**spec.params(), "dataset": str(dataset),
                                                     "split": split,
                                                     "examples": len(examples)},
                            tags={"lab.kind": "compare"}) if tracker else None
        try:
            result = evaluate(spec, examples, say, factory(spec))
        except Exception as exc:  # noqa: BLE001 - one narrator failing must not stop the rest
            why = str(exc) if isinstance(exc, LabError) else f"it failed: {exc}"
            say(f"{spec.label} is left out: {why}")
            if run:
                run.tag("lab.error", why[:5000])
                run.finish("FAILED")
            continue
        except KeyboardInterrupt:
            if run:
                run.finish("KILLED")
            raise
        results.append(result)
        if run:
            run.metrics(result.metrics())
            run.tag("lab.device", result.speed.device)
            run.json_artifact("narration.json", [
                {"id": e.id, "said": t, "references": list(e.references), "pause": e.pause}
                for e, t in zip(examples, result.texts, strict=True)])
            run.finish()
        say(f"{spec.label}: quality {result.scores.quality:.3f}, CIDEr-D "
            f"{result.scores.cider_d:.3f}, {result.speed.total_s:.2f} seconds an example.")


COLUMNS = ("narrator", "quality", "bleu4", "rouge_l", "cider_d", "rules_all_rules",
           "rules_present_tense", "rules_no_guesses", "rules_fits_pause", "first_sentence_s",
           "total_s", "tokens_per_s", "load_s", "peak_memory_mb", "gpu_peak_memory_mb", "device")
HEADINGS = ("Narrator", "Quality", "BLEU-4", "ROUGE-L", "CIDEr-D", "All rules", "Present tense",
            "No guesses", "Fits pause", "First sentence (s)", "Total (s)", "Tokens/s",
            "Load (s)", "Peak memory (MB)", "GPU peak (MB)", "Device")


def _row(result: Result) -> list[str]:
    values = {**result.metrics(), "narrator": result.spec.label, "device": result.speed.device}
    return [v if isinstance(v, str) else f"{v:.3f}"
            for v in (values[c] for c in COLUMNS)]


def write_table(results: Sequence[Result], out: Path) -> None:
    """``comparison.csv`` (machine names) and ``comparison.md`` (headings for people), best
    quality first."""
    ranked = sorted(results, key=lambda r: -r.scores.quality)
    with open(out / "comparison.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(_row(r) for r in ranked)
    lines = ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in ranked]
    (out / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(results: Sequence[Result], path: Path) -> None:
    """Quality against seconds an example, one labelled point a narrator."""
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")  # type: ignore[attr-defined]
    from matplotlib import pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        for r in results:
            ax.scatter(r.speed.total_s, r.scores.quality)
            ax.annotate(r.spec.label, (r.speed.total_s, r.scores.quality), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("seconds an example")
        ax.set_ylabel("quality (BLEU-4, ROUGE-L, CIDEr-D/3)")
        ax.set_title("Narrators: quality against latency")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
