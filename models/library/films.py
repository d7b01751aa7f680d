"""Which of the paths given are films: files as they are, folders searched through.

A file named on the command line is always taken as a film (the preparation says why it is not
one, if it is not). In a folder and its sub-folders, files with a video file name are films;
other files are skipped and listed, except hidden files and the description tracks that
preparing writes beside the films, which are expected there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg",
                            ".ogv", ".ts", ".wmv", ".flv"})
"""The same kinds of file the player's Open dialog offers as videos."""


@dataclass(frozen=True)
class FilmList:
    """The films found, in order, and the files passed over with why."""

    films: tuple[Path, ...] = ()
    not_films: tuple[Path, ...] = ()  # files in the folders that are not videos
    problems: tuple[str, ...] = ()  # folders that could not be read, one sentence each
    folders: int = 0  # how many folders were given

    def message(self) -> str:
        """One sentence listing the files that were skipped ("" when none were)."""
        if not self.not_films:
            return ""
        names = ", ".join(p.name for p in self.not_films[:10])
        more = f" and {len(self.not_films) - 10} more" if len(self.not_films) > 10 else ""
        count = len(self.not_films)
        return (f"{count} file{'s' if count != 1 else ''} in the folder"
                f"{'s' if self.folders != 1 else ''} "
                f"{'are not videos' if count != 1 else 'is not a video'}, so "
                f"{'they were' if count != 1 else 'it was'} "
                f"skipped: {names}{more}.")


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _expected_beside(path: Path) -> bool:
    """Files a prepared library holds besides its films, passed over without a word."""
    return path.name.startswith(".") or path.name.lower().endswith(".vtt")


@dataclass
class _Search:
    films: list[Path] = field(default_factory=list)
    not_films: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)

    def add(self, path: Path) -> None:
        key = path.resolve()
        if key not in self.seen:
            self.seen.add(key)
            self.films.append(path)

    def folder(self, top: Path) -> None:
        def failed(exc: OSError) -> None:
            where = Path(exc.filename).name if exc.filename else top.name
            self.problems.append(f"The folder {where} could not be read "
                                 f"({(exc.strerror or str(exc)).lower()}), so its films were "
                                 f"left out.")

        for root, dirs, files in os.walk(top, onerror=failed):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(root) / name
                if _expected_beside(path):
                    continue
                if is_video_name(path):
                    self.add(path)
                else:
                    self.not_films.append(path)


def find_films(paths: Iterable[str | os.PathLike[str]]) -> FilmList:
    """The films among ``paths``: each file as it is; each folder searched through, its
    sub-folders too, in name order. A film named twice is prepared once."""
    search = _Search()
    folders = 0
    for item in paths:
        path = Path(item)
        if path.is_dir():
            folders += 1
            search.folder(path)
        else:
            search.add(path)
    return FilmList(tuple(search.films), tuple(search.not_films), tuple(search.problems),
                    folders)


def film_seconds(path: Path) -> float:
    """The film's length from its header (0.0 when it cannot be told), without decoding."""
    try:
        import av  # noqa: PLC0415

        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1_000_000
            lengths = [float(s.duration * s.time_base) for s in container.streams
                       if s.duration is not None and s.time_base is not None]
            return max(lengths, default=0.0)
    except Exception:  # noqa: BLE001 - the preparation says what is wrong with it
        return 0.0
