"""Accessibility helpers: names on controls, announcements to the screen reader, and the rule
that decides whether a plain key goes to the focused control or to the player's shortcuts."""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAccessible, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

log = logging.getLogger(__name__)

try:  # Qt 6.8+
    from PySide6.QtGui import QAccessibleAnnouncementEvent
except ImportError:  # pragma: no cover - older Qt: the live status label still reports
    QAccessibleAnnouncementEvent = None  # type: ignore[assignment,misc]


def name(widget: QWidget, accessible_name: str, description: str = "") -> QWidget:
    """Give ``widget`` the name and description a screen reader reads; returns it."""
    widget.setAccessibleName(accessible_name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)
    return widget


def announce(widget: QWidget, text: str, assertive: bool = False) -> None:
    """Send ``text`` to the screen reader (Orca, NVDA) as an announcement from ``widget``."""
    if QAccessibleAnnouncementEvent is None or not text:
        return
    event = QAccessibleAnnouncementEvent(widget, text)
    event.setPoliteness(QAccessible.AnnouncementPoliteness.Assertive if assertive
                        else QAccessible.AnnouncementPoliteness.Polite)
    QAccessible.updateAccessibility(event)


_NAV = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp,
        Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End}
_ACTIVATE = {Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter}


def control_keeps_key(widget: QWidget | None, event: QKeyEvent) -> bool:
    """True when a plain key should operate the focused control instead of a player shortcut.

    A keyboard user who tabs to a slider expects the arrows to move it, and Space on a button
    to press it; shortcuts with Ctrl, Alt or a function key always reach the player.
    """
    if widget is None:
        return False
    mods = event.modifiers() & ~(Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier)
    key = Qt.Key(event.key())
    if mods or Qt.Key.Key_F1 <= key <= Qt.Key.Key_F35 or key == Qt.Key.Key_Escape:
        return False
    printable = bool(event.text()) and event.text().isprintable()
    if isinstance(widget, (QLineEdit, QAbstractSpinBox)):
        return printable or key in _NAV or key == Qt.Key.Key_Backspace
    if isinstance(widget, (QPlainTextEdit, QTextEdit, QAbstractItemView)):
        return key in _NAV or (printable and not getattr(widget, "isReadOnly", lambda: True)())
    if isinstance(widget, QComboBox):
        return key in _NAV or key in _ACTIVATE or printable
    if isinstance(widget, QAbstractSlider):
        return key in _NAV
    if isinstance(widget, QAbstractButton):
        return key in _ACTIVATE
    return False


class ShortcutGate(QObject):
    """Application event filter: lets the focused control keep the plain keys it uses."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if control_keeps_key(QApplication.focusWidget(), event):
                event.accept()  # the key goes to the control as a normal key press
                return True
        return False
