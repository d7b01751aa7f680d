"""User settings: one dataclass, stored as JSON in the user's config folder.

A damaged settings file never stops the player: it is set aside (renamed ``.bad``) and the
defaults are used, with a message the window shows and speaks; a file with some values of the
wrong type keeps its good values, and a copy is kept as ``.bad``. Only what the user changes in
the player is saved: options given on the command line apply to that run alone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

log = logging.getLogger(__name__)

MODES = ("auto", "duck", "pause")
VERBOSITY_NAMES = {1: "brief", 2: "standard", 3: "detailed"}
SPEECH_OUTPUTS = ("voice", "screen_reader", "both")
SPEECH_ENGINES = ("auto", "pyttsx3", "piper", "espeak-ng")


def config_dir() -> Path:
    """The folder for settings: ``$XDG_CONFIG_HOME/video-narrator`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "video-narrator"


@dataclass
class Settings:
    """Everything the user can set; saved between runs."""

    volume: float = 100.0
    speed: float = 1.0
    narration: bool = True
    mode: str = "auto"  # duck in the pauses, and pause the film briefly for what matters
    auto_pauses: int = 3  # automatic mode pauses the film at most this often a minute
    verbosity: int = 2
    speech_output: str = "voice"
    speech_engine: str = "auto"
    live_analysis: bool = True
    wait_for_narrator: bool = True  # a film waits at its start for live analysis to look
    vlm_model: str = ""  # a catalog name (narrate models list) or a path; "" for none
    voice: str = "en-us"
    speech_rate: int = 175
    speech_volume: float = 100.0
    duck_db: float = -11.0
    keymap: dict[str, list[str]] = field(default_factory=dict)
    last_folder: str = ""

    def normalized(self) -> Settings:
        """Return a copy with every value clamped to its allowed range."""
        s = Settings(**asdict(self))
        s.volume = min(max(float(s.volume), 0.0), 130.0)
        s.speed = min(max(float(s.speed), 0.25), 4.0)
        s.mode = s.mode if s.mode in MODES else "auto"
        s.auto_pauses = min(max(int(s.auto_pauses), 0), 20)
        s.verbosity = min(max(int(s.verbosity), 1), 3)
        s.speech_output = s.speech_output if s.speech_output in SPEECH_OUTPUTS else "voice"
        s.speech_engine = s.speech_engine if s.speech_engine in SPEECH_ENGINES else "auto"
        s.speech_rate = min(max(int(s.speech_rate), 80), 450)
        s.speech_volume = min(max(float(s.speech_volume), 0.0), 100.0)
        s.duck_db = min(max(float(s.duck_db), -30.0), 0.0)
        s.keymap = {str(k): [str(x) for x in v] for k, v in dict(s.keymap).items()}
        return s


@dataclass
class LoadResult:
    settings: Settings
    problem: str = ""


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load(path: Path | None = None, move_damaged: bool = True) -> LoadResult:
    """Read settings; a missing file gives defaults, a damaged one gives defaults and a message
    (and is moved aside to settings.json.bad unless ``move_damaged`` is False: a check that
    only reads, such as ``narrate doctor``, leaves it where it is). A readable file with some
    values of the wrong type keeps its good values; a copy of it is kept as settings.json.bad
    and the file is rewritten with defaults in place of the bad values."""
    path = path or settings_path()
    bad = path.with_suffix(".json.bad")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return LoadResult(Settings())
    except (OSError, ValueError) as exc:
        log.warning("settings file %s unreadable: %s", path, exc)
        if not move_damaged:
            return LoadResult(Settings(), f"Your settings file {path} cannot be read ({exc}); "
                                          f"the player will use defaults and keep it as "
                                          f"{bad.name}.")
        try:
            os.replace(path, bad)
        except OSError:
            bad = path
        return LoadResult(Settings(), f"Your settings file could not be read, so defaults are in use. "
                                      f"The old file is kept at {bad}.")
    good, wrong = _valid_values(raw)
    settings = Settings(**good).normalized()
    if not wrong:
        return LoadResult(settings)
    names = ", ".join(wrong)
    log.warning("settings values invalid: %s", names)
    if not move_damaged:
        return LoadResult(settings, f"Some values in your settings file {path} are not valid "
                                    f"({names}); the player will use defaults for them and keep "
                                    f"the file as {bad.name}.")
    try:
        shutil.copyfile(path, bad)
    except OSError as exc:
        log.warning("could not copy %s to %s: %s", path, bad, exc)
        return LoadResult(settings, f"Some settings were not valid ({names}), so defaults are "
                                    f"in use for them.")
    save(settings, path)
    return LoadResult(settings, f"Some settings were not valid ({names}), so defaults are in "
                                f"use for them. The old file is kept at {bad}.")


def _valid_values(raw: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """The known values of the right type, and the names of the known ones of a wrong type
    (unknown names, from a newer version perhaps, are ignored)."""
    defaults = Settings()
    good: dict[str, object] = {}
    wrong: list[str] = []
    for f in fields(Settings):
        if f.name not in raw:
            continue
        value, default = raw[f.name], getattr(defaults, f.name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value)
        elif isinstance(default, dict):
            ok = isinstance(value, dict) and all(
                isinstance(v, list) and all(isinstance(x, str) for x in v)
                for v in value.values())
        else:
            ok = isinstance(value, type(default))
        if ok:
            good[f.name] = value
        else:
            wrong.append(f.name)
    return good, wrong


def save(settings: Settings, path: Path | None = None) -> str:
    """Write settings atomically. Returns "" on success, else a message for the user."""
    path = path or settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(settings.normalized()), fh, indent=2)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("could not save settings: %s", exc)
        return f"Settings could not be saved ({exc.strerror or exc}). They still apply until you quit."
    return ""
