"""Guided tours in the window (steps, keys, auto-advance, the fallback view, comparisons) and
presenter mode (full screen, larger type, high contrast, zoomed plots, all undone when it ends)."""

from __future__ import annotations

from dataclasses import replace

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QLabel, QWidget

from initsim.app.io.offscreen import run_and_wait
from initsim.app.theme import AXIS_COLOR, ZOOM
from initsim.app.views.registry import plot_views
from initsim.engine.tours import Tour, TourStep, tours

from appcheck import SMALL, TIMEOUT_MS, settle

TINY = SMALL.replace(layers=3, width=8, batch=8)


def small_tour(*views: str, compare: tuple[str, ...] = ()) -> Tour:
    steps = tuple(TourStep(title=f"Step {i}", text=f"Sentence {i}.", look_at=f"Look {i}.", view=view,
                           config=TINY.replace(seed=i).validated(), compare=compare)
                  for i, view in enumerate(views, 1))
    return Tour(name="test", title="A test tour", description="", steps=steps)


@pytest.fixture
def window(qtbot, make_window):
    window = make_window(TINY)
    settle(qtbot, window)
    return window


@pytest.mark.parametrize("name", sorted(tours()))
def test_every_step_of_a_shipped_tour_applies_its_config_and_its_view(qtbot, window, name):
    tour = tours()[name]  # each rendered to the end: tests/cli/test_export_cli.py
    window.tour.start(tour)
    for index, step in enumerate(tour.steps):
        if index:
            window.tour.next()
        assert window.config() == step.config
        assert window.tabs.currentWidget() is window.view(step.view)
        panel = window.tour.panel
        assert panel.title.text() == step.title and panel.text.text() == step.text
        assert f"step {index + 1} of {len(tour.steps)}" in panel.progress.text()
        if step.view == "spectra":  # the slide shows Gaussian vs orthogonal when the step says so
            assert window.spectra.compare.isChecked() == step.isometry
    assert not window.tour.panel.next_button.isEnabled()
    window.tour.next()  # past the last step: nothing happens
    assert window.tour.index == len(tour.steps) - 1
    window.set_config(TINY)  # not to wait for the last step's deep net
    settle(qtbot, window)


def test_a_spectra_step_sets_the_isometry_comparison_both_ways(window):
    isometry = small_tour("spectra", "spectra")
    steps = (replace(isometry.steps[0], isometry=True), isometry.steps[1])
    window.tour.start(replace(isometry, steps=steps))
    assert window.spectra.compare.isChecked()
    assert window.spectra.wanted_jacobians()[0][0] == "gaussian"
    window.tour.next()
    assert not window.spectra.compare.isChecked()


def test_a_step_is_painted_when_its_run_ends(window):
    window.tour.start(small_tour("heatmap", "stats"))
    run_and_wait(window)
    run_and_wait(window, window.tour.next)
    assert window.displayed_config() == TINY.replace(seed=2).validated()
    assert window.displayed_state().complete


def test_keys_move_through_a_tour_only_while_it_runs(qtbot, window):
    window.activateWindow()
    qtbot.waitActive(window, timeout=TIMEOUT_MS)
    tab = window.tabs.currentIndex()
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.tabs.currentIndex() == tab and not window.tour.active
    window.tour.start(small_tour("histograms", "heatmap", "stats"))
    for key, index in ((Qt.Key.Key_Right, 1), (Qt.Key.Key_PageDown, 2), (Qt.Key.Key_Right, 2),
                       (Qt.Key.Key_Left, 1), (Qt.Key.Key_PageUp, 0)):
        qtbot.keyClick(window, key)
        assert window.tour.index == index
    assert window.tabs.currentWidget() is window.histograms
    assert window.config() == TINY.replace(seed=1).validated()
    settle(qtbot, window)


def test_auto_advance_steps_on_each_tick_and_stops_after_the_last(qtbot, window):
    window.tour.start(small_tour("histograms", "heatmap"))
    window.tour.panel.interval.setValue(7)
    window.tour.panel.auto_button.click()
    assert window.tour.timer.isActive() and window.tour.timer.interval() == 7000
    assert window.tour.auto_action.isChecked()
    window.tour.timer.timeout.emit()
    assert window.tour.index == 1 and window.tour.timer.isActive()
    window.tour.timer.timeout.emit()  # past the last step
    assert window.tour.index == 1 and not window.tour.timer.isActive()
    assert not window.tour.panel.auto_button.isChecked()
    settle(qtbot, window)


def test_ending_a_tour_hides_the_panel_and_keeps_the_config(qtbot, window):
    window.tour.start(small_tour("histograms", "heatmap"))
    window.tour.set_auto(True)
    window.tour.end()
    assert not window.tour.panel.isVisible() and not window.tour.timer.isActive()
    assert not window.tour.next_action.isEnabled()
    assert window.config() == TINY.replace(seed=1).validated()
    settle(qtbot, window)


def test_a_comparison_step_asks_the_compare_view_to_compare(qtbot, window, monkeypatch):
    calls = []
    monkeypatch.setattr(window.compare, "compare", lambda schemes, *args, **kwargs: calls.append(schemes))
    window.tour.start(small_tour("compare", compare=("kaiming_normal", "xavier_normal")))
    assert window.tabs.currentWidget() is window.compare
    assert calls == [["kaiming_normal", "xavier_normal"]]
    settle(qtbot, window)


def test_the_tour_panel_and_its_controls_explain_themselves(window):
    window.tour.start(small_tour("histograms", "stats"))
    panel = window.tour.panel
    controls = [w for kind in (QAbstractButton, QAbstractSpinBox, QLabel) for w in panel.findChildren(kind)
                if not isinstance(w.parent(), QAbstractSpinBox)]
    assert len(controls) >= 9
    assert all(w.toolTip() for w in controls)


def test_presenter_mode_enlarges_and_darkens_everything_then_undoes_it(qtbot, window):
    window.tabs.setCurrentWidget(window.stats)
    sheet = window.styleSheet()
    axis = window.stats.std_plot.getAxis("left")
    pens = (axis.textPen().color().name(), axis.pen().color().name())
    window.activateWindow()
    qtbot.waitActive(window, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.presenter.enabled and window.presenter.action.isChecked()
    assert window.windowState() & Qt.WindowState.WindowFullScreen
    assert not window.dock.isVisible()
    assert "font-size" in window.styleSheet()
    assert window.tabs.tabBar().font().pointSizeF() > QWidget().font().pointSizeF()
    views = plot_views(window.stats)
    assert views and all(view.transform().m11() > 1 for view in views)
    # Full screen leaves the plots room for the whole zoom (less room, less zoom).
    qtbot.waitUntil(lambda: window.size() == window.screen().size(), timeout=TIMEOUT_MS)
    assert max(view.transform().m11() for view in views) == pytest.approx(ZOOM)
    assert axis.textPen().color().name() == axis.pen().color().name() == AXIS_COLOR
    window.presenter.action.trigger()
    assert not window.presenter.enabled
    assert window.styleSheet() == sheet and window.dock.isVisible()
    assert not window.windowState() & Qt.WindowState.WindowFullScreen
    assert all(view.transform().m11() == 1 for view in plot_views(window))
    assert (axis.textPen().color().name(), axis.pen().color().name()) == pens


def test_presenter_mode_reaches_views_shown_later_and_legends(window):
    window.presenter.set_enabled(True, full_screen=False)
    window.tabs.setCurrentWidget(window.heatmap)
    assert all(view.transform().m11() > 1 for view in plot_views(window.heatmap))
    legends = [item for plots in (window.stats.plots, window.stats.details) for item in plots.scene().items()
               if isinstance(item, pg.LegendItem)]
    assert legends and not any(item.flags() & item.GraphicsItemFlag.ItemIgnoresTransformations
                               for item in legends)
    window.presenter.set_enabled(False)
    assert all(item.flags() & item.GraphicsItemFlag.ItemIgnoresTransformations for item in legends)


def test_closing_in_presenter_mode_saves_the_window_as_it_is_without_it(qtbot, make_window):
    window = make_window(TINY)
    window.presenter.set_enabled(True)
    window.close()
    again = make_window(TINY, size=None)
    assert again.dock.isVisible() and not again.isFullScreen() and not again.presenter.enabled
    settle(qtbot, again)
