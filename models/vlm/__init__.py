"""Vision-language models: a frame and a prompt in, a short present-tense description out.

Engines sit behind :class:`VlmEngine`; heavy libraries (torch, transformers) are imported only
inside the engine that needs them (see :mod:`models.vlm.hf`).
"""

from __future__ import annotations

from models.vlm.base import VlmEngine, VlmError, VlmRequest, first_sentence
from models.vlm.clean import clean
from models.vlm.prompts import ask_prompt, describe_prompt, label_prompt, word_budget

__all__ = ["VlmEngine", "VlmError", "VlmRequest", "first_sentence", "clean", "ask_prompt",
           "describe_prompt", "label_prompt", "word_budget"]
