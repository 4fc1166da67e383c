"""File > Export: images of the right size that carry their config, SVGs of the plots, the
displayed run's data as the engine writes it, and failures that say what went wrong and leave no
file behind. `initsim export --view` of the views with work of their own: done before the render."""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from initsim.app.io.imaging import CONFIG_KEY, VIEW_KEY
from initsim.app.views.compare_view import DEFAULT_PICKS, DEFAULT_SEEDS
from initsim.app.views.sweep_view import DEFAULT_GRID
from initsim.cli import main
from initsim.engine import ConfigError, SimConfig
from initsim.engine.export import ExportError, export_data

from appcheck import SMALL, reference, settle, start_held

SVG = "{http://www.w3.org/2000/svg}"


def colored_fraction(image: QImage) -> float:
    """The share of pixels in colour (the plots' fills and curves), not white, grey or black."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(rgb.constBits(), dtype=np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    pixels = pixels[:, :4 * rgb.width()].reshape(rgb.height(), rgb.width(), 4)[..., :3].astype(int)
    return float(np.mean(pixels.max(axis=2) - pixels.min(axis=2) > 40))


def config_in_png(path) -> SimConfig:
    return SimConfig.from_dict(json.loads(QImage(str(path)).text(CONFIG_KEY)))


def files_in(folder) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


@pytest.fixture
def window(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    return window


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_a_view_as_png_has_its_size_times_the_scale_its_plots_and_its_config(window, tmp_path, scale):
    view = window.tabs.currentWidget()
    path = window.exports.export_image(tmp_path / "view.png", "view", scale)
    image = QImage(str(path))
    assert (image.width(), image.height()) == (round(view.width() * scale), round(view.height() * scale))
    assert colored_fraction(image) > 0.05  # the histograms' fills
    assert config_in_png(path) == window.displayed_config() == SMALL.validated()
    assert image.text(VIEW_KEY) == "histograms"


def test_the_window_as_png_and_the_screenshot_carry_the_config(window, tmp_path):
    path = window.exports.export_image(tmp_path / "window.png", "window")
    assert (QImage(str(path)).width(), QImage(str(path)).height()) == (window.width(), window.height())
    assert window.save_screenshot(tmp_path / "shot.png")
    assert config_in_png(path) == config_in_png(tmp_path / "shot.png") == SMALL.validated()


def test_a_given_size_lays_the_view_out_again_at_that_size(window, tmp_path):
    window.tabs.setCurrentWidget(window.stats)
    window.histograms.set_quantity("grad")
    path = window.exports.export_image(tmp_path / "stats.png", "view", size=QSize(640, 420))
    image = QImage(str(path))
    assert (image.width(), image.height()) == (640, 420)
    assert colored_fraction(image) > 0.005  # the std curves
    assert image.text(VIEW_KEY) == "stats"
    assert config_in_png(path) == SMALL.validated()


def test_a_given_size_works_for_a_view_tours_do_not_name(window, tmp_path):
    window.tabs.setCurrentWidget(window.reference)
    path = window.exports.export_image(tmp_path / "reference.png", "view", size=QSize(700, 400))
    image = QImage(str(path))
    assert (image.width(), image.height()) == (700, 400) and image.text(VIEW_KEY) == "reference"


def test_a_view_as_svg_holds_its_plot_paths_and_its_config(window, tmp_path):
    path = window.exports.export_image(tmp_path / "histograms.svg", "view")
    root = ET.parse(path).getroot()
    curves = [e for e in root.iter(f"{SVG}g") if e.get("id", "").startswith("PlotCurveItem")]
    assert len(curves) >= SMALL.layers  # a histogram curve per layer's panel
    assert sum(1 for _ in root.iter(f"{SVG}path")) >= SMALL.layers
    metadata = root.find(f"{SVG}metadata[@id='{CONFIG_KEY}']")
    assert SimConfig.from_dict(json.loads(metadata.text)) == SMALL.validated()


def test_svg_is_refused_for_the_window_and_for_a_view_without_plots(window, tmp_path):
    with pytest.raises(ExportError, match="one view's plots"):
        window.exports.export_image(tmp_path / "window.svg", "window")
    window.tabs.setCurrentWidget(window.reference)
    with pytest.raises(ExportError, match="as PNG"):
        window.exports.export_image(tmp_path / "reference.svg", "view")
    assert files_in(tmp_path) == set()


def test_copy_puts_the_view_on_the_clipboard(window):
    window.exports.copy_image("view")
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (window.tabs.currentWidget().width(),
                                               window.tabs.currentWidget().height())


@pytest.mark.parametrize("kind, name", [("stats_csv", "run.csv"), ("stats_json", "run.json"),
                                        ("histograms", "run.npz")])
def test_data_exports_are_the_engines_files_for_the_displayed_run(window, tmp_path, kind, name):
    (tmp_path / "window").mkdir()
    (tmp_path / "engine").mkdir()
    written = window.exports.export_data(tmp_path / "window" / name, kind)
    expected = export_data(reference(SMALL.validated()), tmp_path / "engine" / name)
    assert [p.name for p in written] == [p.name for p in expected]
    for ours, theirs in zip(written, expected):
        if ours.suffix == ".npz":
            with np.load(ours) as a, np.load(theirs) as b:
                assert sorted(a.files) == sorted(b.files)
                for key in a.files:
                    np.testing.assert_array_equal(a[key], b[key])
        else:
            assert ours.read_text() == theirs.read_text()


def test_initial_weights_carry_the_config(window, tmp_path):
    [path] = window.exports.export_data(tmp_path / "weights.npz", "weights")
    with np.load(path) as arrays:
        assert {f"W{i}" for i in range(1, SMALL.layers + 1)} <= set(arrays.files)
        assert SimConfig.from_dict(json.loads(str(arrays["config_json"]))) == SMALL.validated()


def test_data_of_an_unfinished_run_is_refused(qtbot, window, tmp_path):
    start_held(qtbot, window, SMALL.replace(seed=8))  # its first layer painted, the rest held
    with pytest.raises(ExportError, match=r"has not finished \(forward pass, layer 1 of 5\)"):
        window.exports.export_data(tmp_path / "early.csv", "stats_csv")
    assert not (tmp_path / "early.csv").exists()


def test_an_unwritable_path_shows_a_message_naming_it_and_leaves_nothing(window, tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    target = blocker / "run.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    [action] = [a for a in window.exports.menu.actions() if a.shortcut().toString() == "Ctrl+Shift+E"]
    action.trigger()
    problem = window.exports.last_problem
    assert problem.isVisible()
    assert str(target) in problem.text() and "Not a directory" in problem.text()
    assert files_in(tmp_path) == {"a file"}


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(window, tmp_path, monkeypatch):
    path = tmp_path / "view.png"
    path.write_bytes(b"the previous export")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ExportError, match="No space left"):
        window.exports.export_image(path, "view", 2.0)
    assert files_in(tmp_path) == {"view.png"}
    assert path.read_bytes() == b"the previous export"


def test_arguments_out_of_range_are_clean_errors_with_the_valid_choices(window, tmp_path):
    with pytest.raises(ConfigError, match=r"scale: got nan, expected a number in \[0.25, 4\]"):
        window.exports.export_image(tmp_path / "view.png", "view", math.nan)
    with pytest.raises(ConfigError, match=r"which: unknown name 'everything'.*\(valid: view, window\)"):
        window.exports.export_image(tmp_path / "view.png", "everything")
    with pytest.raises(ConfigError, match=r"kind: unknown name 'bogus'.*valid: .*stats_csv"):
        window.exports.export_data(tmp_path / "run.csv", "bogus")
    assert files_in(tmp_path) == set()


def test_a_place_that_takes_no_files_is_refused_before_anything_is_rendered(window, tmp_path, monkeypatch):
    def render(*args, **kwargs):
        raise AssertionError("rendered before the folder was checked")

    monkeypatch.setattr("initsim.app.io.export.export_view", render)
    monkeypatch.setattr("initsim.app.io.export.export_data", render)
    target = tmp_path / "missing" / "view.png"
    with pytest.raises(ExportError, match=f"cannot write {target}: No such file"):
        window.exports.export_image(target, "view", size=QSize(800, 600))
    with pytest.raises(ExportError, match="No such file"):
        window.exports.export_data(tmp_path / "missing" / "run.csv", "stats_csv")
    assert files_in(tmp_path) == set()


# --- initsim export --view: a view's own work, started as its button does and finished first ----

SMALL_FLAGS = ["--layers", str(SMALL.layers), "--width", str(SMALL.width), "--batch", str(SMALL.batch),
               "--activation", SMALL.activation, "--init", SMALL.init, "--seed", str(SMALL.seed)]
TRAINING_STEPS = 20


# The last progress line of each view's work (spectra computes on show, and says nothing), and the
# coloured share its image must pass: the view as it opens, before its button, has 0.0131 (the
# sweep's theory map), 0.0002 (training) and 0 (compare).
@pytest.mark.parametrize("view, flags, finished, colored", [
    pytest.param("spectra", [], None, 0.003, id="spectra"),
    pytest.param("sweep", [], f"sweep point {DEFAULT_GRID ** 2} of {DEFAULT_GRID ** 2}", 0.3, id="sweep"),
    pytest.param("training", ["--steps", str(TRAINING_STEPS)],
                 f"training step {TRAINING_STEPS} of {TRAINING_STEPS}", 0.01, id="training"),
    pytest.param("compare", [], f"comparison run {len(DEFAULT_PICKS) * DEFAULT_SEEDS} of "
                 f"{len(DEFAULT_PICKS) * DEFAULT_SEEDS}", 0.005, id="compare"),
])
def test_export_view_draws_a_views_work_done(capsys, tmp_path, view, flags, finished, colored):
    out = tmp_path / f"{view}.png"
    assert main(["export", *SMALL_FLAGS, "--view", view, *flags, "--size", "900x560", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out == f"wrote {out}: the {view}\n"
    if finished is not None:
        assert printed.err.endswith(f"initsim: {finished}\n")  # the work's end, reported before the render
    image = QImage(str(out))
    assert (image.width(), image.height()) == (900, 560)
    assert image.text(VIEW_KEY) == view and config_in_png(out) == SMALL.validated()
    assert colored_fraction(image) > colored
