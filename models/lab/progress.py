"""Progress bars for long steps: tqdm on standard error when it is installed, else nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


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


class Bar:
    """A bar whose total is known only once work starts: ``bar(done, total)``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            try:
                from tqdm import tqdm  # noqa: PLC0415
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=self.what, file=sys.stderr, unit="frame",
                             dynamic_ncols=True, disable=None)
        bar: Any = self._bar
        bar.update(done - bar.n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
