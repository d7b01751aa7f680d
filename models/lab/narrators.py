"""Narrators the lab compares: the detector narrator (perception stages and the composer) and
vision-language models (a catalog name, a GGUF file or a model folder), each with a prompt
variant, a quantization and decoding settings.

A narrator is named on the command line as ``MODEL[@key=value,...]``, for example
``detector``, ``smolvlm-256m@prompt=brief`` or ``./merged@quantize=8bit,repetition_penalty=1.2``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.lab import LabError
from models.lab.dataset import Example
from models.lab.speed import Timed, timed_stream

VERBOSITY = {"standard": 2, "brief": 1, "detailed": 3, "no-context": 2}
"""Prompt variants and the verbosity each asks for."""


def prompt_for(variant: str, example: Example) -> str:
    """The instruction a model gets for an example under a prompt variant."""
    from models.vlm.prompts import describe_prompt  # noqa: PLC0415

    if variant not in VERBOSITY:
        raise LabError(f"There is no prompt variant {variant!r}; the variants are "
                       f"{', '.join(VERBOSITY)}.")
    recent = () if variant == "no-context" else example.context
    return describe_prompt(example.pause, VERBOSITY[variant], recent=recent)


def words_for(variant: str, example: Example) -> int:
    from models.vlm.prompts import word_budget  # noqa: PLC0415

    return word_budget(example.pause, VERBOSITY.get(variant, 2))


GENERATE_KEYS = {"repetition_penalty": float, "no_repeat_ngram_size": int}
"""Decoding settings passed to transformers' generate, on top of the player's greedy decoding
(beam search cannot stream, so it is not offered)."""
DETECTOR = "detector"


@dataclass(frozen=True)
class NarratorSpec:
    """One narrator to try: ``model`` is ``detector``, a catalog name or a path."""

    model: str
    prompt: str = "standard"
    max_new_tokens: int = 48
    quantize: str | None = None
    generate: tuple[tuple[str, float], ...] = ()
    stages: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        name = Path(self.model).name if self.model != DETECTOR else DETECTOR
        if self.model == DETECTOR:
            return name + (f" ({'+'.join(self.stages)})" if self.stages else "")
        parts = [self.prompt, *([self.quantize] if self.quantize else []),
                 *(f"{k}={v:g}" for k, v in self.generate)]
        if self.max_new_tokens != 48:
            parts.append(f"max_new_tokens={self.max_new_tokens}")
        return f"{name} ({', '.join(parts)})"

    def params(self) -> dict[str, str]:
        """What MLflow records of this narrator."""
        out = {"narrator": self.label, "model": self.model, "prompt": self.prompt,
               "max_new_tokens": str(self.max_new_tokens), "quantize": self.quantize or "none"}
        out.update({k: f"{v:g}" for k, v in self.generate})
        if self.stages:
            out["stages"] = "+".join(self.stages)
        return out


def parse_spec(text: str) -> NarratorSpec:
    """``MODEL[@key=value,...]``; LabError naming a wrong key or value."""
    model, _, rest = text.strip().partition("@")
    if not model:
        raise LabError(f"{text!r} names no model; write MODEL or MODEL@key=value,...")
    kwargs: dict[str, Any] = {}
    generate: list[tuple[str, float]] = []
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        try:
            if not sep:
                raise ValueError
            if key == "prompt":
                if value not in VERBOSITY:
                    raise LabError(f"There is no prompt variant {value!r}; the variants are "
                                   f"{', '.join(VERBOSITY)}.")
                kwargs["prompt"] = value
            elif key == "max_new_tokens":
                kwargs["max_new_tokens"] = int(value)
            elif key == "quantize":
                if value not in ("8bit", "4bit", "none"):
                    raise LabError(f"quantize is 8bit, 4bit or none, not {value!r}.")
                kwargs["quantize"] = None if value == "none" else value
            elif key == "stages":
                kwargs["stages"] = tuple(s for s in value.split("+") if s)
            elif key in GENERATE_KEYS:
                generate.append((key, float(GENERATE_KEYS[key](value))))
            else:
                known = ["prompt", "max_new_tokens", "quantize", "stages", *GENERATE_KEYS]
                raise LabError(f"{text!r}: {key!r} is not a narrator setting; the settings are "
                               f"{', '.join(known)}.")
        except ValueError:
            raise LabError(f"{text!r}: {item!r} is not a setting of the form key=value with a "
                           f"number where one is needed.") from None
    return NarratorSpec(model.strip(), generate=tuple(generate), **kwargs)


class Narrator(ABC):
    """Something that says a sentence for an example; ``load`` does the slow part once."""

    device = "cpu"

    def __init__(self, spec: NarratorSpec) -> None:
        self.spec = spec

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def narrate(self, example: Example) -> Timed: ...

    def close(self) -> None:  # noqa: B027 - optional
        """Free what load() took."""


STAGE_MODULES = {"shots": ("models.perception.shots", "ShotStage"),
                 "scene": ("models.perception.scene", "SceneStage"),
                 "pose": ("models.perception.pose", "PoseStage"),
                 "faces": ("models.perception.faces", "FaceStage"),
                 "text": ("models.perception.ocr", "TextStage"),
                 "objects": ("models.perception.objects", "ObjectStage")}


class DetectorNarrator(Narrator):
    """The perception stages look at the example's frames; the composer says what they found,
    as the player's "describe now" does."""

    def __init__(self, spec: NarratorSpec) -> None:
        super().__init__(spec)
        self.stages: list[Any] = []
        self.notes: list[str] = []

    def load(self) -> None:
        import importlib  # noqa: PLC0415

        if self.spec.stages:
            for name in self.spec.stages:
                if name not in STAGE_MODULES:
                    raise LabError(f"There is no stage {name!r}; the stages are "
                                   f"{', '.join(STAGE_MODULES)}.")
                module, cls = STAGE_MODULES[name]
                try:
                    stage = getattr(importlib.import_module(module), cls)()
                except ImportError as exc:
                    raise LabError(f"The {name} stage needs {exc.name or exc}, which is not "
                                   f"installed: pip install 'video-narrator[perception]'") from exc
                problem = stage.problem()
                if problem:
                    raise LabError(f"The {name} stage cannot run here: {problem}")
                self.stages.append(stage)
        else:
            config = importlib.import_module("models.pipeline.config")
            self.stages, self.notes = config.default_stages()
        if not self.stages:
            raise LabError("No perception stage works here, so the detector narrator cannot run.")

    def narrate(self, example: Example) -> Timed:
        composer_module = _composer()
        began = time.perf_counter()
        observations: list[Any] = []
        t = example.start
        for stage in self.stages:
            stage.reset()
        for index in range(len(example.frames)):
            image = example.image(index)
            for stage in self.stages:
                look = getattr(stage, "look", None)
                observations += look(t, image) if look else stage.process(t, image)
        text = composer_module.Composer.describe(observations, t, detail=3)
        took = time.perf_counter() - began
        return Timed(text, took, took, 0)


def _composer() -> Any:
    import importlib  # noqa: PLC0415

    for name in ("models.pipeline.composer", "models.composer"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise LabError("The composer could not be found in this version.")


class VlmNarrator(Narrator):
    """A vision-language model through the player's own engines (models.vlm)."""

    def __init__(self, spec: NarratorSpec) -> None:
        super().__init__(spec)
        self.engine: Any = None

    def load(self) -> None:
        from models.vlm import VlmError  # noqa: PLC0415
        from models.vlm.loader import open_vlm  # noqa: PLC0415

        try:
            engine = open_vlm(self.spec.model)
            if self.spec.quantize or self.spec.generate:
                from models.vlm.hf import HfVlm  # noqa: PLC0415

                if not isinstance(engine, HfVlm):
                    raise LabError(f"{self.spec.label}: quantize and decoding settings work "
                                   f"with transformers models; for llama.cpp give each "
                                   f"quantized GGUF file as a narrator of its own.")
                if self.spec.quantize:
                    engine = HfVlm(engine.path, quantize=self.spec.quantize)
                engine.generate_options.update(
                    {k: GENERATE_KEYS[k](v) for k, v in self.spec.generate})
            problem = engine.problem()
            if problem:
                raise LabError(f"{self.spec.model}: {problem}")
            engine.load()
        except VlmError as exc:
            raise LabError(str(exc)) from exc
        self.engine = engine
        self.device = str(getattr(engine, "device", "") or "cpu")

    def narrate(self, example: Example) -> Timed:
        from models.vlm import VlmError, VlmRequest, clean  # noqa: PLC0415

        budget = words_for(self.spec.prompt, example)
        request = VlmRequest(example.image(), prompt_for(self.spec.prompt, example),
                             max_new_tokens=self.spec.max_new_tokens, max_words=budget)
        try:
            timed = timed_stream(self.engine.stream(request))
        except VlmError as exc:
            raise LabError(f"{self.spec.label} failed on {example.id}: {exc}") from exc
        return Timed(clean(timed.text, max_words=budget), timed.first, timed.total,
                     self._tokens(timed))

    def _tokens(self, timed: Timed) -> int:
        """Tokens written: counted with the model's tokenizer where the engine has one (the
        transformers streamer yields whole words), else the streamed pieces (llama.cpp yields
        one a token)."""
        tokenizer = getattr(getattr(self.engine, "_processor", None), "tokenizer", None)
        if tokenizer is None or not timed.text:
            return timed.tokens
        try:
            return len(tokenizer(timed.text, add_special_tokens=False)["input_ids"])
        except Exception:  # noqa: BLE001 - a count is not worth failing the run
            return timed.tokens

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def make(spec: NarratorSpec) -> Narrator:
    """The narrator for a spec (not loaded)."""
    return DetectorNarrator(spec) if spec.model == DETECTOR else VlmNarrator(spec)


def narrate_all(narrator: Narrator, examples: Sequence[Example],
                progress: Callable[[int], None] | None = None) -> list[Timed]:
    out = []
    for n, example in enumerate(examples, start=1):
        out.append(narrator.narrate(example))
        if progress:
            progress(n)
    return out
