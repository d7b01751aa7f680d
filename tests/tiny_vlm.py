"""Builds a tiny Idefics3 (SmolVLM architecture) model with random weights, for tests.

Nothing is downloaded: the tokenizer is trained here on a few sentences, the weights are random
and everything is written with ``save_pretrained(safe_serialization=True)`` into a folder that
``models.vlm.hf.HfVlm`` loads with ``local_files_only=True``. The output is gibberish, but the
whole pipeline (chat template, image processor, vision encoder, generate, streaming) runs.

``build_tiny_vlm(folder, size="smolvlm-256m")`` builds a model of SmolVLM-256M's shape instead
(about 1 GB of float32 weights) for timing, and ``size="smolvlm-2.2b"`` one of SmolVLM-Instruct's
(2.2 billion parameters: pass ``dtype="bfloat16"`` to write 4.5 GB instead of 9); never commit
what they write. These sizes keep the real vocabulary size (the rows the small tokenizer does not
use are silenced), so the output layer costs what it really costs.
"""

from __future__ import annotations

from pathlib import Path

# SmolVLM's chat template: "<|im_start|>User:<image>Describe.<end_of_utterance>\nAssistant:"
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

SENTENCES = [
    "A person walks across the street and opens a red door.",
    "Two people sit at a table in a bright kitchen.",
    "The first person picks up a cup; the second person reads a letter.",
    "Text on screen reads: Chapter One. The camera pans over a city at night.",
    "A dog runs along the beach as waves roll in.",
    "She turns and looks out of the window. He closes the book.",
    "Describe what is on screen in one short present-tense sentence.",
    "Say what changed. Do not repeat what was already said.",
]

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<unk>",
           "<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
SPECIAL += [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]

SIZES = {
    # name: (text kwargs, vision kwargs, scale_factor, image size, bpe vocab size)
    "tiny": (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2),
             dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=64, patch_size=16),
             2, 64, 400),
    "smolvlm-256m": (dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                          num_attention_heads=9, num_key_value_heads=3, head_dim=64),
                     dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                          num_attention_heads=12, image_size=512, patch_size=16),
                     4, 512, 49280),
    # SmolVLM-Instruct: SmolLM2-1.7B text model and a SigLIP so400m vision encoder
    "smolvlm-2.2b": (dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                          num_attention_heads=32, num_key_value_heads=32),
                     dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                          num_attention_heads=16, image_size=384, patch_size=14),
                     3, 384, 49155),
}


def build_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer with the special tokens Idefics3 needs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
        pad_token="<pad>", unk_token="<unk>",
        additional_special_tokens=[t for t in SPECIAL if t.startswith("<image>")
                                   or t.startswith("<fake") or t.startswith("<global")
                                   or t.startswith("<end_of") or t.startswith("<row_")])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_vlm(folder: str | Path, size: str = "tiny", seed: int = 0,
                   dtype: str = "float32", splitting: bool = False) -> Path:
    """Write a random-weight Idefics3 model, its processor and tokenizer into ``folder``, with
    weights stored in ``dtype``. ``splitting``: the processor cuts large images into tiles, as
    the published SmolVLM processors do (images up to 4 tiles wide, plus a small overview)."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
    )

    # The PIL image processor needs no torchvision (the top-level name insists on it).
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    text_kw, vision_kw, scale, image_size, vocab = SIZES[size]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab)
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=splitting,
        size={"longest_edge": image_size * (4 if splitting else 1)},
        max_image_size={"longest_edge": image_size})
    patches = image_size // vision_kw["patch_size"]
    image_seq_len = (patches * patches) // (scale * scale)
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=image_seq_len,
                                  chat_template=CHAT_TEMPLATE)
    # The tiny model keeps the tokenizer's few hundred tokens; the others the real vocabulary.
    vocab_size = len(tokenizer) if size == "tiny" else max(len(tokenizer), vocab)
    eos = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    pad = tokenizer.convert_tokens_to_ids("<pad>")
    config = Idefics3Config(
        text_config=dict(model_type="llama", vocab_size=vocab_size, pad_token_id=pad,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=eos,
                         max_position_embeddings=2048, rms_norm_eps=1e-5, **text_kw),
        vision_config=vision_kw, scale_factor=scale,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=pad)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    # Random weights often pick a special token first and stop at once; silence them all so
    # the tiny model writes (gibberish) text the pipeline can stream.
    with torch.no_grad():
        model.lm_head.weight[tokenizer.convert_tokens_to_ids(SPECIAL)] = 0.0
        model.lm_head.weight[len(tokenizer):] = 0.0  # ids the tokenizer cannot write
    model = model.to(getattr(torch, dtype))
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


if __name__ == "__main__":  # python -m tests.tiny_vlm FOLDER [tiny|smolvlm-256m|smolvlm-2.2b]
    import sys

    print(build_tiny_vlm(sys.argv[1], *sys.argv[2:3]))
