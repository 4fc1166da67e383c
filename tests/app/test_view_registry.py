"""One registry of views (initsim.app.views.registry.VIEWS): the window's tabs and their shortcuts,
the names tours may show and the views `initsim export --view` renders all follow it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtGui import QKeySequence

from initsim.app.views.registry import BY_NAME, VIEWS, view_name
from initsim.cli.export import IMAGE_VIEWS
from initsim.engine import tours
from initsim.engine.tours import Tour

from appcheck import settle


def test_the_names_tours_and_the_cli_accept_are_the_registrys():
    """The engine and the command line cannot import the app (and so Qt) to ask it."""
    assert tours.VIEWS == tuple(view.name for view in VIEWS if view.in_tours)
    assert IMAGE_VIEWS == ("window", *(view.name for view in VIEWS if view.offscreen))
    assert len(BY_NAME) == len(VIEWS)


def test_the_architecture_contract_keeps_every_registered_view_apart():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    contract = next(c for c in pyproject["tool"]["importlinter"]["contracts"] if c["type"] == "independence")
    assert contract["modules"] == [f"initsim.app.views.{view.module}" for view in VIEWS]


def test_the_tabs_their_shortcuts_and_the_window_attributes_are_the_registrys(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [view.title for view in VIEWS]
    assert [window.tabs.tabToolTip(i) for i in range(window.tabs.count())] == [view.tip for view in VIEWS]
    view_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&View")
    by_title = {action.text(): action for action in view_menu.actions()}
    for index, view in enumerate(VIEWS[:9]):
        action = by_title[view.title]
        assert action.shortcut() == QKeySequence(f"Ctrl+{index + 1}")
        action.trigger()
        widget = window.tabs.currentWidget()
        assert widget is getattr(window, view.name) is window.view(view.name)
        assert type(widget).__name__ == view.cls and view_name(window, widget) == view.name
    settle(qtbot, window)


def test_a_tour_step_shows_the_view_it_names(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    for view in VIEWS:
        if view.in_tours:
            step = tours.TourStep(title=view.title, text="", look_at="", view=view.name, config=window.config(),
                                  compare=())
            window.tour.start(Tour(name="one", title="One", description="", steps=(step,)))
            assert window.tabs.currentWidget() is window.view(view.name)
            assert f"the {view.name} view" in window.tour.panel.look_at.text()
    window.tour.end()
    settle(qtbot, window)
