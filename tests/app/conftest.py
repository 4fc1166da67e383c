"""Fixtures of the app tests: an offscreen Qt, isolated settings, windows with small configs, and a
check that no test leaves a QThread or a QTimer running."""

from __future__ import annotations

import gc
import os
from pathlib import Path

HERE = Path(__file__).parent

# Before Qt is imported anywhere: no display needed, and pyqtgraph on the same binding. The
# offscreen screen is a desktop's 1920 x 1200 (its default, 800 x 800, would clamp the windows).
os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={HERE / 'offscreen-screen.json'}"
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings

from initsim.app import application, create_window
from initsim.app.window import MainWindow
from initsim.engine import SimConfig

from appcheck import SMALL, leftovers

# The offscreen platform cannot pass size hints to a window system and says so once per main
# window shown; no other platform prints it.
OFFSCREEN_NOTICE = "This plugin does not support propagateSizeHints"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOTICE))


@pytest.hookimpl(trylast=True)  # after the fixtures' teardown; pytest-qt has closed the widgets
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last app test, Python's cycle collector is automatic again: the app turns it off
    (it collects on the GUI thread), and the tests that follow run without an app, as the CLI does.
    The windows' garbage is collected first, here on the GUI thread: a collection on one of the
    later tests' threads must find no widget to free (nor any window's objects left frozen)."""
    if nextitem is None or HERE not in Path(nextitem.path).parents:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.unfreeze()
        gc.collect()
        gc.enable()


# --- no QThread or QTimer may outlive its test ------------------------------------------------

@pytest.fixture(autouse=True)
def no_leftover_threads_or_timers():
    """Fails the test if it leaves a thread or timer running. Set up before qtbot, so its check
    comes after pytest-qt has closed the test's widgets."""
    leftovers()
    yield
    found = leftovers()
    if found:
        pytest.fail("left running after the test: " + "; ".join(found))


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path):
    """Each test reads and writes its own QSettings folder, never the user's, under the names the
    application gives it: a test's own QSettings() before the first window of a process would
    otherwise write under no organization, where the window never reads."""
    application()
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(settings_format, QSettings.Scope.UserScope, str(tmp_path / "settings"))


# --- windows ----------------------------------------------------------------------------------

@pytest.fixture
def make_window(qtbot):
    """Builds a shown main window (closed by qtbot after the test); ``size`` None keeps the size
    it restored from the settings."""
    def make(config: SimConfig | None = SMALL, size: tuple[int, int] | None = (1200, 800)) -> MainWindow:
        window = create_window(config)
        qtbot.addWidget(window)
        if size is not None:
            window.resize(*size)
        window.show()
        return window
    return make
