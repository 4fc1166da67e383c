"""Presenter mode on a projector's 1280 x 720 with a tour (issue 12): the step's main plot gets
the height (Layer statistics' lower plots give way, histogram panels take the grid that fits),
the warnings line says its first finding, tick labels have one size and layer axes whole layers."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from initsim.app.views.histogram_view import panel_columns
from initsim.app.views.plotstyle import MIN_DATA_HEIGHT, TICK_PIXELS, LayerAxis
from initsim.app.views.registry import plot_views
from initsim.engine.tours import get_tour

from appcheck import SMALL, settle, train_to_the_end

ZEROS = SMALL.replace(init="zeros", activation="relu")
PROJECTOR = (1280, 720)


def data_height(plot: pg.PlotItem) -> float:
    """The height of ``plot``'s data area on screen, in pixels."""
    view = plot.getViewBox()
    return view.mapRectToScene(view.boundingRect()).height() * view.scene().views()[0].transform().m22()


@pytest.fixture
def lecture(qtbot, make_window):
    """A window at 1280 x 720 in presenter mode, not full screen, with the classic tour's first step."""
    window = make_window(SMALL, size=PROJECTOR)
    window.presenter.set_enabled(True, full_screen=False)
    window.resize(*PROJECTOR)
    window.tour.start(get_tour("classic"))
    settle(qtbot, window)
    return window


def test_the_std_plot_gets_the_height_on_a_projector_and_the_details_return_without_presenter(
        qtbot, lecture):
    window = lecture
    window.tabs.setCurrentWidget(window.stats)
    settle(qtbot, window)
    view = window.stats
    assert not view.details.isVisible()  # the dead units and correlation give way
    assert data_height(view.std_plot) > view.height() / 3
    window.tour.end()
    window.presenter.set_enabled(False)
    settle(qtbot, window)
    assert view.details.isVisible()
    for plot in (view.std_plot, view.fraction_plot, view.correlation_plot):
        assert data_height(plot) >= MIN_DATA_HEIGHT


def test_histogram_panels_take_the_grid_that_fits_and_keep_a_data_area(qtbot, lecture):
    window = lecture
    window.tabs.setCurrentWidget(window.histograms)
    settle(qtbot, window)
    view = window.histograms
    plots = view.plots
    assert view._columns == panel_columns(len(view.panels), plots.width(), plots.height())
    assert all(data_height(panel.plot) >= MIN_DATA_HEIGHT - 1 for panel in view.panels)


def test_panel_columns_make_the_largest_panels():
    assert panel_columns(10, 1270, 290) == 5  # wide and short: two rows of five
    assert panel_columns(16, 1600, 900) == 4
    assert panel_columns(16, 900, 900) == 3  # six rows of three panels beat four of four, each 1.6:1
    assert panel_columns(3, 300, 900) == 1
    assert panel_columns(1, 500, 500) == 1
    assert panel_columns(0, 500, 500) == 1


def test_presenter_warnings_say_the_first_finding_and_the_rest_on_hover(qtbot, make_window):
    window = make_window(ZEROS, size=PROJECTOR)
    settle(qtbot, window)
    found = window.controller.state.diagnosis()
    assert len(found) > 1 and found[0].is_warning
    full = window.warnings.text()
    assert all(f.message in full for f in found) and window.warnings.toolTip() == ""
    window.presenter.set_enabled(True, full_screen=False)
    headline = window.warnings.text()
    assert headline.startswith(f"\u26a0 {found[0].message} (and {len(found) - 1} more")
    assert window.warnings.toolTip() == full
    window.presenter.set_enabled(False)
    assert window.warnings.text() == full


def test_every_axis_has_the_one_tick_size_and_layer_axes_whole_layers(qtbot, make_window):
    window = make_window(SMALL.replace(layers=3))
    settle(qtbot, window)
    for name in ("histograms", "heatmap", "stats", "theory", "spectra", "training", "compare"):
        view = window.view(name)
        window.tabs.setCurrentWidget(view)
        settle(qtbot, window)
        axes = [item for graphics in plot_views(view) for item in graphics.scene().items()
                if isinstance(item, pg.AxisItem) and item.isVisible() and item.orientation in ("left", "bottom")
                and not isinstance(item.parentItem(), pg.ColorBarItem)]
        assert axes, name
        for axis in axes:
            assert axis.style["tickFont"] is not None and axis.style["tickFont"].pixelSize() == TICK_PIXELS, name
    stats = window.stats
    for plot in (stats.std_plot, stats.fraction_plot, stats.correlation_plot):
        axis = plot.getAxis("bottom")
        assert isinstance(axis, LayerAxis)
        ticks = [value for _, values in axis.tickValues(0.5, 3.5, 600) for value in values]
        assert ticks and np.all(np.asarray(ticks) == np.round(ticks))


def test_training_fits_a_1280_window_once_it_has_drawn(qtbot, make_window):
    """The decision regions' title, once it said the step, made the row wider than the window."""
    window = make_window(SMALL, size=PROJECTOR)
    view = train_to_the_end(qtbot, window, 30)
    settle(qtbot, window)
    assert view.regions_plot.titleLabel.text.startswith("Decision regions at step 30")
    least = view.plots.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).width()
    assert least <= view.plots.width()
    right = view.regions_plot.mapRectToScene(view.regions_plot.boundingRect()).right()
    assert right <= view.plots.width() / view.plots.transform().m11()


def test_spectra_numbers_give_way_to_the_plots_on_a_projector(qtbot, lecture):
    window = lecture
    view = window.view("spectra")
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    numbers = (view.jacobian_numbers, view.weight_numbers)
    assert not any(label.isVisible() for label in numbers)
    window.tour.end()
    window.presenter.set_enabled(False)
    settle(qtbot, window)
    assert all(label.isVisible() for label in numbers)


def test_histogram_panels_keep_their_places_when_the_depth_changes(qtbot, make_window):
    """Every panel shown sits at its row and column, and no other is shown."""
    window = make_window(SMALL.replace(layers=12))
    view = window.histograms
    window.tabs.setCurrentWidget(view)
    for layers in (12, 11, 14, 3, 12):
        window.set_config(SMALL.replace(layers=layers))
        settle(qtbot, window)
        layout = view.plots.ci.layout
        columns = view._columns
        assert len(view.panels) == layers
        for i, panel in enumerate(view.panels):
            assert layout.itemAt(i // columns, i % columns) is panel.plot
        shown = {id(panel.plot) for panel in view.panels}
        spare = [p.plot for p in view._pool if id(p.plot) not in shown]
        assert not any(plot.scene() is not None and plot.isVisible() for plot in spare)
        assert layout.count() == layers


def test_on_a_shared_x_range_only_each_columns_lowest_panel_writes_tick_values(qtbot, make_window):
    """Small multiples: the shared range's values under the lowest panel of each column; every panel
    keeps one data height, labelled or not; panels on their own ranges each write theirs."""
    window = make_window(SMALL.replace(layers=14))
    view = window.histograms
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    columns, count = view._columns, len(view.panels)
    assert 1 < columns < count  # more than one row, and a last row that is not full
    labelled = [panel.axis.style["showValues"] for panel in view.panels]
    assert labelled == [i + columns >= count for i in range(count)]
    # Titles take their height a turn of the event loop after their text: wait for the layout to settle.
    qtbot.waitUntil(lambda: len({round(data_height(panel.plot)) for panel in view.panels}) == 1)
    lowest = view.panels[-1].plot.getViewBox().viewRange()[0]
    assert all(np.allclose(panel.plot.getViewBox().viewRange()[0], lowest) for panel in view.panels)
    view.shared_x.setChecked(False)
    settle(qtbot, window)
    assert all(panel.axis.style["showValues"] for panel in view.panels)


def test_the_histogram_caption_names_blocks_of_a_residual_network(qtbot, make_window):
    window = make_window(SMALL.replace(layers=40))
    view = window.histograms
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    assert view.caption.text().endswith("9 of 40 layers: the first, every 5th, the last")
    window.set_config(SMALL.replace(layers=40, residual="pre", norm="layer"))
    settle(qtbot, window)
    assert view.caption.text().endswith("9 of 40 blocks: the first, every 5th, the last")


def test_after_a_change_of_depth_each_panel_shows_when_its_layer_arrives_in_its_own_cell(qtbot):
    """The grid fills in a few panels a paint: a panel waits, hidden, for its new layer (painting
    every panel at its new place at once held the GUI thread), and keeps its cell meanwhile."""
    from initsim.app.model.runstate import RunState
    from initsim.app.views.histogram_view import PANELS_PER_PAINT, HistogramView
    from initsim.engine import simulate_stream

    view = HistogramView()
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    config = SMALL.replace(layers=12).validated()
    events = list(simulate_stream(config))
    state = RunState(config, run_id=1)
    view.show_state(state)  # the depth's grid, nothing arrived
    assert len(view.panels) == 12 and not any(panel.plot.isVisible() for panel in view.panels)
    layout = view.plots.ci.layout
    layout.activate()
    cells = [panel.plot.geometry() for panel in view.panels]
    assert all(cell.width() > 0 and cell.height() > 0 for cell in cells)  # kept while hidden
    for event in events[:5]:
        state.add(event)
    view.show_state(state)
    shown = [panel.plot.isVisible() for panel in view.panels]
    assert shown == [i < min(5, PANELS_PER_PAINT) for i in range(12)]
    layout.activate()
    assert [panel.plot.geometry() for panel in view.panels] == cells  # nothing moved as they appeared
    for event in events[5:]:
        state.add(event)
    while view.catching_up or not all(panel.plot.isVisible() for panel in view.panels):
        view.show_state(state)
    layout.activate()
    assert [panel.plot.geometry() for panel in view.panels] == cells
