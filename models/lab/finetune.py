"""LoRA fine-tuning of a transformers vision-language model (SmolVLM / Idefics3 first) on a lab
dataset, and the merge into a bfloat16 copy the player loads with ``narrate --model FOLDER``.

Each training example is the player's own prompt for the example (:func:`prompt_for`) with
its frame, followed by the describer's words; only those words count in the loss (the prompt
and the image tokens are masked out). After each epoch the adapter is saved as a checkpoint
(written beside, then renamed, so a full disk leaves the last one whole) and, when asked, the
model narrates the test split and is scored with the lab's metrics. QLoRA loads the base model
in 4 bits with bitsandbytes, on a GPU only. Ctrl-C stops after the current step; the finished
epochs' checkpoints stay.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.lab import LabError, need
from models.lab.dataset import Example, load_examples
from models.lab.metrics import CaptionScores, caption_scores
from models.lab.narrators import prompt_for, words_for
from models.lab.progress import bar

log = logging.getLogger(__name__)

TEXT_LAYERS = r".*text_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""The layers LoRA adapts: the language model's attention and MLP projections (as the SmolVLM
fine-tuning recipes do); the vision encoder stays as it is."""
FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclass(frozen=True)
class FinetuneOptions:
    """LoRA rank and alpha, learning rate, epochs, the prompt variant trained on, how many
    tokens an evaluation answer may have, QLoRA (4-bit base, GPU), merge at the end, evaluate
    after each epoch, and the seed of the example order."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    learning_rate: float = 2e-4
    epochs: int = 3
    prompt: str = "standard"
    max_new_tokens: int = 32
    qlora: bool = False
    merge: bool = True
    evaluate: bool = True
    seed: int = 0
    eval_limit: int = 64
    """Test examples scored after each epoch (the first ones of the split)."""


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch: mean training loss, and (when evaluated) the loss and caption scores
    on the test split and the seconds an answer took."""

    epoch: int
    train_loss: float
    eval_loss: float | None = None
    scores: CaptionScores | None = None
    seconds_per_example: float | None = None

    @property
    def quality(self) -> float:
        return self.scores.quality if self.scores else 0.0


@dataclass(frozen=True)
class FinetuneResult:
    adapter: Path
    merged: Path | None
    epochs: tuple[EpochResult, ...]


def default_out(model: str) -> Path:
    from models.lab.tracking import lab_dir  # noqa: PLC0415

    return lab_dir() / "finetuned" / f"{Path(model).name}-{time.strftime('%Y%m%d-%H%M%S')}"


def model_folder(name_or_path: str | Path) -> Path:
    """The transformers folder of a catalog name or path; LabError when it is missing or not a
    transformers model (GGUF cannot be trained here)."""
    from models.catalog import ModelError, resolve  # noqa: PLC0415

    try:
        model = resolve(name_or_path)
    except ModelError as exc:
        raise LabError(str(exc)) from exc
    if model.backend != "transformers":
        kind = {"llama": "a llama.cpp (GGUF) model", "openvino": "an OpenVINO model"}.get(
            model.backend, f"a {model.backend} model")
        raise LabError(f"{Path(str(name_or_path)).name} is {kind}; fine-tuning needs a "
                       f"transformers model folder (safetensors), such as smolvlm-256m-hf.")
    folder = Path(model.path)
    from models.vlm.hf import code_refusal  # noqa: PLC0415

    refusal = code_refusal(folder)
    if refusal:
        raise LabError(refusal)
    return folder


# ----- loading ---------------------------------------------------------------------------------
@dataclass
class Loaded:
    model: Any
    processor: Any
    device: str


def load_processor(folder: Path) -> Any:
    transformers = need("transformers")
    try:
        return transformers.AutoProcessor.from_pretrained(  # type: ignore[attr-defined]
            folder, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - PIL processors flagged as needing torchvision
        from models.vlm import hf  # noqa: PLC0415

        build = getattr(hf, "_processor_with_pil", None)
        if build is None:
            raise LabError(f"The processor in {folder} cannot be loaded: {exc}") from exc
        return build(folder, transformers)


def load_base(folder: Path, qlora: bool, dtype: str | None = None) -> Loaded:
    """The base model for training: float32 on the CPU, bfloat16 on a GPU, 4-bit with QLoRA."""
    torch = need("torch")
    transformers = need("transformers")
    cuda = torch.cuda.is_available()  # type: ignore[attr-defined]
    if qlora and not cuda:
        raise LabError("QLoRA needs an NVIDIA GPU (4-bit weights with bitsandbytes); without "
                       "one, train plain LoRA (leave out --qlora).")
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    if qlora:
        need("bitsandbytes")
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(  # type: ignore[attr-defined]
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)  # type: ignore[attr-defined]
        kwargs["device_map"] = {"": 0}
    kwargs["dtype"] = getattr(torch, dtype) if dtype else (
        torch.bfloat16 if cuda else torch.float32)  # type: ignore[attr-defined]
    try:
        model = transformers.AutoModelForImageTextToText.from_pretrained(  # type: ignore[attr-defined]
            folder, **kwargs)
    except OSError as exc:
        raise LabError(f"The model in {folder} cannot be loaded: {exc}") from exc
    device = "cuda" if cuda else "cpu"
    if not qlora:
        model = model.to(device)
    processor = load_processor(folder)
    images = getattr(processor, "image_processor", None)
    if not cuda and images is not None and getattr(images, "do_image_splitting", False):
        images.do_image_splitting = False  # one tile a frame, as the player does on a CPU
    return Loaded(model, processor, device)


def add_lora(loaded: Loaded, options: FinetuneOptions) -> Any:
    peft = need("peft")
    config = peft.LoraConfig(r=options.rank, lora_alpha=options.alpha,  # type: ignore[attr-defined]
                             lora_dropout=options.dropout, target_modules=TEXT_LAYERS,
                             bias="none")
    model = loaded.model
    if options.qlora:
        model = peft.prepare_model_for_kbit_training(model)  # type: ignore[attr-defined]
    try:
        return peft.get_peft_model(model, config)  # type: ignore[attr-defined]
    except ValueError as exc:  # no layer matched
        raise LabError(f"LoRA found no attention or MLP layers of a language model called "
                       f"text_model in {type(model).__name__}; the lab trains SmolVLM and "
                       f"Idefics3 models ({exc}).") from exc


# ----- examples as tensors ---------------------------------------------------------------------
def chat_text(processor: Any, prompt: str) -> str:
    """The prompt as the player's transformers engine writes it (image first, then text)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def encode(processor: Any, example: Example, variant: str, answer: bool = True) -> dict:
    """Input tensors for one example; with ``answer``, the describer's words follow and
    ``labels`` hold them alone (-100 elsewhere)."""
    from PIL import Image  # noqa: PLC0415

    image = Image.fromarray(example.image())
    prompt = chat_text(processor, prompt_for(variant, example))
    if not answer:
        return dict(processor(text=prompt, images=[image], return_tensors="pt"))
    eos = processor.tokenizer.eos_token or ""
    full = processor(text=prompt + " " + example.text.strip() + eos, images=[image],
                     return_tensors="pt")
    start = processor(text=prompt, images=[image], return_tensors="pt")["input_ids"][0]
    ids = full["input_ids"][0]
    same = 0
    while same < min(len(start), len(ids)) and int(start[same]) == int(ids[same]):
        same += 1
    labels = full["input_ids"].clone()
    labels[0, :same] = -100
    if "attention_mask" in full:
        labels[full["attention_mask"] == 0] = -100
    return {**dict(full), "labels": labels}


def _to(batch: dict, model: Any) -> dict:
    torch = need("torch")
    out = {}
    for key, value in batch.items():
        if key == "pixel_values":
            value = value.to(model.device, dtype=next(
                p for p in model.parameters() if p.is_floating_point()).dtype)
        elif isinstance(value, torch.Tensor):  # type: ignore[attr-defined]
            value = value.to(model.device)
        out[key] = value
    return out


# ----- evaluation ------------------------------------------------------------------------------
def generate_texts(model: Any, processor: Any, examples: Sequence[Example], variant: str,
                   max_new_tokens: int, decoding: dict[str, Any] | None = None
                   ) -> tuple[list[str], float]:
    """Greedy answers, cleaned as the player cleans them, and the seconds each took."""
    torch = need("torch")
    from models.vlm import clean  # noqa: PLC0415

    texts = []
    began = time.perf_counter()
    model.eval()
    with torch.inference_mode():  # type: ignore[attr-defined]
        for example in examples:
            inputs = _to(encode(processor, example, variant, answer=False), model)
            out = model.generate(**inputs, **(decoding or {}), max_new_tokens=max_new_tokens,
                                 do_sample=False)
            new = out[0, inputs["input_ids"].shape[1]:]
            text = processor.tokenizer.decode(new, skip_special_tokens=True)
            texts.append(clean(text, max_words=words_for(variant, example)))
    took = (time.perf_counter() - began) / max(len(examples), 1)
    return texts, took


def eval_loss(model: Any, processor: Any, examples: Sequence[Example], variant: str) -> float:
    torch = need("torch")
    model.eval()
    losses = []
    with torch.inference_mode():  # type: ignore[attr-defined]
        for example in examples:
            losses.append(float(model(**_to(encode(processor, example, variant), model)).loss))
    return sum(losses) / max(len(losses), 1)


def evaluate_epoch(model: Any, processor: Any, examples: Sequence[Example],
                   options: FinetuneOptions, decoding: dict[str, Any] | None = None
                   ) -> tuple[float, CaptionScores, float]:
    texts, took = generate_texts(model, processor, examples, options.prompt,
                                 options.max_new_tokens, decoding)
    scores = caption_scores(texts, [e.references for e in examples])
    return eval_loss(model, processor, examples, options.prompt), scores, took


# ----- saving ----------------------------------------------------------------------------------
def _full_disk(exc: OSError) -> bool:
    return exc.errno in FULL_DISK


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def as_os_error(exc: BaseException) -> BaseException:
    """safetensors reports a failed write as SafetensorError "... (os error 28)": the OSError
    it stands for, so a full disk is known as one."""
    if isinstance(exc, OSError):
        return exc
    found = _OS_ERROR.search(str(exc))
    if found is None:
        return exc
    number = int(found.group(1))
    return OSError(number, os.strerror(number))


def save_checkpoint(model: Any, out: Path, epoch: int) -> Path:
    """The adapter after ``epoch`` in ``out/checkpoints/epoch-N`` (written beside, renamed)."""
    target = out / "checkpoints" / f"epoch-{epoch}"
    temp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)
    temp.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.save_pretrained(temp, safe_serialization=True)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise as_os_error(exc) from exc
    shutil.rmtree(target, ignore_errors=True)
    os.replace(temp, target)
    return target


def merge(base: Path, adapter: Path, out: Path) -> Path:
    """The base model with the adapter merged in, in bfloat16 safetensors, with the base's own
    processor settings (written beside, then renamed)."""
    torch = need("torch")
    peft = need("peft")
    transformers = need("transformers")
    model = transformers.AutoModelForImageTextToText.from_pretrained(  # type: ignore[attr-defined]
        base, dtype=torch.float32, local_files_only=True,  # type: ignore[attr-defined]
        trust_remote_code=False)
    model = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()  # type: ignore[attr-defined]
    model = model.to(torch.bfloat16)  # type: ignore[attr-defined]
    processor = load_processor(base)
    temp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        model.save_pretrained(temp, safe_serialization=True)
        processor.save_pretrained(temp)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise as_os_error(exc) from exc
    shutil.rmtree(out, ignore_errors=True)
    os.replace(temp, out)
    return out


# ----- training --------------------------------------------------------------------------------
EpochHook = Callable[[EpochResult], None]


def finetune(model_name: str | Path, dataset: Path, out: Path,
             options: FinetuneOptions = FinetuneOptions(), tracker: Any = None,
             on_epoch: EpochHook | None = None, say: Callable[[str], None] = print,
             parent: Any = None, decoding: dict[str, Any] | None = None) -> FinetuneResult:
    """Train, checkpoint and evaluate each epoch, then keep the adapter and (with ``merge``)
    the merged model. ``on_epoch`` hears each finished epoch (a search prunes from it by
    raising); ``decoding`` are generate() settings for the evaluation answers."""
    torch = need("torch")
    folder = model_folder(model_name)
    train = load_examples(dataset, "train")
    test = load_examples(dataset, "test")[:options.eval_limit] if options.evaluate else []
    if not train:
        raise LabError(f"The dataset {Path(dataset).name} has no training examples.")
    for value, what in ((options.epochs, "The number of epochs"), (options.rank, "The LoRA rank")):
        if value < 1:
            raise LabError(f"{what} must be at least 1, not {value}.")
    if (out / "checkpoints").exists():
        raise LabError(f"{out} already holds a fine-tuning run; choose a new folder.")
    torch.manual_seed(options.seed)  # type: ignore[attr-defined]
    loaded = load_base(folder, options.qlora)
    model = add_lora(loaded, options)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate)  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    (out / "lab-finetune.json").write_text(json.dumps(
        {"base": str(folder), "dataset": str(dataset), **asdict(options)}, indent=2))
    run = tracker.start(f"finetune {folder.name}", {
        "base": str(folder), "dataset": str(dataset), "train_examples": len(train),
        "test_examples": len(test), **asdict(options), **(decoding or {})}, parent=parent,
        tags={"lab.kind": "finetune"}) if tracker else None
    epochs: list[EpochResult] = []
    kept: Path | None = None
    order = random.Random(options.seed)
    status = "FAILED"
    try:
        for epoch in range(1, options.epochs + 1):
            model.train()
            losses = []
            shuffled = list(train)
            order.shuffle(shuffled)
            with bar(len(shuffled), f"epoch {epoch} of {options.epochs}") as tick:
                for step, example in enumerate(shuffled, start=1):
                    batch = encode(loaded.processor, example, options.prompt)
                    loss = model(**_to(batch, model)).loss
                    value = loss.item()
                    if not math.isfinite(value):
                        raise LabError(f"The training loss became {value} in epoch {epoch}; "
                                       f"try a lower learning rate.")
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    losses.append(value)
                    tick(step)
            result = EpochResult(epoch, sum(losses) / len(losses))
            if test:
                ev_loss, scores, took = evaluate_epoch(model, loaded.processor, test, options,
                                                       decoding)
                result = EpochResult(epoch, result.train_loss, ev_loss, scores, took)
            try:
                kept = save_checkpoint(model, out, epoch)
            except OSError as exc:
                if not _full_disk(exc):
                    raise LabError(f"The checkpoint of epoch {epoch} could not be saved in "
                                   f"{out}: {exc.strerror or exc}.") from exc
                where = (f"the adapter of epoch {epoch - 1} is kept in {kept}" if kept
                         else "no earlier checkpoint was finished")
                raise LabError(f"The disk filled up while saving epoch {epoch}; {where}. "
                               f"Free some space and train again.") from exc
            epochs.append(result)
            if run:
                run.metrics(_epoch_metrics(result), step=epoch)
            say(_epoch_line(result, options.epochs))
            if on_epoch:
                on_epoch(result)
        adapter = out / "adapter"
        shutil.rmtree(adapter, ignore_errors=True)
        shutil.copytree(kept, adapter)  # type: ignore[arg-type]
        merged = None
        if options.merge:
            say("Merging the adapter into a bfloat16 copy of the model.")
            try:
                merged = merge(folder, adapter, out / "merged")
            except OSError as exc:
                raise LabError(f"The merged model could not be written to {out / 'merged'}: "
                               f"{exc.strerror or exc}; the adapter is kept in "
                               f"{adapter}.") from exc
        status = "FINISHED"
        if run:
            run.params({"adapter": str(adapter), "merged": str(merged or "")})
        return FinetuneResult(adapter, merged, tuple(epochs))
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # a search stopped this trial: not a failure
            status = "KILLED"
            if run:
                run.tag("lab.pruned", "true")
        raise
    except KeyboardInterrupt:
        status = "KILLED"
        if kept:
            say(f"Stopped in epoch {len(epochs) + 1}; the adapter of epoch {len(epochs)} is "
                f"kept in {kept}.")
        raise
    finally:
        if run:
            run.finish(status)


def _epoch_metrics(result: EpochResult) -> dict[str, float]:
    out = {"train_loss": result.train_loss}
    if result.eval_loss is not None:
        out["eval_loss"] = result.eval_loss
    if result.scores is not None:
        out.update(asdict(result.scores))
        out["quality"] = result.scores.quality
    if result.seconds_per_example is not None:
        out["seconds_per_example"] = result.seconds_per_example
    return out


def _epoch_line(result: EpochResult, epochs: int) -> str:
    line = f"Epoch {result.epoch} of {epochs}: training loss {result.train_loss:.3f}"
    if result.scores is not None:
        line += (f", test loss {result.eval_loss:.3f}, quality {result.scores.quality:.3f}, "
                 f"CIDEr-D {result.scores.cider_d:.3f}")
    return line + "."
