"""Progress bars for long steps: tqdm on standard error when it is installed, else nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def bar(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` steps; the callable sets how many are done."""
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        yield lambda done: None
        return
    with tqdm(total=total, desc=what, file=sys.stderr, unit="step", leave=True,
              dynamic_ncols=True, disable=None) as progress:

        def tick(done: int) -> None:
            progress.update(done - progress.n)

        yield tick
