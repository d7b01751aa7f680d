"""The three parts of a SmolVLM / Idefics3 model as torch modules OpenVINO can trace.

:mod:`models.vlm.openvino_convert` hands these to ``openvino.convert_model``. They reuse the
model's own layers (so the weights and the numerics are the model's) and replace only the glue
that does not trace well: the vision embeddings' bucketised position ids (a full square tile has
the plain ids 0..n-1), and the language model's cache objects (past keys and values come in and
go out as plain tensors, and the attention mask is built from the two-dimensional padding mask,
so a left-padded batch works as in transformers). torch is imported by the caller.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class VisionPart(nn.Module):
    """Image tiles (N, 3, S, S), normalised as the processor gives them, to the language
    model's image token embeddings (N, image_seq_len, hidden)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.vision = model.model.vision_model
        self.connector = model.model.connector

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.vision.embeddings
        patches = embeddings.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        hidden = patches + embeddings.position_embedding.weight.unsqueeze(0)
        hidden = self.vision.encoder(inputs_embeds=hidden, attention_mask=None).last_hidden_state
        return self.connector(self.vision.post_layernorm(hidden))


class EmbeddingPart(nn.Module):
    """Token ids (B, T) to their embeddings (B, T, hidden)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.embed = model.model.text_model.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids)


def _repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups == 1:
        return x
    b, heads, t, d = x.shape
    return x[:, :, None, :, :].expand(b, heads, groups, t, d).reshape(b, heads * groups, t, d)


class LanguagePart(nn.Module):
    """One step of the Llama-style language model with its cache as plain tensors.

    Inputs: embeddings (B, T, hidden), attention_mask (B, P+T) with 0 for padding, position_ids
    (B, T), and per layer the past keys and values (B, kv_heads, P, head_dim). Outputs: the
    logits of the last position (B, vocab) and per layer the present keys and values
    (B, kv_heads, P+T, head_dim).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        self.rotate = apply_rotary_pos_emb
        text = model.model.text_model
        self.layers = text.layers
        self.norm = text.norm
        self.rotary = text.rotary_emb
        self.head = model.lm_head
        config = model.config.text_config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch, length = inputs_embeds.shape[0], inputs_embeds.shape[1]
        past_length = past[0].shape[2]
        queries = torch.arange(length) + past_length
        keys = torch.arange(attention_mask.shape[1])
        allowed = (keys[None, :] <= queries[:, None])[None, None] & (
            attention_mask[:, None, None, :] > 0)
        mask = torch.zeros(allowed.shape, dtype=inputs_embeds.dtype).masked_fill(~allowed, -1e9)
        cos, sin = self.rotary(inputs_embeds, position_ids)
        hidden = inputs_embeds
        present: list[torch.Tensor] = []
        groups = self.heads // self.kv_heads
        for i, layer in enumerate(self.layers):
            attention = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attention.q_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
            k = attention.k_proj(x).view(batch, length, self.kv_heads, self.head_dim)
            v = attention.v_proj(x).view(batch, length, self.kv_heads, self.head_dim)
            q, k = self.rotate(q, k.transpose(1, 2), cos, sin)
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v.transpose(1, 2)], dim=2)
            present += [k, v]
            out = nn.functional.scaled_dot_product_attention(
                q, _repeat_kv(k, groups), _repeat_kv(v, groups), attn_mask=mask,
                scale=attention.scaling)
            out = out.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
            hidden = hidden + attention.o_proj(out)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        logits = self.head(self.norm(hidden[:, -1, :]))
        return (logits, *present)
