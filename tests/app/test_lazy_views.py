"""The views after the first are built when first shown or asked for, in their tab's place:
a new window paints sooner, and nothing else about the views changes."""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser

from initsim.app.views.spectra_view import SpectraView
from initsim.app.views.theory_view import TheoryView
from initsim.app.views.registry import PendingView, plot_views

from appcheck import settle

LAZY = ("heatmap", "stats", "theory", "spectra", "sweep", "training", "compare", "inspect", "reference")


def test_a_new_window_builds_only_the_first_view(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    pending = [window.tabs.widget(i) for i in range(window.tabs.count())
               if isinstance(window.tabs.widget(i), PendingView)]
    assert [widget.name for widget in pending] == list(LAZY)
    assert window.tabs.currentWidget() is window.histograms


def test_showing_a_tab_builds_its_view_in_place_and_paints_the_run(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Theory")
    tip = window.tabs.tabToolTip(index)
    window.tabs.setCurrentIndex(index)
    view = window.tabs.currentWidget()
    assert isinstance(view, TheoryView) and view is window.theory is window.tabs.widget(index)
    assert (window.tabs.tabText(index), window.tabs.tabToolTip(index)) == ("Theory", tip)
    assert view.isVisible()
    assert window.tabs.count() == 1 + len(LAZY)


def test_asking_for_a_view_builds_it_without_showing_it(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    spectra = window.spectra
    assert isinstance(spectra, SpectraView) and window.tabs.indexOf(spectra) >= 0
    assert window.tabs.currentWidget() is window.histograms
    assert window.spectra is spectra  # built once
    assert isinstance(window.view("training"), type(window.training))
    assert isinstance(window.reference, QTextBrowser) and "kaiming" in window.reference.toPlainText().lower()


def test_a_view_built_in_presenter_mode_is_zoomed(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    window.presenter.set_enabled(True, full_screen=False)
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Spectra")
    window.tabs.setCurrentIndex(index)  # built as its tab is shown, then styled
    views = plot_views(window.tabs.currentWidget())
    assert views and all(view.transform().m11() > 1 for view in views)
    window.presenter.set_enabled(False)


def test_closing_builds_no_view(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    assert isinstance(window.training, type(window.view("training")))
    window.close()
    assert all(isinstance(window.tabs.widget(i), PendingView) for i in range(window.tabs.count())
               if window.tabs.tabText(i) in ("Theory", "Spectra", "Sweep", "Compare", "Reference"))


def test_the_heatmap_built_later_follows_the_log_density_option(qtbot, make_window):
    """Log density is the window's option (View menu, Ctrl+L, settings) from the start; the heatmap
    view's box takes it when built and stays in step with it both ways."""
    window = make_window()
    settle(qtbot, window)
    for checked in (False, True):  # the option toggled back to the window's default, on
        window.log_action.setChecked(checked)
    assert isinstance(window.tabs.widget(1), PendingView)  # not built by the option
    box = window.heatmap.log_density
    assert box.isChecked()  # a new box is not: it took the option
    window.log_action.setChecked(False)
    assert not box.isChecked()
    box.setChecked(True)
    assert window.log_action.isChecked()
