"""File > Export: the window or the view on show as PNG (1x, 2x or a given size) or SVG (a view's
plots), either copied to the clipboard, and the displayed run's data (per-layer statistics as CSV
or JSON, histograms as NPZ, the initial weights as NPZ) through `initsim.engine.export`.

Every file carries the displayed config (a PNG text chunk, SVG metadata, JSON/NPZ contents or a
CSV's JSON sidecar) and is written atomically; a failure is reported in a message box.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSize, QStandardPaths, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QApplication, QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLineEdit, QMenu, QPushButton, QRadioButton, QSpinBox,
                               QWidget)

from initsim.engine import ConfigError, SimConfig, SimResult
from initsim.engine.errors import unknown_name
from initsim.engine.export import ExportError, check_writable, export_data, export_weights, image_scale
from initsim.engine.simulate import result_from_events

from ..actions import make_action
from ..messages import show_problem
from ..preferences import memory_limit
from ..views.registry import view_name
from .imaging import IMAGE_SUFFIXES, MAX_SIDE, render_image, write_image
from .offscreen import WINDOW, export_view

if TYPE_CHECKING:
    from ..window import MainWindow

# What File > Export > data writes: (menu text, file filter, suffix).
DATA_KINDS = {
    "stats_csv": ("Per-layer &statistics as CSV\u2026", "Per-layer statistics (*.csv)", ".csv"),
    "stats_json": ("Statistics and histograms as &JSON\u2026", "Statistics and histograms (*.json)", ".json"),
    "histograms": ("&Histograms as NPZ\u2026", "Histograms (*.npz)", ".npz"),
    "weights": ("Initial &weights as NPZ\u2026", "Initial weights (*.npz)", ".npz"),
}
SCALES = {"1x": 1.0, "2x": 2.0}
TARGETS = ("view", WINDOW)  # what export_image and copy_image take


def displayed_result(window: MainWindow) -> SimResult:
    """The run the window paints, as the engine's SimResult (from the events the window holds, not
    run again); ExportError while it is not complete."""
    state = window.displayed_state()
    if state is None or not state.complete:
        where = "no run yet" if state is None else state.progress_text()
        raise ExportError(f"the run has not finished ({where}): export its data once it is done")
    return result_from_events(state.config, state.forward + state.backward, state.seconds or 0.0,
                              memory_limit())


class ExportActions(QObject):
    """The Export submenu of the window's File menu, and the calls behind it."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.last_problem = None  # the message box of the last failed export, for scripts and tests
        self.menu = QMenu("&Export", window)
        self.menu.setToolTipsVisible(True)
        self._action("&Image of the window or the view\u2026", "Ctrl+E", self._ask_image,
                     "PNG at 1x, 2x or a given size, or SVG of the view's plots; the config is stored "
                     "in the file")
        self._action("&Copy the view", "Ctrl+Shift+C", lambda: self._report(self.copy_image, "view"),
                     "Copy the view on show to the clipboard as an image")
        self._action("Copy the &window", "Ctrl+Alt+C", lambda: self._report(self.copy_image, WINDOW),
                     "Copy the whole window to the clipboard as an image")
        self.menu.addSeparator()
        for kind, (text, file_filter, _) in DATA_KINDS.items():
            shortcut = "Ctrl+Shift+E" if kind == "stats_csv" else ""
            self._action(text, shortcut, lambda _=False, kind=kind: self._ask_data(kind),
                         f"{file_filter.split(' (')[0]} of the displayed run, with its config")

    # --- the scriptable API ---------------------------------------------------------------

    def target(self, which: str) -> tuple[QWidget, str]:
        """The widget ``which`` ("view" or WINDOW) means now, and its name; ConfigError for others."""
        if which not in TARGETS:
            raise unknown_name("which", str(which), TARGETS)
        if which == WINDOW:
            return self.window, WINDOW
        view = self.window.tabs.currentWidget()
        return view, view_name(self.window, view)

    def config(self) -> SimConfig:
        """What the images and data describe: the displayed run's config (the controls' if none)."""
        return self.window.displayed_config() or self.window.config()

    def export_image(self, path: str | Path, which: str = "view", scale: float = 1.0,
                     size: QSize | None = None) -> Path:
        """Write the view on show (or the WINDOW) to ``path`` (.png or .svg). ``scale``: image
        pixels per screen pixel; ``size``: lay it out at that size first, in a hidden window (as
        `initsim export` does). Raises ExportError, or ConfigError for arguments out of range; checks
        that the folder takes files before anything is rendered."""
        widget, name = self.target(which)
        scale = image_scale(scale)
        if Path(path).suffix.lower() == ".svg" and which == WINDOW:
            raise ExportError("SVG is for one view's plots: export the window as PNG")
        check_writable(path)
        if size is None:
            return write_image(path, widget, self.config(), name, scale)
        return export_view(self.config(), name, path, size, scale, like=self.window)

    def copy_image(self, which: str = "view") -> None:
        widget, _ = self.target(which)
        QApplication.clipboard().setImage(render_image(widget))

    def export_data(self, path: str | Path, kind: str) -> list[Path]:
        """Write the displayed run's data of ``kind`` (a key of DATA_KINDS); raises ExportError, or
        ConfigError for an unknown kind."""
        if kind not in DATA_KINDS:
            raise unknown_name("kind", str(kind), DATA_KINDS)
        suffix = DATA_KINDS[kind][2]
        path = Path(path)
        if path.suffix.lower() != suffix:
            raise ExportError(f"{DATA_KINDS[kind][1].split(' (')[0]} are written as {suffix}, not "
                              f"{path.suffix or 'a file without a suffix'}")
        check_writable(path)
        if kind == "weights":
            return [export_weights(self.config(), path, memory_limit())]
        return export_data(displayed_result(self.window), path)

    # --- dialogs --------------------------------------------------------------------------

    def _action(self, text: str, shortcut: str, slot, tip: str) -> QAction:
        action = make_action(self.window, text, [shortcut] if shortcut else [], slot, tip)
        self.menu.addAction(action)
        return action

    def _report(self, call, *args) -> None:
        try:
            call(*args)
        except (ExportError, ConfigError) as exc:
            self.last_problem = show_problem(self.window, "Export failed", str(exc))

    def _ask_image(self) -> None:
        dialog = ImageExportDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                self._report(self.export_image, *dialog.request())
            finally:
                QApplication.restoreOverrideCursor()

    def _ask_data(self, kind: str) -> None:
        _, file_filter, suffix = DATA_KINDS[kind]
        start = Path(_documents()) / f"initsim{suffix}"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export data", str(start), file_filter)
        if path:
            self._report(self.export_data, path if Path(path).suffix else path + suffix, kind)


class ImageExportDialog(QDialog):
    """What to export (the window or the view), as what (PNG, SVG), how large, and where."""

    def __init__(self, exports: ExportActions) -> None:
        super().__init__(exports.window)
        self.setWindowTitle("Export image")
        self._exports = exports
        view, name = exports.target("view")
        self.what = QComboBox()
        self.what.setObjectName("export_what")
        self.what.setToolTip("The view on show, or the whole window with its controls")
        self.what.addItem(f"The view ({exports.window.tabs.tabText(exports.window.tabs.currentIndex())})", "view")
        self.what.addItem("The window", WINDOW)
        self.format = QComboBox()
        self.format.setObjectName("export_format")
        self.format.setToolTip("PNG: pixels, the config in a text chunk; SVG: the view's plots as "
                               "vector paths, the config in its metadata")
        self.format.addItem("PNG image", ".png")
        self.format.addItem("SVG vector drawing (plots only)", ".svg")
        self.sizes = QButtonGroup(self)
        size_row = QHBoxLayout()
        for label, tip in (("1x", "The size it has on screen"),
                           ("2x", "The same layout with twice the pixels each way: sharp in print"),
                           ("Given size", "Laid out again at the width and height given, in a hidden "
                                          "window that runs the config again (a Training or Compare "
                                          "run is not carried over)")):
            button = QRadioButton(label)
            button.setObjectName(f"export_size_{label.split()[0].lower()}")
            button.setToolTip(tip)
            self.sizes.addButton(button)
            size_row.addWidget(button)
        self.sizes.buttons()[0].setChecked(True)
        self.width_box, self.height_box = (self._spin("export_width", "Width in pixels", view.width()),
                                           self._spin("export_height", "Height in pixels", view.height()))
        for box in (self.width_box, self.height_box):
            size_row.addWidget(box)
        self.path = QLineEdit(str(Path(_pictures()) / f"initsim-{name.replace(' ', '-')}.png"))
        self.path.setObjectName("export_path")
        self.path.setToolTip("The file to write; its suffix follows the format")
        browse = QPushButton("Browse\u2026")
        browse.setToolTip("Pick the file in a dialog")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Export", self.what)
        form.addRow("As", self.format)
        form.addRow("Size", size_row)
        form.addRow("File", path_row)
        form.addRow(buttons)
        self.what.currentIndexChanged.connect(self._update)
        self.format.currentIndexChanged.connect(self._update)
        self.sizes.buttonToggled.connect(self._update)
        self._update()

    def request(self) -> tuple[str, str, float, QSize | None]:
        """(path, "view" or WINDOW, scale, size or None): the arguments of export_image."""
        label = self.sizes.checkedButton().text()
        size = QSize(self.width_box.value(), self.height_box.value()) if label == "Given size" else None
        return self.path.text(), self.what.currentData(), SCALES.get(label, 1.0), size

    def _spin(self, name: str, tip: str, value: int) -> QSpinBox:
        box = QSpinBox()
        box.setObjectName(name)
        box.setToolTip(tip)
        box.setRange(100, MAX_SIDE)
        box.setValue(max(100, value))
        box.setSuffix(" px")
        return box

    def _update(self) -> None:
        svg = self.format.currentData() == ".svg"
        if svg and self.what.currentData() == WINDOW:  # SVG holds one view's plots
            self.what.setCurrentIndex(0)
        self.what.model().item(1).setEnabled(not svg)
        for button in self.sizes.buttons():
            button.setEnabled(not svg)
        given = not svg and self.sizes.checkedButton().text() == "Given size"
        self.width_box.setEnabled(given)
        self.height_box.setEnabled(given)
        path = Path(self.path.text())
        if path.suffix.lower() in IMAGE_SUFFIXES:
            self.path.setText(str(path.with_suffix(self.format.currentData())))

    def _browse(self) -> None:
        suffix = self.format.currentData()
        path, _ = QFileDialog.getSaveFileName(self, "Export image", self.path.text(),
                                              f"{self.format.currentText()} (*{suffix})")
        if path:
            self.path.setText(path if Path(path).suffix else path + suffix)


def _pictures() -> str:
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)


def _documents() -> str:
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
