"""Configs and tours as files: save and open round trips, drops, recent files, the last session,
files that cannot be used, reported with their file, line and problem while the window carries on
(a corpus of bad files: one message each), tours shown as plain text, and saved settings that cannot
be used, each ignored with a note while the window starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import QApplication

from initsim.app import application
from initsim.app.io.persistence import SESSION_KEY, last_session_config
from initsim.app.io.tour import DEFAULT_INTERVAL_S
from initsim.engine.configfile import MESSAGE_LIMIT, config_to_toml
from initsim.engine.presets import DEFAULT_PRESET, get_preset

from appcheck import SMALL, settle
from bad_files import make_bad_files

OTHER = SMALL.replace(layers=4, activation="relu", init="kaiming_uniform", init_params={"mode": "fan_out"},
                      seed=9).validated()


@pytest.fixture
def window(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    return window


def test_a_saved_config_opens_to_the_same_config(qtbot, window, tmp_path):
    window.set_config(OTHER)
    assert window.files.save_config(tmp_path / "mine.toml")
    window.set_config(SMALL)
    assert window.files.open_file(tmp_path / "mine.toml")
    assert window.config() == OTHER
    settle(qtbot, window)
    assert window.displayed_config() == OTHER
    assert window.files.recent_files()[0] == (tmp_path / "mine.toml").resolve()


def drag(window, path, event_type):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    position = QPointF(100, 100)
    event = event_type(position.toPoint() if event_type is QDragEnterEvent else position,
                       Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return event


def drop(window, path) -> bool:
    """Drag ``path`` over the window and, if the window takes it, drop it; whether it was taken."""
    if not drag(window, path, QDragEnterEvent).isAccepted():
        return False
    return drag(window, path, QDropEvent).isAccepted()


def test_a_config_or_a_tour_dropped_on_the_window_opens(qtbot, window, tmp_path):
    config = tmp_path / "dropped.toml"
    config.write_text(config_to_toml(OTHER))
    assert drop(window, config)
    assert window.config() == OTHER
    tour = tmp_path / "tour.toml"
    tour.write_text('title = "Dropped"\n\n[[step]]\ntitle = "One"\ntext = "Words."\npreset = "zeros"\n'
                    '[step.config]\nlayers = 3\nwidth = 8\nbatch = 8\n')
    assert drop(window, tour)
    assert window.tour.active and window.tour.tour.title == "Dropped"
    assert window.config() == get_preset("zeros").config.replace(layers=3, width=8, batch=8).validated()
    assert not drop(window, tmp_path / "picture.png")
    settle(qtbot, window)


# (file, its text, the line the message names (None: a JSON preset, whose parser says "line N"), a word of the problem)
UNUSABLE = [
    ("broken.toml", "layers = 4\nwidth = = 8\n", 2, "Invalid value"),
    ("unknown.toml", "layers = 4\nwidht = 8\n", 2, "widht"),
    ("value.toml", "layers = 4\n\ninit = \"he_nrmal\"\n", 3, "did you mean"),
    ("tour.toml", 'title = "T"\n\n[[step]]\ntitle = "One"\ntext = "Words."\nveiw = "stats"\n', 6, "veiw"),
    ("preset.json", '{"name": "p",\n "title": "P",,\n}', None, "line 2"),
]


def test_a_file_that_cannot_be_used_names_file_line_and_problem_and_changes_nothing(qtbot, window, tmp_path):
    for name, text, line, problem in UNUSABLE:
        path = tmp_path / name
        path.write_text(text)
        assert not window.files.open_file(path), name
        message = window.files.last_problem.text()
        assert window.files.last_problem.isVisible(), name
        assert (f"{path}:{line}:" if line else f"{path}:") in message, message
        assert problem in message, message
        assert window.config() == SMALL.validated() and not window.tour.active, name
    assert window.files.recent_files() == []
    settle(qtbot, window)  # still running


def test_a_missing_recent_file_is_reported_and_forgotten(window, tmp_path):
    path = tmp_path / "gone.toml"
    path.write_text(config_to_toml(SMALL))
    assert window.files.open_file(path)
    path.unlink()
    window.files.recent_menu.aboutToShow.emit()
    [action] = [a for a in window.files.recent_menu.actions() if a.text().endswith("gone.toml")]
    action.trigger()
    assert "cannot read" in window.files.last_problem.text()
    assert window.files.recent_files() == []


def test_saving_to_an_unwritable_place_is_reported(window, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    assert not window.files.save_config(blocker / "x.toml")
    assert "Not a directory" in window.files.last_problem.text()


def test_the_last_session_comes_back(qtbot, make_window):
    window = make_window()
    window.set_config(OTHER)
    window.close()
    assert last_session_config() == OTHER
    again = make_window(last_session_config())
    assert again.config() == OTHER
    settle(qtbot, again)


def test_a_stored_session_this_version_cannot_read_is_ignored(window):
    from PySide6.QtCore import QSettings

    QSettings().setValue("session/config", "layers = 4\nno_such_field = 1\n")
    assert last_session_config() is None


def test_reset_to_defaults(qtbot, window):
    window.histograms.set_quantity("grad")
    window.files.reset_action.trigger()
    assert window.config() == get_preset(DEFAULT_PRESET).config.validated()
    assert window.histograms.quantity == "post"
    settle(qtbot, window)


def test_the_application_has_its_icon_and_desktop_name():
    app = application()
    assert not app.windowIcon().isNull()
    assert {size.width() for size in app.windowIcon().availableSizes()} >= {16, 48, 256}
    assert QApplication.desktopFileName() == "initsim"
    assert isinstance(app.windowIcon(), QIcon)


def test_every_bad_file_gives_one_message_and_changes_nothing(qtbot, window, tmp_path):
    for path in make_bad_files(tmp_path):
        assert not window.files.open_file(path), path.name
        box = window.files.last_problem
        assert box.isVisible() and box.textFormat() == Qt.TextFormat.PlainText, path.name
        problem = box.text().split("\n\n", 1)[1]  # after "NAME was not opened:"
        assert problem.startswith(str(path)) and "\n" not in problem, problem[:300]
        assert len(problem) <= len(str(path)) + 12 + MESSAGE_LIMIT, path.name
        assert window.config() == SMALL.validated() and not window.tour.active, path.name
        box.close()
    assert window.files.recent_files() == []
    settle(qtbot, window)


def test_a_tours_words_are_shown_as_plain_text(qtbot, window, tmp_path):
    image = "<img src='file:///etc/passwd'>"
    path = tmp_path / "html.toml"
    path.write_text(f'title = "<b>T</b>"\n\n[[step]]\ntitle = "{image}"\ntext = "{image} <i>x</i>"\n'
                    f'look_at = "{image}"\n[step.config]\nlayers = 3\nwidth = 8\nbatch = 8\n')
    assert window.files.open_file(path)
    panel = window.tour.panel
    for label in (panel.title, panel.text, panel.progress):
        assert label.textFormat() == Qt.TextFormat.PlainText
    assert panel.title.text() == image and panel.text.text() == f"{image} <i>x</i>"
    assert "<img" not in panel.look_at.text() and "&lt;img src=" in panel.look_at.text()
    settle(qtbot, window)


SESSION_TEXTS = [
    "init_params = 5\n",
    f'init = "xavier_normal"\n\n[init_params]\ngain = {"9" * 400}\n',
    config_to_toml(OTHER)[:40],  # cut short
    "layers = " + "[" * 3000 + "]" * 3000 + "\n",
    f"seed = {'9' * 5000}\n",
]
# (key, a value that cannot be used)
CORRUPTIONS = [(SESSION_KEY, text) for text in SESSION_TEXTS] + [
    (SESSION_KEY, 5),
    ("view/tab", "abc"), ("view/tab", "99"), ("view/tab", "-1"), ("view/tab", "9" * 400),
    ("tour/interval", "abc"), ("tour/interval", "0"), ("tour/interval", "1e400"),
    ("window/geometry", "garbage"), ("window/geometry", QByteArray(b"garbage")),
    ("window/state", "garbage"), ("window/state", QByteArray(b"\x00" * 64)),
    ("view/quantity", "bogus"), ("view/quantity", 5),
    ("view/shared_x", "maybe"), ("view/log_density", ["a", "b"]),
]


@pytest.mark.parametrize("key, value", CORRUPTIONS)
def test_a_setting_that_cannot_be_used_is_ignored_with_a_note(qtbot, make_window, key, value):
    QSettings().setValue(key, value)
    if key == SESSION_KEY:
        assert last_session_config() is None
    window = make_window()
    note = window.statusBar().currentMessage()
    assert note.startswith("Saved settings that could not be used were ignored:") and note.endswith(key)
    assert window.histograms.quantity == "post" and window.tour.panel.interval.value() == DEFAULT_INTERVAL_S
    assert window.tabs.currentIndex() == 0
    settle(qtbot, window)


def test_settings_that_can_be_used_come_back_beside_ones_that_cannot(qtbot, make_window):
    settings = QSettings()
    for key, value in (("view/tab", "2"), ("view/quantity", "grad"), ("tour/interval", "30"),
                       ("view/shared_x", "true"), ("view/log_density", "garbage"), (SESSION_KEY, "width = -1")):
        settings.setValue(key, value)
    window = make_window()
    assert (window.tabs.currentIndex(), window.histograms.quantity) == (2, "grad")
    assert window.tour.panel.interval.value() == 30 and window.histograms.shared_x.isChecked()
    assert window.heatmap.log_density.isChecked()  # the default
    assert window.statusBar().currentMessage().endswith(f"view/log_density, {SESSION_KEY}")
    settle(qtbot, window)


def test_a_settings_file_of_garbage_is_no_settings(qtbot, make_window):
    path = Path(QSettings().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(range(256)) * 64)
    window = make_window()
    assert window.tabs.currentIndex() == 0
    settle(qtbot, window)
