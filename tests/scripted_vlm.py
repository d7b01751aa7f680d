"""A vision-language engine that writes given text, for timing and ordering tests.

No trained model weights can exist on this machine (random-weight models write random words), so
tests that need to know *what* the model says, or *when* each piece comes, use this engine. It
follows the real :class:`~models.vlm.base.VlmEngine` contract (stream, describe, describe_batch,
close) and records what it was asked. The real loading and generation code is tested on the tiny
random-weight models (tests/tiny_vlm.py, scripts/tiny_gguf.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from models.vlm.base import VlmEngine, VlmRequest
from models.vlm.clean import clean


class ScriptedVlm(VlmEngine):
    """Streams ``pieces`` for every request. When ``gate`` is given, a stream waits for it
    after the first ``release_after`` pieces (so a test can see what arrived before the rest);
    batched answers are never held."""

    name = "scripted"

    def __init__(self, pieces: Sequence[str], gate: threading.Event | None = None,
                 release_after: int = 1, fail: BaseException | None = None,
                 device: str = "cpu", label: str = "") -> None:
        self.pieces = list(pieces)
        self.label = label
        self.gate = gate
        self.release_after = release_after
        self.fail = fail
        self.device = device
        self.prompts: list[str] = []
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.closed = threading.Event()
        self.notes: list[str] = []
        self.finished_streams = 0

    def load(self) -> None:
        return None

    def _pieces(self, request: VlmRequest) -> list[str]:
        """``label`` answers the question for a person's label; ``pieces`` everything else."""
        if self.label and request.prompt.startswith("This picture shows one person"):
            return [self.label]
        return self.pieces

    def stream(self, request: VlmRequest) -> Iterator[str]:
        self.threads.add(threading.current_thread().name)
        self.prompts.append(request.prompt)
        if self.fail is not None:
            raise self.fail
        for i, piece in enumerate(self._pieces(request)):
            if self.gate is not None and i == self.release_after:
                self.gate.wait(30)
            yield piece
        self.finished_streams += 1

    def describe_batch(self, requests: Sequence[VlmRequest]) -> list[str]:
        """Batched look-ahead answers: never held by the gate (only streams are)."""
        self.threads.add(threading.current_thread().name)
        self.batches.append(len(requests))
        self.prompts.extend(r.prompt for r in requests)
        if self.fail is not None:
            raise self.fail
        return [clean("".join(self._pieces(r)), max_words=r.max_words) for r in requests]

    def close(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.closed.set()
