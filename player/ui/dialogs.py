"""The help screen and the settings dialog, both built from the command table."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from player.core.commands import COMMANDS, KeymapError, effective_keys, help_text, validate_keymap
from player.core.settings import SPEECH_ENGINES, SPEECH_OUTPUTS, Settings
from player.ui.a11y import name

NO_MODEL = "None: people and text detection only"


def installed_models() -> list[str]:
    """Names of the catalog models downloaded here (narrate models pull)."""
    try:
        from models.catalog import CATALOG, models_dir, read_manifest  # noqa: PLC0415
    except ImportError:
        return []
    root = models_dir()
    return [e.name for e in CATALOG if read_manifest(root / e.name) is not None]

ROUTE_LABELS = {
    "voice": "The narrator's own voice",
    "screen_reader": "My screen reader (speech and braille)",
    "both": "Both",
}


ENGINE_LABELS = {
    "auto": "Automatic (espeak-ng)",
    "pyttsx3": "espeak-ng through pyttsx3",
    "piper": "Natural voice (piper)",
    "espeak-ng": "espeak-ng program",
}


class HelpDialog(QDialog):
    """Every command and its keys, as plain text a screen reader reads line by line."""

    def __init__(self, keymap: dict[str, list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard commands")
        layout = QVBoxLayout(self)
        self.text = QPlainTextEdit(help_text(keymap))
        self.text.setReadOnly(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                          | Qt.TextInteractionFlag.TextSelectableByMouse)
        name(self.text, "Keyboard commands", "Use the arrow keys to read; Escape closes.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        name(buttons.button(QDialogButtonBox.StandardButton.Close), "Close")
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(640, 520)
        self.text.setFocus()


class SettingsDialog(QDialog):
    """Speech and narration options, and the keys of every command."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.route = QComboBox()
        for key in SPEECH_OUTPUTS:
            self.route.addItem(ROUTE_LABELS[key], key)
        self.route.setCurrentIndex(SPEECH_OUTPUTS.index(settings.speech_output))
        name(self.route, "Speak descriptions with",
             "Choose the narrator's voice, your screen reader, or both.")
        self.engine = QComboBox()
        for key in SPEECH_ENGINES:
            self.engine.addItem(ENGINE_LABELS[key], key)
        self.engine.setCurrentIndex(SPEECH_ENGINES.index(settings.speech_engine))
        name(self.engine, "Voice engine",
             "Automatic uses espeak-ng; the natural voice (piper) needs the piper extra.")
        self.analysis = name(QCheckBox("Describe what the camera sees (live scene analysis)"),
                             "Live scene analysis",
                             "Finds people, poses, faces and on-screen text as the film plays. "
                             "Off: only description tracks are spoken.")
        self.analysis.setChecked(settings.live_analysis)
        self.wait = name(QCheckBox("Hold a film at its start until the narrator has looked at it"),
                         "Wait for the narrator at the start",
                         "On a first viewing live analysis needs a few seconds to look at the "
                         "opening; the film waits for it, at most 15 seconds. Space starts it "
                         "at once.")
        self.wait.setChecked(settings.wait_for_narrator)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItem(NO_MODEL, "")
        for model_name in installed_models():
            self.model.addItem(model_name, model_name)
        if settings.vlm_model and self.model.findData(settings.vlm_model) < 0:
            self.model.addItem(settings.vlm_model, settings.vlm_model)
        self.model.setCurrentIndex(max(0, self.model.findData(settings.vlm_model)))
        name(self.model, "Vision-language model",
             "Describes scenes and answers questions. Choose a downloaded model (narrate models "
             "pull), or type the path of a GGUF file or a model folder.")
        self.voice = name(QLineEdit(settings.voice), "Voice",
                          "An espeak-ng voice name, for example en-us or en-gb.")
        self.rate = QSpinBox()
        self.rate.setRange(80, 450)
        self.rate.setValue(settings.speech_rate)
        self.rate.setSuffix(" words per minute")
        name(self.rate, "Speech rate", "How fast the narrator speaks.")
        self.speech_volume = QSpinBox()
        self.speech_volume.setRange(0, 100)
        self.speech_volume.setValue(int(settings.speech_volume))
        self.speech_volume.setSuffix(" %")
        name(self.speech_volume, "Narration volume")
        self.duck = QDoubleSpinBox()
        self.duck.setRange(-30.0, 0.0)
        self.duck.setSingleStep(1.0)
        self.duck.setValue(settings.duck_db)
        self.duck.setSuffix(" dB")
        name(self.duck, "Film level under narration",
             "How much the film is lowered while the narrator speaks, in decibels.")
        self.auto_pauses = QSpinBox()
        self.auto_pauses.setRange(0, 20)
        self.auto_pauses.setValue(settings.auto_pauses)
        self.auto_pauses.setSuffix(" a minute")
        name(self.auto_pauses, "Pauses for important descriptions",
             "In automatic mode, how often at most the film is paused briefly for a "
             "description that matters (a new scene, someone new, text on screen) when the "
             "dialogue leaves no room. 0 never pauses.")
        for label, widget in (("Speak descriptions with", self.route),
                              ("Voice engine", self.engine), ("Voice", self.voice),
                              ("Speech rate", self.rate), ("Narration volume", self.speech_volume),
                              ("Film level under narration", self.duck),
                              ("Pauses for important descriptions", self.auto_pauses),
                              ("Vision-language model", self.model)):
            lab = QLabel(label)
            lab.setBuddy(widget)
            form.addRow(lab, widget)
        layout.addLayout(form)
        layout.addWidget(self.analysis)
        layout.addWidget(self.wait)
        keys_label = QLabel("Keys (separate several keys with a comma and a space)")
        layout.addWidget(keys_label)
        keys = effective_keys(settings.keymap)
        self.keys = QTableWidget(len(COMMANDS), 2)
        self.keys.setHorizontalHeaderLabels(["Command", "Keys"])
        for row, cmd in enumerate(COMMANDS):
            title = QTableWidgetItem(cmd.title)
            title.setFlags(title.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.keys.setItem(row, 0, title)
            self.keys.setItem(row, 1, QTableWidgetItem(", ".join(keys[cmd.name])))
        self.keys.resizeColumnsToContents()
        name(self.keys, "Keys", "Each command and its keys; press F2 on a key cell to change it.")
        keys_label.setBuddy(self.keys)
        layout.addWidget(self.keys)
        self.error = QLabel("")
        name(self.error, "Problem")
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.result_settings: Settings | None = None
        self.resize(620, 640)

    def keymap(self) -> dict[str, list[str]]:
        """The keys typed in the table, normalized through QKeySequence."""
        out: dict[str, list[str]] = {}
        for row, cmd in enumerate(COMMANDS):
            item = self.keys.item(row, 1)
            text = item.text() if item else ""
            seqs = []
            # ", " separates keys, so a key that is itself a comma ("Ctrl+,") still works.
            for part in re.split(r",\s+", text):
                part = part.strip()
                if part:
                    seq = QKeySequence(part).toString(QKeySequence.SequenceFormat.PortableText)
                    seqs.append(seq or part)
            if tuple(seqs) != cmd.keys:
                out[cmd.name] = seqs
        return out

    def _accept(self) -> None:
        overrides = self.keymap()
        try:
            validate_keymap(effective_keys(overrides))
        except KeymapError as exc:
            self.error.setText(str(exc))
            from player.ui.a11y import announce  # noqa: PLC0415

            announce(self.error, str(exc), assertive=True)
            return
        from dataclasses import replace  # noqa: PLC0415

        self.result_settings = replace(
            self._settings, speech_output=str(self.route.currentData()),
            speech_engine=str(self.engine.currentData()),
            live_analysis=self.analysis.isChecked(),
            wait_for_narrator=self.wait.isChecked(),
            voice=self.voice.text().strip() or "en-us", speech_rate=self.rate.value(),
            speech_volume=float(self.speech_volume.value()), duck_db=self.duck.value(),
            auto_pauses=self.auto_pauses.value(),
            vlm_model=self.model_choice(), keymap=overrides)
        self.accept()

    def model_choice(self) -> str:
        """The model chosen or typed: "" for none."""
        text = self.model.currentText().strip()
        if not text or text == NO_MODEL:
            return ""
        index = self.model.findText(text)
        data = self.model.itemData(index) if index >= 0 else None
        return str(data) if data is not None else text
