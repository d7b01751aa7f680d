"""Writes a tiny random-weight SmolVLM-architecture GGUF pair for tests: a Llama language model
(``tiny-smolvlm.gguf``) and its Idefics3 projector (``mmproj-tiny-smolvlm.gguf``).

Only numpy is needed: the GGUF format is written here directly. Tensor names, shapes and
metadata are those llama.cpp's own ``convert_hf_to_gguf.py`` writes for the tiny Idefics3 model
of ``tests/tiny_vlm.py`` (text: 2 layers of width 64; vision: 2 layers of width 32, 64-pixel
images in 16-pixel patches, scale factor 2). The vocabulary is GPT-2's 256 byte symbols, the
special tokens SmolVLM uses and a few merges. The weights are random, so llama.cpp answers with
gibberish, but the whole path (projector, image markers, chat template, sampling) runs.

Run: ``python scripts/tiny_gguf.py FOLDER [tiny|smolvlm-256m]``.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

ALIGN = 32
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<unk>", "<image>",
           "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
MERGES = [("Ċ", "Ċ"), ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n")]
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
SIZES = {
    # name: (text shape, vision shape, vocabulary size)
    "tiny": (dict(hidden=64, ffn=128, layers=2, heads=4, kv_heads=2),
             dict(hidden=32, ffn=64, layers=2, heads=2, image=64, patch=16, scale=2), 0),
    # SmolVLM-256M's shape (about 1.1 GB of float32), for timing only; never commit it.
    "smolvlm-256m": (dict(hidden=576, ffn=1536, layers=30, heads=9, kv_heads=3),
                     dict(hidden=768, ffn=3072, layers=12, heads=12, image=512, patch=16,
                          scale=4), 49280),
}


def byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    extra = 0
    symbols = {}
    for b in range(256):
        if b in keep:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


# ----- the GGUF writer --------------------------------------------------------------------------
def _string(s: str) -> bytes:
    data = s.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(v: object) -> bytes:
    """Type id and payload of one metadata value."""
    if isinstance(v, bool):
        return struct.pack("<I?", 7, v)
    if isinstance(v, int):
        return struct.pack("<II", 4, v) if v >= 0 else struct.pack("<Ii", 5, v)
    if isinstance(v, float):
        return struct.pack("<If", 6, v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + _string(v)
    if isinstance(v, tuple):  # ("int32" | "float32", [numbers])
        kind, items = v
        code, fmt = {"int32": (5, "<i"), "float32": (6, "<f")}[kind]
        return struct.pack("<IIQ", 9, code, len(items)) + b"".join(
            struct.pack(fmt, x) for x in items)
    if isinstance(v, list):  # strings
        return struct.pack("<IIQ", 9, 8, len(v)) + b"".join(_string(s) for s in v)
    raise TypeError(f"cannot write {type(v).__name__} to GGUF")


def write_gguf(path: Path, metadata: dict[str, object], tensors: dict[str, np.ndarray]) -> Path:
    """A GGUF version 3 file with ``metadata`` and float32 ``tensors``."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    for key, value in metadata.items():
        out.append(_string(key) + _value(value))
    offset = 0
    blobs = []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array, dtype=np.float32)
        dims = list(reversed(array.shape))  # GGUF lists the fastest-moving dimension first
        out.append(_string(name) + struct.pack("<I", len(dims))
                   + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, offset))
        data = array.tobytes()
        pad = -len(data) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = b"".join(out)
    header += b"\0" * (-len(header) % ALIGN)
    path.write_bytes(header + b"".join(blobs))
    return path


# ----- the two files ----------------------------------------------------------------------------
def vocabulary(size: int = 0) -> tuple[list[str], list[int], list[str]]:
    """Special tokens, the 256 byte symbols, the merges, then filler tokens up to ``size``."""
    tokens = SPECIAL + byte_symbols() + ["".join(m) for m in MERGES]
    tokens += [f"<filler_{i}>" for i in range(size - len(tokens))]
    types = [3] * len(SPECIAL) + [1] * (len(tokens) - len(SPECIAL))  # 3 control, 1 normal
    return tokens, types, [" ".join(m) for m in MERGES]


def text_model(rng: np.random.Generator, name: str, size: str = "tiny") -> tuple[dict, dict]:
    t, _, n_vocab = SIZES[size]
    tokens, types, merges = vocabulary(n_vocab)
    head_dim = t["hidden"] // t["heads"]
    meta: dict[str, object] = {
        "general.architecture": "llama", "general.type": "model", "general.name": name,
        "llama.block_count": t["layers"], "llama.context_length": 2048,
        "llama.embedding_length": t["hidden"], "llama.feed_forward_length": t["ffn"],
        "llama.attention.head_count": t["heads"], "llama.attention.head_count_kv": t["kv_heads"],
        "llama.rope.freq_base": 10000.0, "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.attention.key_length": head_dim, "llama.attention.value_length": head_dim,
        "llama.rope.dimension_count": head_dim, "llama.vocab_size": len(tokens),
        "general.file_type": 0, "general.quantization_version": 2,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": ("int32", types),
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": SPECIAL.index("<|im_start|>"),
        "tokenizer.ggml.eos_token_id": SPECIAL.index("<end_of_utterance>"),
        "tokenizer.ggml.unknown_token_id": SPECIAL.index("<unk>"),
        "tokenizer.ggml.padding_token_id": SPECIAL.index("<pad>"),
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": CHAT_TEMPLATE,
    }

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.05, shape).astype(np.float32)

    h, kv = t["hidden"], t["kv_heads"] * head_dim
    ten = {"token_embd.weight": w(len(tokens), h), "output.weight": w(len(tokens), h),
           "output_norm.weight": np.ones(h, np.float32)}
    for i in range(t["layers"]):
        b = f"blk.{i}."
        ten |= {b + "attn_norm.weight": np.ones(h, np.float32),
                b + "ffn_norm.weight": np.ones(h, np.float32),
                b + "attn_q.weight": w(h, h), b + "attn_k.weight": w(kv, h),
                b + "attn_v.weight": w(kv, h), b + "attn_output.weight": w(h, h),
                b + "ffn_gate.weight": w(t["ffn"], h), b + "ffn_up.weight": w(t["ffn"], h),
                b + "ffn_down.weight": w(h, t["ffn"])}
    return meta, ten


def projector(rng: np.random.Generator, name: str, size: str = "tiny",
              preproc: int | None = None) -> tuple[dict, dict]:
    """``preproc``: the longest edge frames are scaled to before tiling (real SmolVLM files say
    4 tiles, 2048 pixels); None: one tile's size; 0: the key is left out, as in older files."""
    text, v, _ = SIZES[size]
    meta: dict[str, object] = {
        "general.architecture": "clip", "general.type": "mmproj", "general.name": name,
        "general.file_type": 0, "clip.has_vision_encoder": True,
        "clip.vision.projection_dim": text["hidden"], "clip.vision.image_size": v["image"],
        "clip.vision.patch_size": v["patch"], "clip.vision.embedding_length": v["hidden"],
        "clip.vision.feed_forward_length": v["ffn"], "clip.vision.block_count": v["layers"],
        "clip.vision.attention.head_count": v["heads"],
        "clip.vision.image_mean": ("float32", [0.5, 0.5, 0.5]),
        "clip.vision.image_std": ("float32", [0.5, 0.5, 0.5]),
        "clip.projector_type": "idefics3", "clip.vision.attention.layer_norm_epsilon": 1e-6,
        "clip.vision.projector.scale_factor": v["scale"], "clip.use_gelu": True,
        "general.quantization_version": 2,
    }
    if preproc != 0:
        meta["clip.vision.preproc_image_size"] = v["image"] if preproc is None else preproc

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.05, shape).astype(np.float32)

    h, f, p = v["hidden"], v["ffn"], v["patch"]
    zeros, ones = (lambda n: np.zeros(n, np.float32)), (lambda n: np.ones(n, np.float32))
    patches = (v["image"] // p) ** 2
    ten = {"mm.model.fc.weight": w(text["hidden"], h * v["scale"] ** 2),
           "v.patch_embd.weight": w(h, 3, p, p), "v.patch_embd.bias": zeros(h),
           "v.position_embd.weight": w(patches, h),
           "v.post_ln.weight": ones(h), "v.post_ln.bias": zeros(h)}
    for i in range(v["layers"]):
        b = f"v.blk.{i}."
        ten |= {b + "ln1.weight": ones(h), b + "ln1.bias": zeros(h),
                b + "ln2.weight": ones(h), b + "ln2.bias": zeros(h),
                b + "ffn_up.weight": w(f, h), b + "ffn_up.bias": zeros(f),
                b + "ffn_down.weight": w(h, f), b + "ffn_down.bias": zeros(h)}
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            ten |= {b + part + ".weight": w(h, h), b + part + ".bias": zeros(h)}
    return meta, ten


def build_tiny_gguf(folder: str | Path, size: str = "tiny", seed: int = 0,
                    preproc: int | None = None) -> tuple[Path, Path]:
    """Write the model and its projector into ``folder``; return (model, projector) paths.
    ``preproc`` is the projector's longest edge (see :func:`projector`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    name = "tiny-smolvlm" if size == "tiny" else f"random-{size}"
    model = write_gguf(folder / f"{name}.gguf", *text_model(rng, name, size))
    mmproj = write_gguf(folder / f"mmproj-{name}.gguf", *projector(rng, name, size, preproc))
    return model, mmproj


if __name__ == "__main__":
    for p in build_tiny_gguf(sys.argv[1] if len(sys.argv) > 1 else "tiny-gguf", *sys.argv[2:3]):
        print(p)
