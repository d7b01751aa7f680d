"""Start-up: build the player's parts and run the window or the terminal mode."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer

from player.audio.speech_output import SpeechOutput
from player.core import settings as settings_store
from player.core.controller import Controller
from player.media.playback import MpvUnavailable, Playback
from player.ui.quit_signals import QuitOnSignals

log = logging.getLogger(__name__)


@dataclass
class LaunchOptions:
    """What the command line asked for."""

    video: str | None = None
    descriptions: str | None = None
    gui: bool = True
    film_options: dict[str, str] = field(default_factory=dict)
    speech_options: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, object] = field(default_factory=dict)
    quit_after: float = 0.0
    record: str | None = None


def demo_path() -> Path | None:
    """The bundled demo clip: ``NARRATE_DEMO``, the source tree's ``assets/``, or the install's."""
    env = os.environ.get("NARRATE_DEMO")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "assets" / "demo.mp4")
    candidates.append(Path(sys.prefix) / "share" / "video-narrator" / "demo.mp4")
    return next((c for c in candidates if c.is_file()), None)


def has_display() -> bool:
    """A window can be shown (Qt's offscreen platform counts: it is how the tests run)."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return True
    return has_screen()


def has_screen() -> bool:
    """A real screen (X11 or Wayland) that mpv can show the film on, and that answers."""
    from player.ui.display import screen_problem  # noqa: PLC0415

    return not screen_problem()


def build_controller(wid: int | None, opts: LaunchOptions,
                     settings: settings_store.Settings) -> Controller:
    """Playback, speech and narration wired together. Raises MpvUnavailable without libmpv."""
    from dataclasses import replace  # noqa: PLC0415

    from player.audio.speech import choose_engine, engine_order  # noqa: PLC0415

    stored = settings
    settings = replace(settings, **opts.overrides).normalized()  # type: ignore[arg-type]
    playback = Playback(wid=wid, options=opts.film_options)
    choice = choose_engine(engine_order(settings.speech_engine))
    speech = SpeechOutput(clock=lambda: playback.time_pos, audio_options=opts.speech_options,
                          chain=choice.chain)
    speech.notes = choice.notes if settings.speech_engine != "auto" else ()
    if not choice.chain:
        speech.notes = choice.notes
    return Controller(playback, speech, settings, stored=stored)


def write_record(controller: Controller, path: str) -> None:
    """What was spoken and when, and what was left out and why, as JSON."""
    import json  # noqa: PLC0415
    from dataclasses import asdict  # noqa: PLC0415

    data = {
        "spoken": [asdict(r) for r in controller.speech.records],
        "skipped": [{"text": s.desc.text, "start": s.desc.start, "reason": s.reason, "at": s.at}
                    for s in [*controller.narrator.skips,
                              *controller.narrator.unsaid()]],
    }
    try:
        Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")
    except OSError as exc:
        print(f"Problem: the record could not be written to {path}: {exc.strerror or exc}",
              file=sys.stderr)


def _quit_timer(app: QCoreApplication, seconds: float) -> None:
    if seconds > 0:
        QTimer.singleShot(int(seconds * 1000), app.quit)


def run_gui(opts: LaunchOptions) -> int:
    """The window; Ctrl-C or SIGTERM close it as Control Q does (exit status 130 or 143)."""
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    app = QApplication.instance() or QApplication(sys.argv[:1])
    return _quitting_on_signals(app, lambda: _run_gui(app, opts))


def _quitting_on_signals(app: QCoreApplication, run: Callable[[], int]) -> int:
    """``run()``, the app's event loop inside it, with SIGINT and SIGTERM quitting that loop;
    the exit status says which signal ended it, if one did."""
    signals = QuitOnSignals(app)
    try:
        code = run()
    finally:
        signals.restore()
    return signals.exit_code or code


def _run_gui(app: QCoreApplication, opts: LaunchOptions) -> int:
    from models.cache import cache_dir  # noqa: PLC0415
    from player.cli.native_log import divert_native_stderr  # noqa: PLC0415
    from player.ui.a11y import ShortcutGate  # noqa: PLC0415
    from player.ui.window import MainWindow  # noqa: PLC0415

    # The terminal that started the window is often read by a screen reader too: the native
    # libraries' lines (ALSA, PipeWire, mediapipe) go to a log file, as in terminal mode.
    divert_native_stderr(cache_dir() / "window-native.log")

    app.setApplicationName("Video Narrator")
    app.setApplicationDisplayName("Video Narrator")
    gate = ShortcutGate(app)
    app.installEventFilter(gate)
    loaded = settings_store.load()
    win = MainWindow()
    win.show()
    offscreen = os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen")
    wid = None if offscreen else int(win.video.winId())
    film = dict(opts.film_options)
    if offscreen:
        film.setdefault("vo", "null")
    try:
        controller = build_controller(wid, LaunchOptions(**{**opts.__dict__, "film_options": film}),
                                      loaded.settings)
    except MpvUnavailable as exc:
        win.show_message(str(exc), "error")
        _quit_timer(app, opts.quit_after)
        return app.exec()
    win.attach(controller)
    if loaded.problem:
        win.show_message(loaded.problem, "error")
    if opts.video:
        win.open_path(opts.video, opts.descriptions)
    _quit_timer(app, opts.quit_after)
    if opts.record:
        app.aboutToQuit.connect(lambda: write_record(controller, opts.record or ""))
    app.aboutToQuit.connect(controller.close)
    code = app.exec()
    controller.close()
    return code


def run_terminal(opts: LaunchOptions) -> int:
    """Terminal mode; Ctrl-C or SIGTERM end it as Q does (exit status 130 or 143)."""
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    return _quitting_on_signals(app, lambda: _run_terminal(app, opts))


def _run_terminal(app: QCoreApplication, opts: LaunchOptions) -> int:
    from models.cache import cache_dir  # noqa: PLC0415
    from player.cli.native_log import divert_native_stderr  # noqa: PLC0415
    from player.ui.terminal import TerminalUI  # noqa: PLC0415

    divert_native_stderr(cache_dir() / "terminal-native.log")
    loaded = settings_store.load()
    film = dict(opts.film_options)
    if not has_screen():  # no window for the film (mpv probing the console took the keyboard)
        film.setdefault("vo", "null")
    try:
        controller = build_controller(None, LaunchOptions(**{**opts.__dict__, "film_options": film}),
                                      loaded.settings)
    except MpvUnavailable as exc:
        print(f"Problem: {exc}", file=sys.stderr)
        return 2
    ui = TerminalUI(controller, app)
    if loaded.problem:
        ui.print_message(loaded.problem, "error")
    if opts.video and not controller.open(opts.video, opts.descriptions):
        controller.close()
        return 1
    ui.start()
    _quit_timer(app, opts.quit_after)
    code = app.exec()
    ui.stop()
    if opts.record:
        write_record(controller, opts.record)
    controller.close()
    return code


def film_options_from(mapping: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if v}
