"""The user's preferences, each in QSettings under its own key, and Edit > Preferences to change them.

The memory limit lives here and only here: configs, tours and the saved session never carry it, so
no file can raise it.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QWidget

from initsim.engine import ConfigError, memory

from .widgets import note_label

MEMORY_LIMIT_KEY = "preferences/memory_limit_gib"
MEMORY_LIMIT_GIB = (0.25, 1024.0)  # the spin box's range
MEMORY_LIMIT_TIP = ("Runs whose estimated memory is over this are refused before they start. The "
                    "estimate counts the weights, the arrays kept for the backward pass, the "
                    "random draws, training data and every seed or sweep point; a run that needs "
                    "more than the machine has can make it swap or stop.")


def memory_limit_gib() -> float:
    """The stored limit in GiB; the default when none is stored or the stored value is unusable."""
    default = memory.DEFAULT_MEMORY_LIMIT / memory.GIB
    try:
        gib = float(QSettings().value(MEMORY_LIMIT_KEY, default))
    except (TypeError, ValueError):
        return default
    low, high = MEMORY_LIMIT_GIB
    return gib if low <= gib <= high else default


def memory_limit() -> int:
    """The limit in bytes, for the engine's entries."""
    return memory.gib_limit(memory_limit_gib())


def set_memory_limit_gib(gib: float) -> None:
    low, high = MEMORY_LIMIT_GIB
    if not low <= gib <= high:
        raise ConfigError("memory_limit", f"got {gib:g}, expected a number of GiB in [{low:g}, {high:g}]")
    QSettings().setValue(MEMORY_LIMIT_KEY, float(gib))


class PreferencesDialog(QDialog):
    """Edit > Preferences: the memory limit (stored when the dialog is accepted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferences")
        self.memory_limit = QDoubleSpinBox()
        self.memory_limit.setObjectName("memory_limit")
        self.memory_limit.setRange(*MEMORY_LIMIT_GIB)
        self.memory_limit.setDecimals(2)
        self.memory_limit.setSingleStep(0.5)
        self.memory_limit.setSuffix(" GiB")
        self.memory_limit.setValue(memory_limit_gib())
        self.memory_limit.setToolTip(MEMORY_LIMIT_TIP)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QFormLayout(self)
        layout.addRow("Memory limit", self.memory_limit)
        layout.addRow(note_label("Kept by this computer's initsim, never in a config, tour or session file."))
        layout.addRow(buttons)

    def accept(self) -> None:
        set_memory_limit_gib(self.memory_limit.value())
        super().accept()
