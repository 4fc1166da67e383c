"""The desktop app: ``run()`` opens the window (with the last session's config), ``create_window()``
builds it for scripts and tests.

Qt is imported only when one of them is called, so importing this package stays cheap.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

# pyqtgraph picks a Qt binding by itself unless told: every module of the app imports PySide6.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from initsim.engine import SimConfig

    from .window import MainWindow

APP_NAME = "initsim"
# The GUI thread shares the GIL with the runs' worker threads: at Python's default 5 ms switch
# interval, each Qt call that releases the GIL may cost the GUI thread 5 ms to take it back, and a
# paint makes hundreds of them.
GIL_SWITCH_SECONDS = 0.0005
# How often the GUI thread checks whether Python's cycle collector has work (see application()).
# A collection's cost grows with the objects made since the last, and a long run makes tens of
# thousands a second: checked often, each collection stays short.
GC_INTERVAL_SECONDS = 0.1
_garbage_collector = None


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created (with ``argv``, Qt options such as -platform) if there is none."""
    from PySide6.QtWidgets import QApplication

    from .views import plotstyle

    app = QApplication.instance()
    if app is None:
        app = QApplication([APP_NAME, *(sys.argv[1:] if argv is None else argv)])
        app.setStyle("Fusion")
    if app.windowIcon().isNull():
        app.setWindowIcon(_icon())
    # Lets the desktop match the windows to resources/initsim.desktop (its icon, its name).
    QApplication.setDesktopFileName(APP_NAME)
    if not app.organizationName():
        app.setOrganizationName(APP_NAME)
    if not app.applicationName() or app.applicationName() == "python":
        app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    _collect_garbage_on_gui_thread(app)
    plotstyle.configure()
    return app


def _collect_garbage_on_gui_thread(app) -> None:
    """Turns Python's automatic cycle collection off and collects on a timer of the GUI thread.
    Left automatic, a collection may start on a run's worker thread and destroy widgets there; Qt
    then deadlocks (the worker holds a QObject's lock while it waits for the GIL, which the GUI
    thread holds while it waits for that lock) or crashes (seen here in a test run)."""
    import shiboken6
    from pyqtgraph.util.garbage_collector import GarbageCollector

    global _garbage_collector
    if _garbage_collector is None or not shiboken6.isValid(_garbage_collector.timer):
        _garbage_collector = GarbageCollector(interval=GC_INTERVAL_SECONDS)
        # Owned by the application, it lives and stops with it.
        _garbage_collector.timer.setParent(app)
    gc.disable()  # again: whoever ran in this process before may have turned it back on


def _icon():
    """The application's icon, drawn from resources/icons/initsim.svg at the sizes desktops ask
    for (from its bytes: the resources may be inside a zip)."""
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QIcon, QPainter, QPixmap
    from PySide6.QtSvg import QSvgRenderer

    from initsim.engine.presets import resource_dir

    renderer = QSvgRenderer(QByteArray(resource_dir("icons", "initsim.svg").read_bytes()))
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def create_window(config: SimConfig | None = None, blas_threads: int | None = 1,
                  memory_limit: int | None = None, first_run_at_first_paint: bool = False) -> MainWindow:
    """The main window, built and running its first config (the default preset's if None), not
    shown and without an event loop: the caller shows it and runs one (or lets qtbot do it).
    ``memory_limit``: its runs' limit instead of the preference (a hidden window for the CLI).
    ``first_run_at_first_paint``: the first run starts once the window is painted, not at once
    (the app's window: on screen sooner)."""
    from initsim.engine.presets import DEFAULT_PRESET, get_preset

    application()
    from .window import MainWindow

    window = MainWindow(config if config is not None else get_preset(DEFAULT_PRESET).config, blas_threads,
                        memory_limit, first_run_at_first_paint)
    # What exists now (the imported modules, the window) lives as long as the window: moved out of
    # the collector's sight, a full collection looks at what came later only (the README's
    # performance section has the figures). The window's shutdown gives them back, so that a
    # closed window can be collected.
    gc.freeze()
    return window


def run(argv: list[str] | None = None) -> int:
    """Open the window and run the event loop until it is closed; returns the exit code.

    ``argv``: the command-line arguments after the program name (Qt options such as
    ``-platform xcb``); None means ``sys.argv[1:]``.
    """
    app = application(argv)
    from .io.persistence import last_session_config

    window = create_window(last_session_config(), first_run_at_first_paint=True)
    app.aboutToQuit.connect(window.shutdown)
    with _quit_on_interrupt(window):
        window.show()
        code = app.exec()
    window.shutdown()
    window.deleteLater()
    # A window still alive when the interpreter exits can crash it: let Qt delete it now.
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return code


class _quit_on_interrupt:
    """Ctrl+C in the terminal closes the window. Python runs its signal handlers only between
    bytecodes, never inside Qt's event loop, so the handler's wake-up byte goes through a socket
    that Qt watches."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window

    def __enter__(self) -> None:
        from PySide6.QtCore import QSocketNotifier

        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._old_handler = signal.signal(signal.SIGINT, lambda *_: self._window.close())
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)

    def _drain(self) -> None:
        try:
            self._reader.recv(64)
        except BlockingIOError:
            pass

    def __exit__(self, *exc: object) -> None:
        self._notifier.setEnabled(False)
        signal.signal(signal.SIGINT, self._old_handler)
        signal.set_wakeup_fd(self._old_fd)
        self._reader.close()
        self._writer.close()
