"""The interface every vision-language engine follows, and helpers shared by all of them."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from models.vlm.clean import clean


class VlmError(Exception):
    """A vision-language model cannot load or answer; the message says why and what to do."""


@dataclass(frozen=True)
class VlmRequest:
    """One question about one frame.

    ``image`` is RGB uint8 with shape (height, width, 3); ``max_new_tokens`` bounds the answer;
    ``max_words`` (optional) is the word budget :func:`clean` cuts the answer to.
    """

    image: np.ndarray
    prompt: str
    max_new_tokens: int = 48
    max_words: int | None = None

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"A VLM request needs an RGB image of shape (height, width, 3), "
                             f"not {shape}.")
        if img.dtype != np.uint8:
            raise ValueError(f"A VLM request needs a uint8 image, not {img.dtype}.")
        if not self.prompt.strip():
            raise ValueError("A VLM request needs a prompt; this one is empty.")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}.")


class VlmEngine(ABC):
    """A vision-language model behind one small interface.

    ``problem()`` says, without loading anything heavy, why the engine cannot work here ("" when
    it can); ``load()`` does the slow part once; ``stream()`` yields text pieces as they are
    generated; ``describe()`` returns the whole answer, cleaned for speech, and
    ``describe_batch()`` the answers to several requests at once.
    """

    name: str = "vlm"
    device: str = "cpu"
    """Where the model runs: "cpu", "cuda:0"... An engine that moves itself (a GPU out of
    memory, back to the processor) updates it."""
    off: str = ""
    """Whole sentences saying why the engine switched itself off for good (the worker stops
    asking it and tells the user); "" while it works."""
    notes: Sequence[str] = ()
    """Sentences the user should hear once (a fallback taken while loading, a slower mode).
    An engine with something to say keeps its own list; whoever says them clears it."""

    def problem(self) -> str:
        return ""

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def stream(self, request: VlmRequest) -> Iterator[str]: ...

    def describe(self, request: VlmRequest) -> str:
        return clean("".join(self.stream(request)), max_words=request.max_words)

    def describe_batch(self, requests: Sequence[VlmRequest]) -> list[str]:
        """One cleaned answer per request, in order ([] for no requests).

        This answers them one by one; engines that can run several requests at once (for the
        look-ahead) override it, with the same answers as :meth:`describe` would give.
        """
        return [self.describe(request) for request in requests]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model; the engine may be loaded again later."""

    def __enter__(self) -> VlmEngine:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "prof", "jr", "sr", "vs", "etc", "e.g", "i.e",
                 "approx"}
NUMBER_ABBREVIATIONS = {"no"}
"""Abbreviations only before a number ("No. 5", "room no. 12"); "The answer is no. A man…"
ends a sentence."""
_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")


def _split_complete(buffer: str) -> tuple[list[str], str]:
    """Complete sentences at the front of ``buffer`` and the incomplete rest."""
    done: list[str] = []
    start = 0
    for m in _END.finditer(buffer):
        candidate = buffer[start:m.end()]
        last_word = (candidate.rstrip(".!?…\"')]").rsplit(None, 1)[-1:] or [""])[0].lower()
        if m.group().startswith(".") and last_word in ABBREVIATIONS:
            continue
        if m.group() == "." and last_word in NUMBER_ABBREVIATIONS:
            after = buffer[m.end():].lstrip()
            if not after:
                break  # wait for what follows to tell "No. 5" from "no. A man"
            if after[0].isdigit():
                continue
        if candidate.strip():
            done.append(candidate.strip())
        start = m.end()
    return done, buffer[start:]


def first_sentence(pieces: Iterable[str]) -> Iterator[str]:
    """Yield whole sentences from a stream of text pieces as soon as each one is complete.

    A sentence is complete when its full stop (or ! ? …) is followed by white space, so speech
    can start on the first sentence while the model is still writing the second. Whatever is
    left at the end of the stream is yielded last.
    """
    buffer = ""
    for piece in pieces:
        buffer += piece
        done, buffer = _split_complete(buffer)
        yield from done
    if buffer.strip():
        yield buffer.strip()
