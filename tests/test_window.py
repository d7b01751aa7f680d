"""The real window in offscreen Qt, driven through its key table; assertions on mpv's own
properties (time-pos, pause, volume, speed, mute), not on our flags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
)

from player.app import LaunchOptions, build_controller
from player.core import settings as store
from player.core.settings import Settings
from player.ui.dialogs import HelpDialog, SettingsDialog
from player.ui.window import MainWindow
from tests import media
from tests.support import pump, wait_for


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("win")
    path = media.make_clip(folder, seconds=40.0)
    media.write_vtt(folder, [(1.0, 3.0, "A test card with coloured bars.", 1),
                             (6.0, 8.0, "A clock counts the seconds.", 2),
                             (12.0, 14.0, "The bars keep moving.", 3)], name="clip.descriptions.vtt")
    return path


@pytest.fixture
def window(qapp):
    win = MainWindow()
    win.show()
    opts = LaunchOptions(film_options={"vo": "null", "ao": "null"},
                         speech_options={"ao": "null"})
    controller = build_controller(None, opts, replace(store.load().settings, live_analysis=False))
    win.attach(controller)
    win.activateWindow()
    wait_for(win.isActiveWindow)
    yield win
    win.close()
    win.deleteLater()
    pump(0.05)


def open_and_wait(win: MainWindow, path: Path) -> None:
    win.open_path(str(path))
    wait_for(lambda: win.controller.media is not None and win.controller.playback.mpv.time_pos
             is not None, timeout=8)


def press(win: MainWindow, key: str) -> None:
    """Press a key the way a user does, on whatever has focus (the video by default)."""
    from PySide6.QtGui import QKeySequence

    seq = QKeySequence(key)
    combo = seq[0]
    target = QApplication.focusWidget() or win
    QTest.keyClick(target, combo.key(), combo.keyboardModifiers())
    pump(0.05)


def mpv(win: MainWindow):
    return win.controller.playback.mpv


def test_every_control_has_an_accessible_name_and_description(window):
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit,
             QPlainTextEdit)
    from PySide6.QtWidgets import QWidget

    controls = [w for w in window.findChildren(QWidget) if isinstance(w, kinds) and w.isVisible()
                and not w.objectName().startswith("qt_")]  # parts inside a spin box
    assert len(controls) >= 12
    for w in controls:
        assert w.accessibleName(), f"{type(w).__name__} has no accessible name"
    for w in (window.play, window.seek, window.volume, window.speed, window.narration,
              window.mode, window.verbosity, window.describe, window.repeat, window.question,
              window.transcript, window.video):
        assert w.accessibleDescription(), w.accessibleName()


def test_keys_drive_mpv(window, clip):
    open_and_wait(window, clip)
    m = mpv(window)
    window.video.setFocus()
    press(window, "Space")
    wait_for(lambda: m.pause is True)
    window.controller.playback.seek_absolute(10.0)
    wait_for(lambda: abs(m.time_pos - 10.0) < 0.05)
    press(window, "Right")
    wait_for(lambda: abs(m.time_pos - 15.0) < 0.05)
    press(window, "Left")
    wait_for(lambda: abs(m.time_pos - 10.0) < 0.05)
    press(window, "Shift+Right")
    wait_for(lambda: abs(m.time_pos - 39.9) < 0.1)  # clamped before the end
    press(window, "J")
    wait_for(lambda: abs(m.time_pos - 9.9) < 0.1)
    press(window, "Down")
    assert m.volume == pytest.approx(95)
    press(window, "Up")
    press(window, "Up")
    assert m.volume == pytest.approx(105)
    press(window, "]")
    assert m.speed == pytest.approx(1.1)
    press(window, "[")
    press(window, "[")
    assert m.speed == pytest.approx(0.9)
    press(window, "Backspace")
    assert m.speed == pytest.approx(1.0)
    press(window, "Ctrl+M")
    assert m.mute is True
    press(window, "K")
    wait_for(lambda: m.pause is False)
    assert window.play.accessibleName() == "Pause"
    # The controls show what mpv does.
    assert window.volume.value() == 105
    assert window.speed.value() == pytest.approx(1.0)


def test_state_changes_are_shown_and_persisted(window, clip):
    open_and_wait(window, clip)
    window.video.setFocus()
    press(window, "V")
    assert window.verbosity.currentText() == "Detailed"
    assert window.status.text() == "Verbosity detailed."
    assert window.mode.currentData() == "auto"  # the default
    press(window, "M")
    assert window.mode.currentData() == "duck"
    assert "lower the film" in window.status.text()
    press(window, "M")
    assert window.mode.currentData() == "pause"
    assert "pause the film" in window.status.text()
    press(window, "N")
    assert not window.narration.isChecked()
    assert window.status.text() == "Narration off."
    saved = store.load().settings
    assert (saved.verbosity, saved.mode, saved.narration) == (3, "pause", False)


def test_describe_now_and_repeat_speak_and_fill_the_transcript(window, clip):
    open_and_wait(window, clip)
    c = window.controller
    c.playback.pause = True
    c.playback.seek_absolute(7.0)
    wait_for(lambda: abs(mpv(window).time_pos - 7.0) < 0.05)
    window.video.setFocus()
    press(window, "D")
    wait_for(lambda: "A clock counts the seconds." in window.transcript.toPlainText())
    assert window.status.text() == "Describing..."
    wait_for(lambda: any(r.source == "now" for r in c.speech.records), timeout=10)
    press(window, "R")
    wait_for(lambda: window.transcript.toPlainText().count("A clock counts") == 2)
    assert "Again: A clock counts the seconds." in window.transcript.toPlainText()


def test_typing_in_the_question_field_does_not_fire_shortcuts(window, clip):
    open_and_wait(window, clip)
    m = mpv(window)
    m.pause = True
    wait_for(lambda: m.pause is True)
    window.question.setFocus()
    QTest.keyClicks(window.question, "what do you see")  # contains d, k, space...
    pump(0.1)
    assert window.question.text() == "what do you see"
    assert m.pause is True and window.transcript.toPlainText() == ""
    QTest.keyClick(window.question, Qt.Key.Key_Return)
    wait_for(lambda: "Answer:" in window.transcript.toPlainText())
    assert "live scene analysis is off" in window.transcript.toPlainText()
    # Escape goes back to the video, where the plain keys are shortcuts again.
    QTest.keyClick(window.question, Qt.Key.Key_Escape)
    pump(0.05)
    assert QApplication.focusWidget() is window.video
    press(window, "Space")
    wait_for(lambda: m.pause is False)


def test_the_question_field_is_emptied_after_each_question(window, clip):
    open_and_wait(window, clip)
    m = mpv(window)
    m.pause = True
    wait_for(lambda: m.pause is True)
    window.question.setFocus()
    QTest.keyClicks(window.question, "what animal is this?")
    QTest.keyClick(window.question, Qt.Key.Key_Return)
    wait_for(lambda: window.transcript.toPlainText().count("Answer:") == 1)
    assert window.question.text() == ""
    assert QApplication.focusWidget() is window.question  # ready for the next question
    QTest.keyClicks(window.question, "is there a giraffe?")
    assert window.question.text() == "is there a giraffe?"
    QTest.mouseClick(window.ask, Qt.MouseButton.LeftButton)  # the Ask button does the same
    wait_for(lambda: window.transcript.toPlainText().count("Answer:") == 2)
    assert window.question.text() == ""
    # An empty field asks nothing and says why.
    QTest.mouseClick(window.ask, Qt.MouseButton.LeftButton)
    assert window.status.text() == "Type a question first."
    assert window.transcript.toPlainText().count("Answer:") == 2


def test_help_opens_on_f1_and_lists_the_keys(window):
    seen: list[str] = []

    def look() -> None:
        dlg = QApplication.activeModalWidget()
        if isinstance(dlg, HelpDialog):
            seen.append(dlg.text.toPlainText())
            dlg.reject()
        else:
            QTimer.singleShot(20, look)

    QTimer.singleShot(20, look)
    window.video.setFocus()
    press(window, "F1")
    assert seen and "Describe now: D." in seen[0]


def test_remapped_key_works_after_settings(window, clip):
    open_and_wait(window, clip)

    def edit() -> None:
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, SettingsDialog):
            QTimer.singleShot(20, edit)
            return
        row = [dlg.keys.item(r, 0).text() for r in range(dlg.keys.rowCount())].index(
            "Describe now")
        dlg.keys.item(row, 1).setText("F5")
        dlg._accept()

    QTimer.singleShot(20, edit)
    window.run_command("settings")
    assert store.load().settings.keymap == {"describe_now": ["F5"]}
    assert window.status.text() == "Settings saved."
    window.activateWindow()  # offscreen Qt has no window manager to do it after a dialog
    wait_for(window.isActiveWindow)
    window.video.setFocus()
    press(window, "F5")
    wait_for(lambda: "Now:" in window.transcript.toPlainText())
    press(window, "D")
    assert window.transcript.toPlainText().count("Now:") == 1


def test_settings_dialog_refuses_a_clash_and_keeps_ctrl_comma(qapp):
    dlg = SettingsDialog(Settings())
    assert dlg.keymap() == {}  # Ctrl+, survives the round trip through the table
    row = [dlg.keys.item(r, 0).text() for r in range(dlg.keys.rowCount())].index("Describe now")
    dlg.keys.item(row, 1).setText("Space")
    dlg._accept()
    assert dlg.result_settings is None
    assert "Space is given to both" in dlg.error.text()


@pytest.mark.parametrize("maker,expected", [
    (media.make_corrupt, "not a format the player can open"),
    (media.make_zero_length, "empty (zero bytes)"),
    (media.make_audio_only, "has sound but no picture"),
])
def test_bad_files_are_shown_and_the_window_keeps_working(window, clip, tmp_path, maker,
                                                          expected):
    bad = maker(tmp_path)
    window.open_path(str(bad))
    wait_for(lambda: expected in window.status.text(), timeout=8)
    assert "Problem: " in window.transcript.toPlainText()
    # The voice says it too (at once, with the message): the transcript holds it once.
    assert window.transcript.toPlainText().count(expected) == 1, window.transcript.toPlainText()
    assert window.isVisible()
    open_and_wait(window, clip)
    assert "Playing clip.mp4" in window.status.text() or "Loaded" in window.status.text()


def test_non_ascii_path_with_spaces_plays(window, clip, tmp_path):
    odd = media.odd_name_copy(clip, tmp_path)
    open_and_wait(window, odd)
    assert odd.name in window.windowTitle()
    wait_for(lambda: mpv(window).time_pos > 0.2)


def test_settings_dialog_chooses_a_vision_language_model(qapp, tmp_path):
    dlg = SettingsDialog(Settings())
    assert dlg.model.accessibleName() == "Vision-language model"
    assert dlg.model_choice() == ""  # none by default
    model = tmp_path / "SmolVLM-Q4_K_M.gguf"
    dlg.model.setEditText(str(model))
    dlg._accept()
    assert dlg.result_settings is not None and dlg.result_settings.vlm_model == str(model)
    again = SettingsDialog(dlg.result_settings)
    assert again.model.currentText() == str(model)  # the typed path is offered again
    again.model.setCurrentIndex(0)
    again._accept()
    assert again.result_settings.vlm_model == ""
