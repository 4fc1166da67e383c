"""Rendering with no window on screen: `initsim export`, its tour slides and gallery, and File >
Export at a given size. A hidden main window (WA_DontShowOnScreen: laid out and painted, never
mapped, with or without a display) is laid out at the asked size, runs the config and is rendered;
what it paints is what the window paints, with the same code."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (QCoreApplication, QEvent, QEventLoop, QMessageLogContext, QSettings, QSize, Qt,
                            QtMsgType, qInstallMessageHandler)
from PySide6.QtWidgets import QApplication, QWidget

from initsim.engine import SimConfig
from initsim.engine.diagnosis import Finding
from initsim.engine.export import ExportError, write_into_folder
from initsim.engine.presets import Preset
from initsim.engine.tours import Tour

from ..runtime.controller import StreamRunner
from .imaging import image_bytes, write_image

if TYPE_CHECKING:
    from ..window import MainWindow

DEFAULT_SIZE = QSize(1600, 1000)
SLIDE_SIZE = QSize(1920, 1080)  # a projector's
GALLERY_SIZE = QSize(1200, 750)  # a view of a preset: a page holds many, each still readable alone
WINDOW = "window"  # the name that means the whole window rather than one view
# The views of a gallery: what a preset's lesson shows in, each drawn from the run alone.
GALLERY_VIEWS = ("histograms", "heatmap", "stats", "theory")

# How far a view's own work has come: what is counted ("training step"), how many are done, of how many.
Report = Callable[[str, int, int], None]


# The one thing Qt's offscreen platform says about every main window shown: noise on a terminal.
OFFSCREEN_NOTICE = "This plugin does not support propagateSizeHints"


@contextmanager
def headless() -> Iterator[None]:
    """The QApplication for rendering from the command line: Qt's offscreen platform when there
    is no display, settings of its own (the user's saved views never change an export, and the
    export never changes them), Qt's messages on stderr but the offscreen platform's notice."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .. import application

    application()
    previous = qInstallMessageHandler(_print_message)
    try:
        with tempfile.TemporaryDirectory(prefix="initsim-settings-") as folder:
            for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
                QSettings.setPath(settings_format, QSettings.Scope.UserScope, folder)
            yield
    finally:
        qInstallMessageHandler(previous)


def _print_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if OFFSCREEN_NOTICE not in message:
        print(message, file=sys.stderr)


@contextmanager
def hidden_window(config: SimConfig, size: QSize = DEFAULT_SIZE, memory_limit: int | None = None
                  ) -> Iterator[MainWindow]:
    """A main window of ``size`` running ``config`` (``memory_limit``: its runs' limit instead of
    the preference), never shown on screen; shut down and deleted on leaving (before it could save
    its geometry into the user's settings)."""
    from .. import create_window

    window = create_window(config, memory_limit=memory_limit)
    try:
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
        window.setUpdatesEnabled(False)  # nobody sees it paint: see painted()
        window.show()
        window.resize(size)
        yield window
    finally:
        window.shutdown()  # first: a shut-down window does not save its settings when closed
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@contextmanager
def painted(window: MainWindow) -> Iterator[None]:
    """A hidden window that paints, for rendering it: while its runs go, its paints (a third of
    the time of a tour's slides) would be for no one to see."""
    window.setUpdatesEnabled(True)
    try:
        yield
    finally:
        window.setUpdatesEnabled(False)


def run_and_wait(window: MainWindow, start: Callable[[], None] | None = None) -> None:
    """Call ``start`` (which starts a run: set_config, a tour step) and run the event loop until
    the window has painted that run to its end; with no ``start``, the run going now, whose end
    must not have been painted yet (a new window's first). Raises ExportError if the run fails
    or was not started (the window refused its config: no end would come)."""
    loop = QEventLoop()

    def failed() -> None:
        if window.controller.state.error:
            loop.quit()

    # run_finished comes once the last layer is painted (the state is complete a paint earlier).
    window.run_finished.connect(loop.quit)
    window.controller.changed.connect(failed)
    try:
        if start is not None:
            start()
        if window.refusal is not None:
            raise ExportError(f"cannot run this config: {window.refusal}")
        loop.exec()
    finally:
        window.run_finished.disconnect(loop.quit)
        window.controller.changed.disconnect(failed)
    if window.controller.state.error:
        raise ExportError(f"the run failed: {window.controller.state.error}")


@dataclass(frozen=True)
class ViewWork:
    """The work of a view that waits for its button (a sweep's Run, Train, Compare), started with
    the view's own settings before the view is rendered: ``training_steps`` (None: the Training
    tab's) and ``report``, told of its progress as it goes."""

    training_steps: int | None = None
    report: Report | None = None


def _train(view: QWidget, work: ViewWork) -> None:
    view.train(None if work.training_steps is None else view.settings.training(steps=work.training_steps))


# What a user presses to start each such view's work, and how far that work has come; the other
# views start theirs (a spectrum, a phase diagram) when shown.
WORK_STARTS: dict[str, Callable[[QWidget, ViewWork], None]] = {
    "sweep": lambda view, work: view.run(),
    "training": _train,
    "compare": lambda view, work: view.start(),
}
WORK_PROGRESS: dict[str, Callable[[QWidget], tuple[str, int, int] | None]] = {
    "sweep": lambda view: ("sweep point", int(view.finished.sum()), view.finished.size),
    "training": lambda view: ("training step", view.record.done, view.record.setup.training.steps),
    "compare": lambda view: None if view.last_progress is None else (
        "comparison run", view.last_progress.done, view.last_progress.total),
}


def start_view_work(view: QWidget, name: str, work: ViewWork) -> None:
    """Start the work of view ``name`` that waits for its button, as the button does; nothing for a
    view whose work needs none. Raises ExportError if the view refused to start (its status says
    why: a training setting out of range, a comparison over the memory limit)."""
    start = WORK_STARTS.get(name)
    if start is None:
        return
    start(view, work)
    if not view.runner.busy:
        raise ExportError(f"the {name} view did not start: {view.status.text()}")


def finish_view_work(view: QWidget, name: str = "view", report: Report | None = None) -> None:
    """Run the event loop until the work ``view`` (view ``name``) runs on its own runner (a
    spectrum, a comparison) has ended, telling ``report`` how far it has come as its events
    arrive; at once if it has none going. Raises ExportError if the work failed."""
    runner = getattr(view, "runner", None)
    if not isinstance(runner, StreamRunner) or not runner.busy:
        return
    progress = WORK_PROGRESS.get(name)
    reported: list[tuple[str, int, int]] = []
    failure: list[str] = []
    loop = QEventLoop()

    def arrived(run_id: int, events: list) -> None:  # after the view's own slot: the view has them
        counted = progress(view) if progress is not None and report is not None else None
        if counted is not None and counted not in reported[-1:]:  # a count once (a comparison's result repeats it)
            reported.append(counted)
            report(*counted)

    def failed(run_id: int, message: str) -> None:
        failure.append(message)
        loop.quit()

    runner.events.connect(arrived)
    runner.done.connect(loop.quit)
    runner.failed.connect(failed)
    try:
        loop.exec()  # nothing was delivered since busy was read: its end is still to come
    finally:
        runner.events.disconnect(arrived)
        runner.done.disconnect(loop.quit)
        runner.failed.disconnect(failed)
    if failure:
        raise ExportError(f"the work of the {name} failed: {failure[0]}")


def show_target(window: MainWindow, name: str) -> QWidget:
    """The widget to render for ``name``: the window (WINDOW) or a view, brought to front."""
    if name == WINDOW:
        return window
    view = window.view(name)
    window.tabs.setCurrentWidget(view)
    return view


def lay_out(window: MainWindow, widget: QWidget, size: QSize) -> None:
    """Resize the window so that ``widget`` (the window or one of its views) is ``size``; raises
    ExportError if the window cannot get that small."""
    for _ in range(3):  # the first resize settles the layout; a second corrects any rounding
        QApplication.processEvents()
        missing = size - widget.size()
        if missing.isNull():
            return
        window.resize(window.size() + missing)
    QApplication.processEvents()
    if widget.size() != size:
        raise ExportError(f"cannot lay this out at {size.width()} x {size.height()}: the smallest "
                          f"it gets is {widget.width()} x {widget.height()}")


def export_view(config: SimConfig, name: str, out: str | Path, size: QSize = DEFAULT_SIZE,
                scale: float = 1.0, like: MainWindow | None = None, memory_limit: int | None = None,
                work: ViewWork | None = None) -> Path:
    """Render view ``name`` (or WINDOW) of ``config`` laid out at ``size`` into ``out`` (.png at
    ``scale``, or .svg), and return the file; ``like``: a window whose view options and presenter
    mode to copy; ``work``: run the view's work that waits for a button first (without it, such a
    view is drawn as it opens, before anything was pressed)."""
    with hidden_window(config, size, memory_limit) as window:
        if like is not None:
            copy_view_options(like, window)
        run_and_wait(window)
        widget = show_target(window, name)
        if work is not None:
            start_view_work(widget, name, work)
        finish_view_work(window.tabs.currentWidget(), name, work.report if work is not None else None)
        lay_out(window, widget, size)
        with painted(window):
            return write_image(out, widget, window.displayed_config(), name, scale)


def export_tour(tour: Tour, out_dir: str | Path, size: QSize = SLIDE_SIZE, scale: float = 1.0,
                memory_limit: int | None = None) -> list[Path]:
    """Every step of ``tour`` as a slide: the window in presenter mode with the tour panel (without
    the menus, the status bar and the tour's buttons, which a slide cannot use), one PNG per step
    named ``NN-title.png`` in ``out_dir`` (created if needed). All slides are written, or none and
    no folder: they are rendered first, then written together (write_into_folder; a caller checks
    the folder with check_writable before this renders)."""
    slides: dict[str, bytes] = {}
    with hidden_window(tour.steps[0].config, size, memory_limit) as window:
        window.presenter.set_enabled(True, full_screen=False)
        window.menuBar().hide()
        window.statusBar().hide()
        window.tour.panel.set_buttons_visible(False)
        window.tour.start(tour)  # the first step's run replaces the window's first
        for index, step in enumerate(tour.steps):
            run_and_wait(window, window.tour.next if index else None)
            finish_view_work(window.tabs.currentWidget(), step.view)
            lay_out(window, window, size)
            with painted(window):
                slides[f"{index + 1:02d}-{slug(step.title)}.png"] = image_bytes(
                    ".png", window, step.config, step.view, scale)
    return write_into_folder(out_dir, slides)


@dataclass(frozen=True)
class GalleryEntry:
    """One preset of a gallery: the engine's diagnosis of the run drawn, and its views as PNGs."""

    preset: Preset
    findings: list[Finding]
    images: dict[str, bytes]  # by view name, in the order asked


def render_gallery(presets: Sequence[Preset], views: Sequence[str] = GALLERY_VIEWS, size: QSize = GALLERY_SIZE,
                   scale: float = 1.0, memory_limit: int | None = None,
                   report: Callable[[Preset, str], None] | None = None) -> list[GalleryEntry]:
    """Each of ``presets`` run in one hidden window and each of ``views`` of it rendered at ``size``
    as a PNG at ``scale`` (after the view's own work, a phase diagram), with the diagnosis of the
    same run; ``report`` is told of each image as it is made."""
    entries = []
    with hidden_window(presets[0].config, size, memory_limit) as window:
        for index, preset in enumerate(presets):
            run_and_wait(window, (lambda: window.set_config(preset.config)) if index else None)
            config = window.displayed_config()
            images = {}
            for name in views:
                widget = show_target(window, name)
                finish_view_work(widget, name)
                lay_out(window, widget, size)
                with painted(window):
                    images[name] = image_bytes(".png", widget, config, name, scale)
                if report is not None:
                    report(preset, name)
            entries.append(GalleryEntry(preset, window.displayed_state().diagnosis(), images))
    return entries


def copy_view_options(source: MainWindow, target: MainWindow) -> None:
    """What the histograms and heatmaps show, and presenter mode, as in ``source``."""
    target.histograms.set_quantity(source.histograms.quantity)
    target.histograms.shared_x.setChecked(source.histograms.shared_x.isChecked())
    target.log_action.setChecked(source.log_action.isChecked())
    if source.presenter.enabled:
        target.presenter.set_enabled(True, full_screen=False)


def slug(title: str) -> str:
    """A file-name fragment of ``title``: "He vs Xavier with ReLU" -> "he-vs-xavier-with-relu"."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48] or "step"
