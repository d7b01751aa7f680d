"""The end of a library run: a summary to read, and a JSON report to keep."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.library.job import FilmOutcome
from models.library.progress import minutes

REPORT_VERSION = 1


@dataclass(frozen=True)
class LibraryReport:
    """Every film's outcome, in the order given, with what was passed over and how long the
    whole run took (``stopped`` when Ctrl-C ended it)."""

    outcomes: tuple[FilmOutcome, ...]
    not_films: tuple[str, ...] = ()
    seconds: float = 0.0
    workers: int = 1
    cluster: str = ""  # "" for this process, "local" for the embedded cluster, else the address
    stopped: bool = False
    problems: tuple[str, ...] = field(default_factory=tuple)

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.stopped and not self.count("failed")

    def film_seconds(self) -> float:
        return sum(o.duration for o in self.outcomes if o.state == "done")

    def summary(self) -> list[str]:
        """Plain lines: the counts, then each failed or stopped film with its reason."""
        done, skipped, failed = self.count("done"), self.count("skipped"), self.count("failed")
        stopped = self.count("stopped")
        head = (f"{'Stopped' if self.stopped else 'Finished'}: {done} prepared, {skipped} "
                f"skipped as prepared already, {failed} failed"
                + (f", {stopped} stopped" if stopped else "")
                + f"; {minutes(self.film_seconds())} minutes of film analysed in "
                  f"{minutes(self.seconds)} minutes.")
        lines = [head]
        lines += [f"Failed: {o.reason}" for o in self.outcomes if o.state == "failed"]
        lines += [f"Stopped: {Path(o.video).name}. {o.reason}" for o in self.outcomes
                  if o.state == "stopped" and o.reason]
        if self.not_films:
            lines.append(f"Not videos, skipped: {', '.join(Path(p).name for p in self.not_films)}.")
        lines += list(self.problems)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "stopped": self.stopped,
            "cluster": self.cluster,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
            "film_seconds": round(self.film_seconds(), 3),
            "counts": {s: self.count(s) for s in ("done", "skipped", "failed", "stopped")},
            "films": [o.to_dict() for o in self.outcomes],
            "not_videos": list(self.not_films),
            "problems": list(self.problems),
        }

    def write(self, path: Path) -> str:
        """Write the report as JSON, atomically; "" when written, else why not in a sentence."""
        folder = path.parent if str(path.parent) else Path(".")
        temp = ""
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2, ensure_ascii=False)
                handle.write("\n")
            os.replace(temp, path)
            return ""
        except OSError as exc:
            if temp:
                Path(temp).unlink(missing_ok=True)
            return (f"The report could not be written to {path} "
                    f"({(exc.strerror or str(exc)).lower()}).")
