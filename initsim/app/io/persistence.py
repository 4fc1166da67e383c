"""Configs and tours as files: File > Open config / Save config / Open tour / Recent files / Reset
to defaults, a config or tour dropped on the window, and the last session's config restored at
launch. A file that cannot be used is reported in a message box naming the file, the line and the
problem; the window carries on as it was. Saved settings are read one value at a time: a value that
cannot be used is skipped with a note in the status bar, and the window starts as if it were not
there."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QEvent, QObject, QSettings, QStandardPaths
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMenu

from initsim.engine import ConfigError, SimConfig
from initsim.engine.checkpoints import PICKLE_EXTENSIONS
from initsim.engine.config import IGNORED_KEYS
from initsim.engine.configfile import config_from_toml, config_to_toml, from_file
from initsim.engine.export import ExportError, write_text
from initsim.engine.presets import DEFAULT_PRESET, get_preset, parse_preset
from initsim.engine.tours import Tour, parse_tour

from ..actions import make_action
from ..messages import show_problem

if TYPE_CHECKING:
    from ..window import MainWindow

T = TypeVar("T")

SESSION_KEY = "session/config"
RECENT_KEY = "files/recent"
MAX_RECENT = 8
FILE_SUFFIXES = (".toml", ".json")
# Checkpoints open in the Inspect view; the pickles the reader refuses are among them, to be refused
# there in words.
CHECKPOINT_SUFFIXES = (".safetensors", ".npz", ".npy", ".h5") + PICKLE_EXTENSIONS
CONFIG_FILTER = "initsim configs (*.toml);;Presets (*.json);;All files (*)"
TOUR_FILTER = "Tours (*.toml);;All files (*)"
CHECKPOINT_FILTER = ("Checkpoints (*.safetensors *.npz *.npy *.h5);;PyTorch pickles, to convert "
                     "(*.pt *.pth *.bin *.ckpt);;All files (*)")
# A tour's TOML has [[step]] tables; a config's never does.
_TOUR_STEP = re.compile(r"^\s*\[\[\s*step\s*\]\]", re.MULTILINE)
# How long the status bar says which saved settings were ignored.
IGNORED_NOTE_MS = 20000


def file_contents(path: Path, notes: list[str] | None = None) -> SimConfig | Tour:
    """What a user's file holds: a tour (TOML with [[step]] tables), a config (TOML) or a preset's
    config (.json); one ConfigError "file:line: problem" (configfile.from_file) if it cannot be used.
    ``notes`` receives a line for each key of older files that was ignored (IGNORED_KEYS)."""
    def parse(text: str, source: str) -> SimConfig | Tour:
        for key in IGNORED_KEYS:  # as a TOML key (key = ...) or a JSON one ("key": ...)
            found = re.search(rf'(^|[{{,\s])"?{key}"?\s*[=:]', text, re.MULTILINE)
            if found is not None and notes is not None:
                line = text.count("\n", 0, found.end()) + 1
                notes.append(f"{path.name}:{line}: {key} was ignored: the memory limit is a preference "
                             "of this computer (Edit > Preferences), never a file's")
        if _TOUR_STEP.search(text):
            return parse_tour(text, source)
        if path.suffix.lower() == ".json":
            return parse_preset(text, source).config
        return config_from_toml(text, source)
    return from_file(path, parse)


class StoredSettings:
    """The saved settings, read one value at a time. A value that cannot be used (a settings file
    edited by hand, cut short, or written by another version) is skipped and its key kept in
    ``ignored``: one bad value never stops the window from starting."""

    def __init__(self) -> None:
        self.settings = QSettings()
        self.ignored: list[str] = []

    def value(self, key: str, parse: Callable[[Any], T]) -> T | None:
        """``parse(the value under key)``; None if there is none, or ``parse`` refused it (raised
        ValueError, TypeError or OverflowError: then the key is noted)."""
        value = self.settings.value(key)
        if value is None:
            return None
        try:
            return parse(value)
        except (ValueError, TypeError, OverflowError):
            self.ignored.append(key)
            return None

    def use(self, key: str, apply: Callable[[Any], bool | None]) -> bool:
        """``apply(the value under key)`` for a value a widget takes or refuses (restoreGeometry
        returns False): whether it was taken; a refused value is noted."""
        taken = self.value(key, lambda value: apply(value) is not False)
        if taken is False:
            self.ignored.append(key)
        return bool(taken)

    def note_ignored(self, window: MainWindow) -> None:
        """Say in the status bar which settings were ignored, if any."""
        if self.ignored:
            window.statusBar().showMessage(f"Saved settings that could not be used were ignored: "
                                           f"{', '.join(self.ignored)}", IGNORED_NOTE_MS)


def integer_setting(low: int, high: int) -> Callable[[Any], int]:
    """A setting's parser: an integer (stored as text) in [low, high]."""
    def parse(value: Any) -> int:
        number = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
        if number is None or not low <= number <= high:
            raise ValueError(f"expected an integer in [{low}, {high}]")
        return number
    return parse


def flag(value: Any) -> bool:
    """A setting's parser: "true" or "false" (or a bool)."""
    if isinstance(value, bool) or value in ("true", "false"):
        return value in (True, "true")
    raise ValueError("expected true or false")


def session_config(text: Any) -> SimConfig:
    """The config stored as the last session's (TOML text); ConfigError or TypeError if unusable."""
    if not isinstance(text, str):
        raise TypeError(f"expected the text of a config, got {type(text).__name__}")
    return config_from_toml(text, "the last session")


def last_session_config(stored: StoredSettings | None = None) -> SimConfig | None:
    """The config the window had when it was last closed, or None (first launch, or a stored
    config this version does not take: then noted in ``stored``)."""
    return (stored or StoredSettings()).value(SESSION_KEY, session_config)


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
        self.open_checkpoint_action = make_action(window, "Open chec&kpoint\u2026", ["Ctrl+I"],
                                                   self.ask_open_checkpoint,
                                                   "Inspect a checkpoint's weights (.safetensors, .npz, .npy, "
                                                   ".weights.h5): which initialization, and what is wrong")
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
        menu.addAction(self.open_checkpoint_action)
        menu.addMenu(self.recent_menu)
        menu.addAction(self.reset_action)

    # --- the scriptable API ---------------------------------------------------------------

    def open_file(self, path: str | Path) -> bool:
        """Open a config (.toml, or a preset's .json) or a tour (a .toml with [[step]] tables):
        the config is applied, the tour started. A file that cannot be used is reported in a
        message box and changes nothing; returns whether it was opened. A checkpoint opens in the
        Inspect view, which says there whatever it cannot read."""
        path = Path(path)
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            self.window.inspect_checkpoint(path)
            self.remember(path)
            return True
        notes: list[str] = []
        try:
            contents = file_contents(path, notes)
            if isinstance(contents, Tour):
                self.window.tour.start(contents)
            else:
                self.window.set_config(contents)
            if notes:
                self.window.statusBar().showMessage(notes[0], IGNORED_NOTE_MS)
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
        window.reset_view_options()
        window.set_config(get_preset(DEFAULT_PRESET).config)

    def recent_files(self) -> list[Path]:
        """The files last opened, newest first (entries that are not paths skipped)."""
        stored = QSettings().value(RECENT_KEY, [], type=list)
        return [Path(p) for p in stored[:MAX_RECENT] if isinstance(p, str) and p and "\0" not in p]

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
        """The first local config, tour or checkpoint file dragged, if any."""
        for url in event.mimeData().urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in FILE_SUFFIXES + CHECKPOINT_SUFFIXES:
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

    def ask_open_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open checkpoint", self._folder(), CHECKPOINT_FILTER)
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
