"""The memory limit is a preference of the window (Edit > Preferences, its own QSettings key), never
a config's, tour's or session's; a long or large run shows its estimate in the status line."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from initsim.app import create_window
from initsim.app.io.persistence import SESSION_KEY, last_session_config
from initsim.app.preferences import (MEMORY_LIMIT_KEY, MEMORY_LIMIT_TIP, PreferencesDialog, memory_limit,
                                     memory_limit_gib)
from initsim.app.views.training_view import TrainingRecord
from initsim.engine import DEFAULT_MEMORY_LIMIT, SimConfig, memory
from initsim.engine.train import Setup, TrainConfig

from appcheck import TIMEOUT_MS, settle

HUGE = "layers = 1000\nwidth = 4096\nbatch = 8192\nmemory_limit = " + "9" * 30 + "\n"
# About 280 MiB: over a limit of 0.25 GiB, within one of 1 GiB, and shown before it runs.
LARGE = SimConfig(layers=30, width=1024, batch=1024, activation="tanh", init="xavier_normal")


def test_the_limit_is_stored_under_its_own_key_and_an_unusable_value_is_the_default(qtbot):
    assert memory_limit() == DEFAULT_MEMORY_LIMIT
    dialog = PreferencesDialog()
    qtbot.addWidget(dialog)
    assert dialog.memory_limit.toolTip() == MEMORY_LIMIT_TIP
    dialog.memory_limit.setValue(6.5)
    dialog.accept()
    assert float(QSettings().value(MEMORY_LIMIT_KEY)) == 6.5
    assert memory_limit() == int(6.5 * 2**30)
    for stored in ("garbage", "1e400", "-3", "nan", "0.01"):
        QSettings().setValue(MEMORY_LIMIT_KEY, stored)
        assert memory_limit_gib() == DEFAULT_MEMORY_LIMIT / 2**30


def test_the_window_refuses_by_the_preference_and_shows_a_large_runs_estimate(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    QSettings().setValue(MEMORY_LIMIT_KEY, 0.25)
    shown = window.displayed_config()
    window.set_config(LARGE)
    assert window.warnings.property("level") == "error"
    assert "over the limit of 0.25 GiB" in window.warnings.text()
    assert "Edit > Preferences" in window.warnings.text()
    assert window.displayed_config() == shown and not window.controller.running

    QSettings().setValue(MEMORY_LIMIT_KEY, 1.0)
    runner = window.controller.runner
    runner.pause()  # held after its first layer, whatever the machine's speed
    window.set_config(LARGE)
    estimate = memory.simulation(LARGE.validated()).text()
    assert window.status.text() == f"Starting: {estimate}"
    assert runner.held.wait(TIMEOUT_MS / 1000)
    qtbot.waitUntil(lambda: window.status.text().startswith("Running"), timeout=TIMEOUT_MS)
    assert window.status.text().endswith(estimate)
    window.controller.stop()
    runner.resume()


def test_a_file_or_session_with_a_memory_limit_is_read_without_it(qtbot, make_window, tmp_path):
    window = make_window()
    settle(qtbot, window)
    path = tmp_path / "old.toml"
    path.write_text(HUGE)
    assert window.files.open_file(path)
    assert window.statusBar().currentMessage().startswith("old.toml:4: memory_limit was ignored")
    assert window.config().layers == 1000
    assert not window.controller.running  # refused under the default limit, not started
    assert "over the limit of 2.00 GiB" in window.warnings.text()

    QSettings().setValue(SESSION_KEY, HUGE)
    session = last_session_config()
    assert session is not None and session.layers == 1000 and "memory_limit" not in session.to_dict()
    window.set_config(session)
    assert not window.controller.running
    window.close()
    assert "memory_limit" not in QSettings().value(SESSION_KEY)


def test_a_window_given_a_limit_runs_under_it_instead_of_the_preference(qtbot):
    window = create_window(LARGE, memory_limit=64 * 2**20)  # a hidden window of the command line
    qtbot.addWidget(window)
    assert window.memory_limit() == 64 * 2**20
    assert "over the limit of 0.06 GiB" in window.warnings.text()
    assert not window.controller.running


def test_the_compare_view_refuses_over_the_preference_before_it_starts(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    QSettings().setValue(MEMORY_LIMIT_KEY, 0.25)
    window.set_config(LARGE)  # the window refuses to run it; the controls keep it
    assert window.compare.picked()
    window.compare.start()
    assert window.compare.status.text().startswith("Cannot compare these: memory:")
    assert "over the limit of 0.25 GiB" in window.compare.status.text()
    assert not window.compare.runner.busy


def test_a_long_training_shows_its_estimate_in_the_views_status_line():
    setup = Setup.of(SimConfig(layers=10, width=256), TrainConfig(steps=100_000))
    assert setup.estimate.worth_showing
    level, text = TrainingRecord(setup).status(True, None)
    assert text.endswith(f"waiting for the first step\u2026 ({setup.estimate.text()})")
