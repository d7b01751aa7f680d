"""The main window: the video, its controls, the transcript and the status line.

Every control has an accessible name and description; every command in the table is a menu
action with its keys; every state change is shown in the status line and announced.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from models import Description
from player.core.commands import BY_NAME, COMMANDS, effective_keys
from player.core.controller import Controller
from player.core.settings import Settings
from player.core.timefmt import clock
from player.media.playback import MediaInfo
from player.ui.a11y import announce, name
from player.ui.dialogs import HelpDialog, SettingsDialog

log = logging.getLogger(__name__)

VIDEO_FILTER = ("Videos (*.mp4 *.mkv *.webm *.mov *.avi *.m4v *.mpg *.mpeg *.ogv *.ts *.wmv "
                "*.flv);;All files (*)")


class VideoSurface(QWidget):
    """A native child window that libmpv draws into. Focusable, so keys reach the player."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)
        self.setAttribute(Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 180)
        self.setStyleSheet("background: black;")
        name(self, "Video", "The video picture. Press F1 for keyboard commands.")


class MainWindow(QMainWindow):
    """The player window. Build the controller with ``video.winId()`` as mpv's window."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Video Narrator")
        self.video = VideoSurface()
        self.controller: Controller | None = None
        self.actions_by_name: dict[str, QAction] = {}
        self._duration = 0.0
        self._build_controls()
        self.resize(960, 640)

    # ----- layout -------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.play = name(QPushButton("Play"), "Play", BY_NAME["play_pause"].help)
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setRange(0, 0)
        self.seek.setPageStep(30)
        self.seek.setSingleStep(5)
        name(self.seek, "Seek", "Position in the video, in seconds. Arrow keys move 5 seconds.")
        self.time = name(QLabel("0:00 / 0:00"), "Time", "Current position and length.")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 130)
        self.volume.setMaximumWidth(140)
        name(self.volume, "Volume", "Film volume in percent.")
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.25, 4.0)
        self.speed.setSingleStep(0.1)
        self.speed.setDecimals(2)
        self.speed.setSuffix(" x")
        name(self.speed, "Playback speed", "1 is normal speed. Narration speeds up with the film.")
        self.narration = name(QCheckBox("Narration"), "Narration",
                              BY_NAME["toggle_narration"].help)
        self.mode = QComboBox()
        self.mode.addItem("Automatic", "auto")
        self.mode.addItem("Lower the film", "duck")
        self.mode.addItem("Pause the film", "pause")
        name(self.mode, "Narration mode", BY_NAME["toggle_mode"].help)
        self.verbosity = QComboBox()
        for text, level in (("Brief", 1), ("Standard", 2), ("Detailed", 3)):
            self.verbosity.addItem(text, level)
        name(self.verbosity, "Verbosity", "How much the narrator says: brief, standard, detailed.")
        self.describe = name(QPushButton("Describe now"), "Describe now",
                             BY_NAME["describe_now"].help)
        self.repeat = name(QPushButton("Repeat"), "Repeat last description",
                           BY_NAME["repeat_last"].help)
        self.question = name(QLineEdit(), "Question about this frame",
                             "Type a question about what is on screen, then press Enter.")
        self.question.setPlaceholderText("Ask about this frame")
        self.ask = name(QPushButton("Ask"), "Ask", "Asks the question about the current frame.")
        self.transcript = QPlainTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setMaximumBlockCount(5000)
        self.transcript.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                                | Qt.TextInteractionFlag.TextSelectableByMouse)
        name(self.transcript, "Descriptions transcript",
             "Every description spoken so far, with its time. Readable in braille.")
        self.status = name(QLabel("Ready."), "Status", "The player's latest message.")
        self.status.setWordWrap(True)

        row1 = QHBoxLayout()
        for w in (self.play, self.seek, self.time):
            row1.addWidget(w)
        row1.setStretch(1, 1)
        row2 = QHBoxLayout()
        for label, w in (("Volume", self.volume), ("Speed", self.speed)):
            lab = QLabel(label)
            lab.setBuddy(w)
            row2.addWidget(lab)
            row2.addWidget(w)
        row2.addWidget(self.narration)
        for label, w in (("Narration mode", self.mode), ("Verbosity", self.verbosity)):
            lab = QLabel(label)
            lab.setBuddy(w)
            row2.addWidget(lab)
            row2.addWidget(w)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        for w in (self.describe, self.repeat, self.question, self.ask):
            row3.addWidget(w)
        row3.setStretch(2, 1)

        top = QWidget()
        v = QVBoxLayout(top)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.video, 1)
        v.addLayout(row1)
        v.addLayout(row2)
        v.addLayout(row3)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        bottom = QWidget()
        bv = QVBoxLayout(bottom)
        bv.setContentsMargins(0, 0, 0, 0)
        tl = QLabel("Transcript")
        tl.setBuddy(self.transcript)
        bv.addWidget(tl)
        bv.addWidget(self.transcript)
        bv.addWidget(self.status)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.video.setFocus()

    # ----- wiring -------------------------------------------------------------------------
    def attach(self, controller: Controller) -> None:
        """Connect the controls to ``controller`` and build the menus and shortcuts."""
        self.controller = controller
        c = controller
        self.play.clicked.connect(lambda: c.run("play_pause"))
        self.seek.actionTriggered.connect(lambda _a: c.seek_to(float(self.seek.sliderPosition())))
        self.volume.valueChanged.connect(self._on_volume_slider)
        self.speed.valueChanged.connect(self._on_speed_box)
        self.narration.toggled.connect(lambda on: on != c.settings.narration and c.set_narration(on))
        self.mode.activated.connect(lambda _i: c.set_mode(str(self.mode.currentData())))
        self.verbosity.activated.connect(
            lambda _i: c.set_verbosity(int(self.verbosity.currentData())))
        self.describe.clicked.connect(lambda: c.run("describe_now"))
        self.repeat.clicked.connect(lambda: c.run("repeat_last"))
        self.ask.clicked.connect(self._ask)
        self.question.returnPressed.connect(self._ask)
        pb = c.playback
        pb.time_changed.connect(self._on_time)
        pb.duration_changed.connect(self._on_duration)
        pb.pause_changed.connect(self._on_pause)
        pb.volume_changed.connect(self._sync_volume)
        pb.speed_changed.connect(self._sync_speed)
        c.message.connect(self.show_message)
        c.narrator.said.connect(self._on_said)
        c.settings_changed.connect(self._sync_settings)
        c.media_loaded.connect(self._on_loaded)
        self._build_menus(c.settings)
        self._sync_settings(c.settings)
        self._sync_volume(pb.volume)
        # mpv may have reported its state before these connections existed.
        self._sync_speed(pb.speed)
        self._on_pause(pb.pause)

    def _build_menus(self, settings: Settings) -> None:
        keys = effective_keys(settings.keymap)
        menus = {}
        for cmd in COMMANDS:
            if cmd.group not in menus:
                menus[cmd.group] = self.menuBar().addMenu(f"&{cmd.group}")
            action = QAction(cmd.title, self)
            action.setShortcuts([QKeySequence(k) for k in keys[cmd.name]])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setStatusTip(cmd.help)
            action.setToolTip(cmd.help)
            action.triggered.connect(lambda _c=False, n=cmd.name: self.run_command(n))
            menus[cmd.group].addAction(action)
            self.addAction(action)
            self.actions_by_name[cmd.name] = action
        back = QAction("Back to the video", self)
        back.setShortcut(QKeySequence("Escape"))
        back.triggered.connect(self.video.setFocus)
        self.addAction(back)

    def apply_keymap(self, settings: Settings) -> None:
        keys = effective_keys(settings.keymap)
        for cmd_name, action in self.actions_by_name.items():
            action.setShortcuts([QKeySequence(k) for k in keys[cmd_name]])

    # ----- commands the window owns ---------------------------------------------------------
    def run_command(self, cmd_name: str) -> None:
        c = self.controller
        if c is None:
            return
        if c.run(cmd_name):
            return
        if cmd_name == "ask":
            self.question.setFocus()
            self.show_message("Type your question and press Enter.", "info")
        elif cmd_name == "focus_transcript":
            self.transcript.setFocus()
        elif cmd_name == "open_file":
            self.open_dialog()
        elif cmd_name == "settings":
            self.settings_dialog()
        elif cmd_name == "help":
            HelpDialog(c.settings.keymap, self).exec()
        elif cmd_name == "quit":
            self.close()

    def open_dialog(self) -> None:
        c = self.controller
        assert c is not None
        start = c.settings.last_folder or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", start, VIDEO_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str, descriptions: str | None = None) -> None:
        c = self.controller
        assert c is not None
        self.transcript.clear()
        self.setWindowTitle(f"{Path(path).name} - Video Narrator")
        if c.open(path, descriptions):
            c.apply_settings(_with(c.settings, last_folder=str(Path(path).resolve().parent)))

    def settings_dialog(self) -> None:
        c = self.controller
        assert c is not None
        dlg = SettingsDialog(c.settings, self)
        if dlg.exec() and dlg.result_settings is not None:
            c.apply_settings(dlg.result_settings)
            self.apply_keymap(c.settings)
            self.show_message("Settings saved.", "state")

    def _ask(self) -> None:
        """Ask the typed question, then empty the field for the next one (the answer is said
        and written in the transcript, so the question need not stay)."""
        c = self.controller
        if c is None:
            return
        question = self.question.text()
        if question.strip():
            self.question.clear()  # before asking: the answer is announced after the change
        c.ask(question)

    # ----- reflecting state ---------------------------------------------------------------
    @Slot(str, str)
    def show_message(self, text: str, kind: str) -> None:
        """Show a message in the status line and send it to the screen reader."""
        log.info("%s: %s", kind, text)
        if kind == "narration":
            announce(self.transcript, text)
            return
        self.status.setText(text)
        if kind == "quiet":
            return  # shown, not announced: the screen reader is already hearing the answer
        if kind == "error":
            self.transcript.appendPlainText(f"Problem: {text}")
        announce(self.status, text, assertive=kind == "error")

    @Slot(object)
    def _on_said(self, desc: Description) -> None:
        if desc.source == "system":
            return  # the player's own message: shown by show_message (errors as "Problem:")
        prefix = {"now": "Now", "repeat": "Again", "answer": "Answer", "system": "Player"}.get(
            desc.source, clock(desc.start))
        self.transcript.appendPlainText(f"{prefix}: {desc.text}")

    @Slot(float)
    def _on_time(self, t: float) -> None:
        if not self.seek.isSliderDown():
            self.seek.blockSignals(True)
            self.seek.setValue(int(t))
            self.seek.blockSignals(False)
        self.time.setText(f"{clock(t)} / {clock(self._duration)}")

    @Slot(float)
    def _on_duration(self, d: float) -> None:
        self._duration = d
        self.seek.setRange(0, max(0, int(d)))

    @Slot(object)
    def _on_loaded(self, info: MediaInfo) -> None:
        self._on_duration(info.duration)

    @Slot(bool)
    def _on_pause(self, paused: bool) -> None:
        self.play.setText("Play" if paused else "Pause")
        self.play.setAccessibleName("Play" if paused else "Pause")

    def _on_volume_slider(self, value: int) -> None:
        c = self.controller
        if c is not None and abs(value - c.playback.volume) >= 1:
            c.set_volume(float(value))

    def _on_speed_box(self, value: float) -> None:
        c = self.controller
        if c is not None and abs(value - c.playback.speed) > 0.001:
            c.set_speed(value)

    @Slot(float)
    def _sync_volume(self, v: float) -> None:
        self.volume.blockSignals(True)
        self.volume.setValue(int(round(v)))
        self.volume.blockSignals(False)

    @Slot(float)
    def _sync_speed(self, s: float) -> None:
        self.speed.blockSignals(True)
        self.speed.setValue(s)
        self.speed.blockSignals(False)

    @Slot(object)
    def _sync_settings(self, s: Settings) -> None:
        for w, value in ((self.narration, s.narration),):
            w.blockSignals(True)
            w.setChecked(value)
            w.blockSignals(False)
        self.mode.setCurrentIndex(max(0, self.mode.findData(s.mode)))
        self.verbosity.setCurrentIndex(s.verbosity - 1)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        # libmpv must stop before the native window it draws into goes away.
        if self.controller is not None:
            self.controller.close()
        super().closeEvent(event)


def _with(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace  # noqa: PLC0415

    return replace(settings, **changes)  # type: ignore[arg-type]
