"""The main window: controls on the left, plots on the right, status and warnings below."""

from __future__ import annotations

import gc
import functools
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QScrollArea, QTabWidget,
                               QVBoxLayout, QWidget)

from initsim import __version__
from initsim.engine import ConfigError, SimConfig, memory
from initsim.engine.diagnosis import ALL_CLEAR
from initsim.engine.export import ExportError
from initsim.engine.schemes import READ_SCHEMES

from . import preferences
from .actions import make_action
from .controls import ControlsPanel
from .io.export import ExportActions
from .io.imaging import write_image
from .io.persistence import FileActions, StoredSettings, flag, integer_setting, last_session_config
from .io.tour import TourPlayer
from .messages import show_message, show_problem
from .model.runstate import QUANTITIES, RunState
from .preferences import PreferencesDialog
from .runtime.controller import RunController, Throttle
from .theme import PresenterMode
from .views.heatmap_view import LOG_DENSITY_TIP
from .views.registry import BY_NAME, VIEWS, PendingView, View
from .widgets import ProgressBar, SteadyLabel

# A burst of edits (typing 256 into a spin box, dragging) folds into one run per interval.
RUN_INTERVAL_MS = 120
# Repaints at most 25 times a second, however fast the engine streams layers.
PAINT_INTERVAL_MS = 40
DEFAULT_SIZE = (1360, 860)  # shrunk to fit smaller screens

STYLE_SHEET = """
QLabel[role="note"] { color: #505050; }
QLabel#warnings, QLabel[role="status"] { padding: 5px 8px; border-radius: 3px; }
QLabel[level="ok"] { background: #e9f5ec; color: #1e5631; }
QLabel[level="warn"] { background: #fff3e0; color: #7a3e00; }
QLabel[level="error"] { background: #fdecea; color: #8a1c1c; }
QLabel[level="info"] { background: #f1f3f6; color: #404040; }
"""


class _AfterFirstPaint(QObject):
    """Calls ``callback`` once, at the event loop's turn after the first paint of ``widget``."""

    def __init__(self, widget: QWidget, callback: Callable[[], None]) -> None:
        super().__init__(widget)
        self._callback = callback
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self._callback)
        return False


class MainWindow(QMainWindow):
    """The scriptable window: ``config()``, ``set_config()``, ``displayed_config()``, ``run_finished``."""

    run_finished = Signal(object)  # the SimConfig whose last layer has just been painted
    painted = Signal(int, int)  # events painted, events in the run
    view_built = Signal(object)  # a view built on demand, now in its tab (see view)

    def __init__(self, config: SimConfig, blas_threads: int | None = 1,
                 memory_limit: int | None = None, first_run_at_first_paint: bool = False) -> None:
        super().__init__()
        self.fixed_memory_limit = memory_limit  # None: the preference (Edit > Preferences)
        self.setWindowTitle("initsim \u2014 weight initialization, layer by layer")
        self.setObjectName("initsim_main_window")
        self.setStyleSheet(STYLE_SHEET)
        self.controller = RunController(blas_threads, self)
        self._displayed: RunState | None = None
        self._finished_run = 0  # the last run whose run_finished was emitted
        self._closed = False
        self._estimate = ""  # the current run's memory and time estimate, when worth showing
        # Why the controls' config was not run (it is invalid or over the memory limit), or None.
        self.refusal: str | None = None
        self._run_throttle = Throttle(RUN_INTERVAL_MS, self._start_run, self)
        self._paint_throttle = Throttle(PAINT_INTERVAL_MS, self._paint, self)

        self.controls = ControlsPanel()
        self._build_dock()
        self._build_central()
        self._build_status_bar()
        self.tour = TourPlayer(self)
        self.centralWidget().layout().insertWidget(0, self.tour.panel)  # above the views
        self.presenter = PresenterMode(self)
        self.presenter.toggled.connect(self._show_status_again)
        self.files = FileActions(self)  # configs and tours as files, drops, the session
        self.exports = ExportActions(self)
        self._build_menus()
        self._restore_settings()

        self.controls.set_config(config)
        self.controls.changed.connect(self._run_throttle.request)
        self.controller.changed.connect(self._on_run_changed)
        # Begun while the window builds and paints, the first run's imports and set-up hold the GIL
        # and so hold the window back: the app's window is on screen first.
        if first_run_at_first_paint:
            _AfterFirstPaint(self, self._start_first_run)
        else:
            self._start_run()

    # --- the scriptable API ---------------------------------------------------------------

    def config(self) -> SimConfig:
        """What the controls say."""
        return self.controls.config()

    def set_config(self, config: SimConfig) -> None:
        """Set the controls to ``config`` and start its run; raises ConfigError if it is invalid."""
        self.controls.set_config(config)
        self._run_throttle.cancel()
        self._start_run()

    def displayed_config(self) -> SimConfig | None:
        """The config whose results are painted now (perhaps not all its layers yet), or None."""
        return None if self._displayed is None else self._displayed.config

    def displayed_state(self) -> RunState | None:
        return self._displayed

    def painted_whole(self) -> bool:
        """Whether the current run is complete and painted whole, its status and warnings included
        (its run_finished was sent). Its state may be complete a paint earlier."""
        state = self.controller.state
        return state is not None and self._finished_run == state.run_id

    def view_caught_up(self) -> bool:
        """Whether the current view draws all of the displayed run (a view may spread a big
        change over several paints, see ``catching_up``)."""
        return not getattr(self.tabs.currentWidget(), "catching_up", False)

    def save_screenshot(self, path: str | Path) -> bool:
        """Write a PNG of the window (atomically, the config in a text chunk); False if it could
        not be written."""
        try:
            write_image(path, self, self.displayed_config() or self.config(), "window")
        except ExportError:
            return False
        return True

    # --- building -------------------------------------------------------------------------

    def _build_dock(self) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.controls)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 24)
        self.dock = QDockWidget("Controls", self)
        self.dock.setObjectName("controls_dock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                              | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                              | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)

    def _build_central(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setObjectName("views")
        self.tabs.setDocumentMode(True)
        # With many views, a narrow window elides the titles rather than hiding tabs behind
        # scroll arrows: every view stays one click away.
        self.tabs.setUsesScrollButtons(False)
        self.tabs.setElideMode(Qt.TextElideMode.ElideRight)
        # Every view but the reference has show_state(RunState), called while it is visible; a
        # view with background work of its own also has shutdown(), called when the window closes.
        # The first view is built now, the others when first shown or asked for (see view).
        self._built: dict[str, QWidget] = {}  # by name; shut down with the window even if taken out of the tabs
        self._pending: dict[str, PendingView] = {}
        for view in VIEWS:
            if view is VIEWS[0]:
                widget = self._built[view.name] = self._build_view(view)
            else:
                widget = self._pending[view.name] = PendingView(view.name, functools.partial(self._build_view, view))
            self.tabs.addTab(widget, view.title)
            self.tabs.setTabToolTip(self.tabs.count() - 1, view.tip)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.warnings = SteadyLabel()
        self.warnings.setObjectName("warnings")
        self.warnings.setToolTip("What the run shows, in plain words, with the layer where it starts")
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Two lines' room from the start: a line that grows and shrinks from run to run would
        # resize, and so relayout and repaint, every plot above it.
        self.warnings.setMinimumHeight(2 * self.warnings.fontMetrics().lineSpacing() + 12)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(4)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.warnings)
        self.setCentralWidget(central)

    def _build_view(self, view: View) -> QWidget:
        """A new view, connected to the window. Its module, and the engine parts it uses, are
        imported now: a view not looked at costs the window's start-up nothing."""
        widget = view.build(self)
        if view.name in ("histograms", "heatmap"):
            widget.options_changed.connect(self._repaint_view)
        if view.name == "heatmap":
            # Log density is the window's option (View menu, settings), which the view's box follows.
            widget.log_density.setChecked(self.log_action.isChecked())
            widget.log_density.toggled.connect(self.log_action.setChecked)
            self.log_action.toggled.connect(widget.log_density.setChecked)
        if view.name == "theory":
            widget.config_requested.connect(self.set_config)
        if view.name == "inspect":
            widget.simulate_requested.connect(self.simulate_checkpoint)
            widget.open_button.clicked.connect(self.files.ask_open_checkpoint)
        return widget

    def inspect_checkpoint(self, path: str | Path) -> None:
        """Show the Inspect view with the checkpoint ``path`` being read."""
        view = self.view("inspect")
        self.tabs.setCurrentWidget(view)
        view.open_checkpoint(path)

    def simulate_checkpoint(self, path: str, layout: str) -> None:
        """"Simulate these weights": the checkpoint's own dense layers (the checkpoint scheme) with
        the controls' activation, batch and input, shown by layer (Layer statistics); a file that
        is no longer what it was says why in a message box."""
        config = self.controls.config().replace(init="checkpoint", init_params={"file": path, "layout": layout},
                                                residual="none")
        try:
            self.set_config(config)
        except ConfigError as exc:
            self.files.last_problem = show_problem(self, "Cannot simulate this checkpoint", str(exc))
            return
        self.tabs.setCurrentWidget(self.view("stats"))

    def view(self, name: str) -> QWidget:
        """The view ``name`` (see views.registry), built in its tab's place if it was not yet."""
        pending = self._pending.pop(name, None)
        if pending is None:
            return self._built[name]
        view = self._built[name] = pending.build()
        index, current = self.tabs.indexOf(pending), self.tabs.currentIndex()
        title, tip = self.tabs.tabText(index), self.tabs.tabToolTip(index)
        blocked = self.tabs.blockSignals(True)  # the same tab stays current: no change to announce
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, view, title)
        self.tabs.setTabToolTip(index, tip)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(blocked)
        pending.deleteLater()
        gc.freeze()  # the view lives as long as the window: out of the collector's sight like it
        self.view_built.emit(view)
        return view

    def built_views(self) -> dict[str, QWidget]:
        """The views built so far, by name."""
        return dict(self._built)

    def view_at(self, index: int) -> QWidget:
        """The view in tab ``index``, built if it was not yet."""
        widget = self.tabs.widget(index)
        return self.view(widget.name) if isinstance(widget, PendingView) else widget

    def _on_tab_changed(self, index: int) -> None:
        self.view_at(index)
        self._repaint_view()

    def _build_status_bar(self) -> None:
        self.status = QLabel()
        self.status.setObjectName("status")
        self.progress = ProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.progress.setToolTip("Layers done: the forward pass fills the first half, the backward "
                                 "pass the second")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.stop_button.setToolTip("Stop the run; the layers done so far stay on screen (Esc)")
        self.stop_button.clicked.connect(self.controller.stop)
        bar = self.statusBar()
        bar.addWidget(self.status, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.stop_button)

    def _action(self, menu, text: str, shortcut, slot: Callable | None, tip: str,
                checkable: bool = False) -> QAction:
        action = make_action(self, text, [shortcut] if shortcut else [], slot, tip, checkable)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.setToolTipsVisible(True)
        self.files.add_to(file_menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Save screenshot\u2026", "Ctrl+S",
                     self._ask_screenshot, "Save a PNG of the window")
        file_menu.addMenu(self.exports.menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close, "Quit initsim")

        edit_menu = bar.addMenu("&Edit")
        self._action(edit_menu, "&Preferences\u2026", "Ctrl+,", self.open_preferences,
                     "The memory limit of runs (kept on this computer, never in a config file)")

        run_menu = bar.addMenu("&Run")
        self._action(run_menu, "&Stop", Qt.Key.Key_Escape, self.controller.stop, "Stop the run")
        self._action(run_menu, "&New seed", "Ctrl+N", self.controls.new_seed,
                     "Run again with a random seed")
        self._action(run_menu, "Use the &recommended initialization", "Ctrl+R",
                     self.controls.use_recommended, "Switch to the scheme usually paired with the "
                                                    "activation")

        self.tour.build_presets_menu(bar.addMenu("&Presets"), self.files.open_tour_action)

        view_menu = bar.addMenu("&View")
        for i in range(self.tabs.count()):  # Ctrl+1 to Ctrl+9; the views after those by menu
            self._action(view_menu, self.tabs.tabText(i), f"Ctrl+{i + 1}" if i < 9 else "",
                         lambda _=False, i=i: self.tabs.setCurrentIndex(i), self.tabs.tabToolTip(i))
        self._action(view_menu, "Next view", "Ctrl+Tab", self._next_view,
                     "Switch to the next view")
        view_menu.addSeparator()
        for i, (key, label) in enumerate(QUANTITIES):
            self._action(view_menu, f"Histograms of {label.lower()}", f"Alt+{i + 1}",
                         lambda _=False, key=key: self._show_quantity(key), f"Show {label.lower()}")
        self.shared_x_action = self._action(view_menu, "Shared x range", "Ctrl+Shift+X",
                                            self.histograms.shared_x.setChecked,
                                            self.histograms.shared_x.toolTip(), checkable=True)
        self.shared_x_action.setChecked(self.histograms.shared_x.isChecked())
        self.histograms.shared_x.toggled.connect(self.shared_x_action.setChecked)
        # The heatmap view, once built, follows this action (see _new_heatmap_view).
        self.log_action = self._action(view_menu, "Log density", "Ctrl+L", None, LOG_DENSITY_TIP,
                                       checkable=True)
        view_menu.addSeparator()
        dock_action = self.dock.toggleViewAction()
        dock_action.setShortcut(QKeySequence("Ctrl+D"))
        view_menu.addAction(dock_action)
        self._action(view_menu, "&Full screen", "F11",
                     self._toggle_full_screen, "Toggle full screen")
        view_menu.addAction(self.presenter.action)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Reference", "F1",
                     lambda: self.tabs.setCurrentWidget(self.reference),
                     "Which initialization for which activation, the formulas, the framework names")
        self._action(help_menu, "&About initsim", "", self._about, "About initsim")

    # --- runs and painting ----------------------------------------------------------------

    def _start_run(self) -> None:
        config = self.controls.config()
        try:
            config = config.validated()
            estimate = memory.check(memory.simulation(config), self.memory_limit(),
                                    "layers, width or batch, or raise the limit in Edit > Preferences")
        except ConfigError as exc:
            self.controller.stop()
            self.stop_button.setEnabled(False)  # nothing runs: not even at start-up
            self.progress.reset()
            self.refusal = str(exc)
            self._show_message("error", f"Cannot run this config: {exc}")
            return
        self.refusal = None
        self._estimate = estimate.text() if estimate.worth_showing else ""
        self.controller.start(config, self.memory_limit())
        if self._estimate:  # shown before the first layer arrives
            self.status.setText(f"Starting: {self._estimate}")

    def memory_limit(self) -> int:
        """The limit of this window's runs, in bytes."""
        return preferences.memory_limit() if self.fixed_memory_limit is None else self.fixed_memory_limit

    def open_preferences(self) -> None:
        """Edit > Preferences; the config runs again under a changed limit."""
        if PreferencesDialog(self).exec():
            self._start_run()

    @Slot()
    def _on_run_changed(self) -> None:
        if not self._closed:
            self._paint_throttle.request()

    def _paint(self) -> None:
        state = self.controller.state
        if state is None or self._closed:
            return
        if state.received:
            self._displayed = state
            self._repaint_view()
        self._show_status(state)
        if (state.complete and state is self._displayed and self.view_caught_up()
                and self._finished_run != state.run_id):
            self._finished_run = state.run_id
            self.run_finished.emit(state.config)

    def _repaint_view(self) -> None:
        """Paint the visible view from the displayed run; the hidden ones wait until shown."""
        view = self.tabs.currentWidget()
        if self._displayed is not None and hasattr(view, "show_state"):
            view.show_state(self._displayed)
            self.painted.emit(self._displayed.received, self._displayed.total)
            if not self.view_caught_up():
                self._paint_throttle.request()

    def _show_status(self, state: RunState) -> None:
        self.stop_button.setEnabled(self.controller.running)
        c = state.config
        network = (f"{c.layers} layers of {Path(c.init_params['file']).name}" if c.init in READ_SCHEMES
                   else f"{c.layers} \u00d7 {c.width}")
        shape = f"{network}, batch {c.batch}, {c.dtype}"
        if state.error:
            self.progress.reset()  # a failed run is not a run in progress
            self.status.setText(f"Failed at the {state.progress_text()}: {shape}")
            self._show_message("error", f"The run failed: {state.error}")
            return
        self.progress.setRange(0, state.total)
        self.progress.setValue(state.received)
        if state.complete:
            seconds = state.seconds if state.seconds is not None else time.perf_counter() - state.started
            self.status.setText(f"Done in {seconds * 1000:,.0f} ms: {shape}")
        elif state.stopped:
            self.status.setText(f"Stopped at the {state.progress_text()}: {shape}")
        else:
            self.status.setText(f"Running, {state.progress_text()} "
                                f"({time.perf_counter() - state.started:.1f} s): {shape}"
                                + (f"; {self._estimate}" if self._estimate else ""))
        # A refused config's reason stays on show: the run it stopped can still report after it.
        if self._displayed is not None and self.refusal is None:
            self._show_warnings(self._displayed)

    def _show_status_again(self) -> None:
        if self.controller.state is not None:
            self._show_status(self.controller.state)

    def _show_warnings(self, state: RunState) -> None:
        found = state.diagnosis()
        warnings = [f.message for f in found if f.is_warning]
        notes = "".join(f" \u2139 {f.message}." for f in found if not f.is_warning)
        full = "\u26a0 " + " \u00b7 ".join(warnings) + notes
        # On a projector, the first finding (the lesson) in large type; all of them in its tooltip:
        # four findings at presenter size take a third of a 720-pixel screen from the plots.
        self.warnings.setToolTip(full if warnings and self.presenter.enabled else "")
        if warnings and self.presenter.enabled and len(found) > 1:
            more = len(found) - 1
            self._show_message("warn", f"\u26a0 {warnings[0]} (and {more} more)")
        elif warnings:
            self._show_message("warn", full)
        elif state.complete:
            self._show_message("ok", f"\u2713 No warnings over all {state.layers} {state.config.part}s: "
                                     f"{ALL_CLEAR}.{notes}")
        else:
            self._show_message("info", f"No warnings so far.{notes}")

    def _show_message(self, level: str, text: str) -> None:
        show_message(self.warnings, level, text)

    # --- small actions --------------------------------------------------------------------

    def _show_quantity(self, key: str) -> None:
        self.tabs.setCurrentWidget(self.histograms)
        self.histograms.set_quantity(key)

    def _next_view(self) -> None:
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + 1) % self.tabs.count())

    def _toggle_full_screen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)

    def _ask_screenshot(self) -> None:
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", str(Path(folder) / "initsim.png"),
                                              "PNG images (*.png)")
        if path and not self.save_screenshot(path):
            QMessageBox.warning(self, "Save screenshot", f"Could not write {path}.")

    def _about(self) -> None:
        QMessageBox.about(self, "About initsim",
                          f"<b>initsim {__version__}</b><p>See what weight initialization does to "
                          "a deep network, layer by layer: the histograms, the statistics and the "
                          "mean-field theory, live.</p>")

    # --- settings and shutdown ------------------------------------------------------------

    def reset_view_options(self) -> None:
        """The views' options as a new window has them: the histograms of the activations on a
        shared x range, the heatmap's log density."""
        self.histograms.set_quantity("post")
        self.histograms.shared_x.setChecked(True)
        self.log_action.setChecked(True)

    def _restore_settings(self) -> None:
        """The window and views as they were closed; a value that cannot be used keeps the default
        and is named in the status bar."""
        stored = StoredSettings()
        if not stored.use("window/geometry", self.restoreGeometry):
            available = self.screen().availableGeometry()
            self.resize(min(DEFAULT_SIZE[0], int(available.width() * 0.92)),
                        min(DEFAULT_SIZE[1], int(available.height() * 0.92)))
        stored.use("window/state", self.restoreState)
        stored.use("view/tab", lambda value: self.tabs.setCurrentIndex(
            integer_setting(0, self.tabs.count() - 1)(value)))
        self.reset_view_options()  # where none is stored
        stored.use("view/quantity", self.histograms.set_quantity)
        stored.use("view/shared_x", lambda value: self.histograms.shared_x.setChecked(flag(value)))
        stored.use("view/log_density", lambda value: self.log_action.setChecked(flag(value)))
        self.tour.restore(stored)
        last_session_config(stored)  # only to note a stored session this version cannot take
        stored.note_ignored(self)

    def _save_settings(self) -> None:
        self.presenter.set_enabled(False)  # the next launch opens the window as it is without it
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("view/tab", self.tabs.currentIndex())
        settings.setValue("view/quantity", self.histograms.quantity)
        settings.setValue("view/shared_x", "true" if self.histograms.shared_x.isChecked() else "false")
        settings.setValue("view/log_density", "true" if self.log_action.isChecked() else "false")
        self.files.save_session(settings)

    def shutdown(self) -> None:
        """End the worker thread and the timers; the window shows what it showed. Idempotent."""
        self._closed = True
        self._run_throttle.cancel()
        self._paint_throttle.cancel()
        self.tour.shutdown()
        self.controller.shutdown()
        for view in self._built.values():  # views with background work of their own
            if hasattr(view, "shutdown"):
                view.shutdown()
        gc.unfreeze()  # what create_window froze, this window's objects among them

    def _start_first_run(self) -> None:
        if not self._closed and self.controller.state is None:  # no run was asked for meanwhile
            self._start_run()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self._save_settings()
        self.shutdown()
        super().closeEvent(event)


def _view_attributes() -> None:
    """Each view is the window's attribute of its name too (window.heatmap, window.training, ...),
    built when first asked for."""
    for name in BY_NAME:
        setattr(MainWindow, name, property(lambda window, name=name: window.view(name),
                                           doc=f"The {name} view (see views.registry)."))


_view_attributes()
