"""Configs and tours as files: File > Open config / Save config / Open tour / Recent files / Reset
to defaults, a config or tour dropped on the window, and the last session's config restored at
launch. A file that cannot be used is reported in a message box naming the file, the line and the
problem; the window carries on as it was."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSettings, QStandardPaths
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMenu

from initsim.engine import ConfigError, SimConfig
from initsim.engine.configfile import config_from_toml, config_to_toml
from initsim.engine.export import ExportError, write_text
from initsim.engine.presets import DEFAULT_PRESET, get_preset, parse_preset
from initsim.engine.tours import parse_tour

from .actions import make_action
from .messages import show_problem

if TYPE_CHECKING:
    from .window import MainWindow

SESSION_KEY = "session/config"
RECENT_KEY = "files/recent"
MAX_RECENT = 8
FILE_SUFFIXES = (".toml", ".json")
CONFIG_FILTER = "initsim configs (*.toml);;Presets (*.json);;All files (*)"
TOUR_FILTER = "Tours (*.toml);;All files (*)"
# A tour's TOML has [[step]] tables; a config's never does.
_TOUR_STEP = re.compile(r"^\s*\[\[\s*step\s*\]\]", re.MULTILINE)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def config_of(path: Path, text: str) -> SimConfig:
    """The config a .toml config file or a .json preset holds; ConfigError "file:line: problem"."""
    if path.suffix.lower() == ".json":
        return parse_preset(text, str(path)).config
    return config_from_toml(text, str(path))


def last_session_config() -> SimConfig | None:
    """The config the window had when it was last closed, or None (first launch, or a stored
    config this version no longer takes)."""
    text = QSettings().value(SESSION_KEY)
    if not isinstance(text, str):
        return None
    try:
        return config_from_toml(text, "the last session")
    except ConfigError:
        return None


class FileActions(QObject):
    """The File menu's config and tour entries, drops onto the window, and the session."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.last_problem = None  # the message box of the last refused file, for scripts and tests
        self.open_config_action = make_action(window, "&Open config\u2026", ["Ctrl+O"], self._ask_open_config,
                                               "Open a config saved as TOML (or a preset's JSON)")
        self.save_config_action = make_action(window, "Save &config as\u2026", ["Ctrl+Shift+S"], self._ask_save_config,
                                               "Save the controls' config as a TOML file")
        self.open_tour_action = make_action(window, "Open &tour\u2026", ["Ctrl+Shift+O"], self._ask_open_tour,
                                             "Open a guided tour written as TOML (see resources/tours)")
        self.reset_action = make_action(window, "Reset to &defaults", [], self.reset_to_defaults,
                                         f"Back to the {get_preset(DEFAULT_PRESET).title} preset and the "
                                         "views' default options")
        self.recent_menu = QMenu("&Recent files", window)
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def add_to(self, menu: QMenu) -> None:
        menu.addAction(self.open_config_action)
        menu.addAction(self.save_config_action)
        menu.addAction(self.open_tour_action)
        menu.addMenu(self.recent_menu)
        menu.addAction(self.reset_action)

    # --- the scriptable API ---------------------------------------------------------------

    def open_file(self, path: str | Path) -> bool:
        """Open a config (.toml, or a preset's .json) or a tour (a .toml with [[step]] tables):
        the config is applied, the tour started. A file that cannot be used is reported in a
        message box and changes nothing; returns whether it was opened."""
        path = Path(path)
        try:
            text = read_text(path)
            if _TOUR_STEP.search(text):
                self.window.tour.start(parse_tour(text, str(path)))
            else:
                self.window.set_config(config_of(path, text))
        except ConfigError as exc:
            self.last_problem = show_problem(self.window, "Cannot open this file",
                                             f"{path.name} was not opened:\n\n{exc}")
            if not path.exists():
                self._forget(path)
            return False
        self.remember(path)
        return True

    def save_config(self, path: str | Path) -> bool:
        """Write the controls' config to ``path`` as TOML (atomically); a failure is reported in a
        message box. Returns whether it was written."""
        path = Path(path)
        try:
            write_text(path, config_to_toml(self.window.config(), comment="initsim config: open it "
                                            "with File > Open config, or drop it on the window"))
        except ExportError as exc:
            self.last_problem = show_problem(self.window, "Cannot save the config", str(exc))
            return False
        self.remember(path)
        return True

    def reset_to_defaults(self) -> None:
        """The default preset's config and the views' default options; a tour ends."""
        window = self.window
        window.tour.end()
        window.histograms.set_quantity("post")
        window.histograms.shared_x.setChecked(False)
        window.heatmaps.log_density.setChecked(True)
        window.set_config(get_preset(DEFAULT_PRESET).config)

    def recent_files(self) -> list[Path]:
        return [Path(p) for p in QSettings().value(RECENT_KEY, [], type=list)]

    def remember(self, path: Path) -> None:
        paths = [str(path.resolve())] + [str(p) for p in self.recent_files() if p != path.resolve()]
        QSettings().setValue(RECENT_KEY, paths[:MAX_RECENT])

    def save_session(self, settings: QSettings) -> None:
        """Keep the controls' config for the next launch (see last_session_config)."""
        settings.setValue(SESSION_KEY, config_to_toml(self.window.config()))

    # --- drops ----------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._dropped_file(event) is not None:
                event.acceptProposedAction()
                return True
        elif event.type() == QEvent.Type.Drop:
            path = self._dropped_file(event)
            if path is not None:
                event.acceptProposedAction()
                self.open_file(path)
                return True
        return super().eventFilter(watched, event)

    @staticmethod
    def _dropped_file(event: QDragEnterEvent | QDropEvent) -> Path | None:
        """The first local .toml or .json file dragged, if any."""
        for url in event.mimeData().urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in FILE_SUFFIXES:
                return Path(url.toLocalFile())
        return None

    # --- dialogs and the recent files menu ------------------------------------------------

    def _folder(self) -> str:
        recent = self.recent_files()
        if recent:
            return str(recent[0].parent)
        return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)

    def _ask_open_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open config", self._folder(), CONFIG_FILTER)
        if path:
            self.open_file(path)

    def _ask_open_tour(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open tour", self._folder(), TOUR_FILTER)
        if path:
            self.open_file(path)

    def _ask_save_config(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save config", str(Path(self._folder()) / "initsim.toml"),
                                              "initsim configs (*.toml)")
        if path:
            self.save_config(path if Path(path).suffix else path + ".toml")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for number, path in enumerate(recent, 1):
            action = self.recent_menu.addAction(f"&{number} {path.name}")
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _=False, path=path: self.open_file(path))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _forget(self, path: Path) -> None:
        QSettings().setValue(RECENT_KEY, [str(p) for p in self.recent_files() if p != path.resolve()])
