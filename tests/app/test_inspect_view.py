"""The Inspect view (issue 14): a checkpoint opened from the File menu's path or dropped on the
window fills the tensor table through the engine's inspector, the selected tensor's plots draw its
values against the matched scheme's density and its spectrum against Marchenko-Pastur, bad files
say why in the view, and "Simulate these weights" runs the checkpoint's own layers."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from initsim.app.controls import TextBox
from initsim.app.views.inspect_view import COLUMNS, FLAGGED_ROW
from initsim.engine import ConfigError, get_scheme
from initsim.engine.inspection import inspect_tensor

from appcheck import TIMEOUT_MS, assert_paints, reference, settle


def sample(name: str, fan_in: int, fan_out: int, seed: int = 0) -> np.ndarray:
    """A (fan_in, fan_out) matrix from the engine's own sampler, numpy's layout."""
    scheme = get_scheme(name)
    return scheme.sample(fan_in, fan_out, np.random.default_rng(seed), np.dtype(np.float32),
                         scheme.params({}))


@pytest.fixture
def mlp_file(tmp_path):
    """An MLP 64 -> 48 -> 32 in numpy's layout: He-normal weights (Keras, truncated), zero biases."""
    path = tmp_path / "mlp.npz"
    np.savez(path, **{"dense_1/kernel": sample("he_normal", 64, 48), "dense_1/bias": np.zeros(48, np.float32),
                      "dense_2/kernel": sample("he_normal", 48, 32, seed=1), "dense_2/bias": np.zeros(32, np.float32)})
    return path


def inspected(qtbot, window, path):
    window.files.open_file(path)
    view = window.view("inspect")
    qtbot.waitUntil(lambda: not view.runner.busy and view.table.rowCount() > 0 or
                    view.status.property("level") == "error", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not view.running, timeout=TIMEOUT_MS)
    return view


def test_a_checkpoint_fills_the_table_as_the_engine_inspects_it(qtbot, make_window, mlp_file):
    window = make_window()
    settle(qtbot, window)
    view = inspected(qtbot, window, mlp_file)
    assert window.tabs.currentWidget() is view
    with np.load(mlp_file) as data:
        expected = [inspect_tensor(name, data[name], "numpy") for name in sorted(data.files)]
    assert [r.name for r in view.reports] == [r.name for r in expected]
    for row, report in enumerate(expected):
        assert view.table.item(row, 0).text() == report.name
        assert view.table.item(row, 2).text() == report.kind
    kernel = next(r for r in view.reports if r.name == "dense_1/kernel")
    assert kernel.best is not None and "he_normal" in (kernel.best.scheme, *kernel.equivalent)
    assert view.status.property("level") == "ok"


def test_the_selected_weight_draws_its_values_over_the_scheme_and_its_spectrum_over_the_law(
        qtbot, make_window, mlp_file):
    window = make_window()
    view = inspected(qtbot, window, mlp_file)
    row = [r.name for r in view.reports].index("dense_1/kernel")
    view.table.selectRow(row)
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.name == "dense_1/kernel", timeout=TIMEOUT_MS)
    x, density = view.value_curve.getData()
    assert x.size and np.all(np.isfinite(density))
    # The values' density and the matched truncated normal's agree where the values are.
    px, pdf = view.density_curve.getData()
    assert px.size and pdf.max() > 0
    assert abs(np.trapezoid(pdf, px) - 1) < 0.02
    ex, eigen_density = view.spectrum_curve.getData()
    lx, law = view.law_curve.getData()
    assert ex.size and lx.size and np.all(law >= 0)
    bias_row = [r.name for r in view.reports].index("dense_1/bias")
    view.table.selectRow(bias_row)
    qtbot.waitUntil(lambda: view.detail.name == "dense_1/bias", timeout=TIMEOUT_MS)
    assert view.spectrum_curve.getData()[0] is None or view.spectrum_curve.getData()[0].size == 0
    assert "not a weight" in view.spectrum_note.text  # says a bias has no spectrum
    assert view.value_note.text == "Every finite value is 0"  # zeros: no bar one bin wide beside 0
    assert view.value_curve.getData()[0] is None or view.value_curve.getData()[0].size == 0


def test_a_flagged_tensor_shades_its_row_and_warns(qtbot, make_window, tmp_path):
    path = tmp_path / "loud.npy"
    np.save(path, 10 * sample("lecun_normal", 128, 128))  # ten times LeCun's std
    window = make_window()
    view = inspected(qtbot, window, path)
    report = view.reports[0]
    assert report.flags
    findings = view.table.item(0, len(COLUMNS) - 1)
    assert findings.text() == "; ".join(report.flags)
    assert findings.background().color() == FLAGGED_ROW
    assert view.status.property("level") == "warn"


@pytest.mark.parametrize("name, contents", [
    ("cut.npy", None),  # a truncated .npy: written whole, then cut
    ("model.pt", b"\x80\x04K\x01."),  # a pickle: refused unread
    ("empty.safetensors", b""),
])
def test_a_file_it_cannot_read_says_why_in_the_view(qtbot, make_window, tmp_path, name, contents):
    path = tmp_path / name
    if contents is None:
        np.save(path, np.ones((64, 64), np.float32))
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(contents)
    window = make_window()
    window.files.open_file(path)
    view = window.view("inspect")
    qtbot.waitUntil(lambda: view.status.property("level") == "error", timeout=TIMEOUT_MS)
    assert name in view.status.text() and "\n" not in view.status.text()
    assert view.table.rowCount() == 0


def test_a_checkpoint_dropped_on_the_window_opens_in_the_inspect_view(qtbot, make_window, mlp_file):
    window = make_window()
    settle(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(mlp_file))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    window.files.eventFilter(window, drop)
    view = window.view("inspect")
    assert window.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: view.table.rowCount() == 4, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not view.running, timeout=TIMEOUT_MS)


def test_simulate_these_weights_runs_the_checkpoints_own_layers_in_every_view(qtbot, make_window, mlp_file):
    window = make_window()
    view = inspected(qtbot, window, mlp_file)
    assert view.simulate_button.isEnabled()
    assert "64 \u2192 48 \u2192 32" in view.simulate_button.toolTip()
    view.simulate_button.click()
    assert window.tabs.currentWidget() is window.stats
    settle(qtbot, window)
    config = window.displayed_config()
    assert config.init == "checkpoint" and config.layers == 2
    assert [config.fans(layer) for layer in (1, 2)] == [(64, 48), (48, 32)]
    assert not window.controls.layers.isEnabled() and not window.controls.bias_init.isEnabled()
    assert "2 dense layers" in window.controls.init_note.text()
    assert_paints(window, reference(config))


def test_choosing_the_checkpoint_scheme_in_the_controls_asks_for_its_file(qtbot, make_window, mlp_file):
    window = make_window()
    settle(qtbot, window)
    controls = window.controls
    controls.init.setCurrentIndex(controls.init.findData("checkpoint"))
    said = controls.said()
    assert isinstance(said, ConfigError) and "file" in str(said)
    box = controls.findChild(TextBox, "init.file")
    box.setText(str(mlp_file))
    box.editingFinished.emit()
    settle(qtbot, window)
    assert window.displayed_config().init == "checkpoint" and window.displayed_config().layers == 2


def test_closing_the_window_while_a_checkpoint_is_read_ends_the_views_threads(qtbot, make_window, tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, **{f"layer{i}/kernel": sample("glorot_uniform", 128, 128, seed=i) for i in range(40)})
    window = make_window()
    window.files.open_file(path)
    view = window.view("inspect")
    qtbot.waitUntil(lambda: view.table.rowCount() > 0, timeout=TIMEOUT_MS)
    window.close()  # the autouse check fails the test if a thread or timer is left running
    assert not view.runner.thread.isRunning() and not view.detail_runner.thread.isRunning()


def test_sorting_by_a_column_orders_by_its_numbers_and_selection_follows_the_row(qtbot, make_window, tmp_path):
    path = tmp_path / "mixed.npz"
    # std 2.5 and 12.5 (both flagged) and 0.125: as text, "2.5" would sort above "12.5"
    np.savez(path, **{"layer10/kernel": 20 * sample("glorot_uniform", 64, 64),
                      "layer2/kernel": sample("glorot_uniform", 64, 64, seed=1),
                      "layer9/kernel": 100 * sample("glorot_uniform", 64, 64, seed=2)})
    window = make_window()
    view = inspected(qtbot, window, path)
    names = [view.table.item(row, 0).text() for row in range(3)]
    assert names == ["layer2/kernel", "layer9/kernel", "layer10/kernel"]  # natural order first
    view.table.sortByColumn(view.column("std"), Qt.SortOrder.DescendingOrder)
    stds = [float(view.table.item(row, view.column("std")).text()) for row in range(3)]
    assert stds == sorted(stds, reverse=True) and view.table.item(0, 0).text() == "layer9/kernel"
    view.table.sortByColumn(view.column("flags"), Qt.SortOrder.AscendingOrder)
    assert view.table.item(2, 0).text() == "layer2/kernel"  # the findings first
    view.table.selectRow(2)
    name = view.table.item(2, 0).text()
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.name == name, timeout=TIMEOUT_MS)


def test_the_theory_and_spectra_views_say_what_a_checkpoints_own_layers_change(qtbot, make_window, mlp_file):
    window = make_window()
    view = inspected(qtbot, window, mlp_file)
    view.simulate_button.click()
    settle(qtbot, window)
    spectra = window.view("spectra")
    window.tabs.setCurrentWidget(spectra)
    qtbot.waitUntil(spectra.up_to_date, timeout=TIMEOUT_MS)
    assert not spectra.compare.isEnabled() and not spectra.compare.isChecked()
    assert "measured" not in spectra.weight_numbers.text() and "mean square" in spectra.weight_numbers.text()
    theory = window.view("theory")
    window.tabs.setCurrentWidget(theory)
    qtbot.waitUntil(theory.up_to_date, timeout=TIMEOUT_MS)
    assert "A checkpoint's layers each have their own" in theory.numbers.text()
    window.set_config(window.config().replace(init="kaiming_normal", init_params={}))
    settle(qtbot, window)
    window.tabs.setCurrentWidget(spectra)
    qtbot.waitUntil(spectra.up_to_date, timeout=TIMEOUT_MS)
    assert spectra.compare.isEnabled()


def test_the_job_views_name_a_checkpoints_layers_by_their_widths_and_file(mlp_file):
    from initsim.app.views.job_view import network_text
    from initsim.engine import SimConfig

    config = SimConfig(init="checkpoint", init_params={"file": str(mlp_file), "layout": "numpy"}).validated()
    assert network_text(config).startswith("2 layers 64 \u2192 48 \u2192 32 relu, the weights of mlp.npz,")


def test_a_tensor_the_inspector_cannot_read_is_left_out_and_said(qtbot, make_window, tmp_path):
    path = tmp_path / "complex.npz"
    np.savez(path, **{"a/kernel": sample("glorot_uniform", 32, 32), "b/phase": np.ones((4, 4), np.complex64)})
    window = make_window()
    view = inspected(qtbot, window, path)
    assert [r.name for r in view.reports] == ["a/kernel"] and view.table.rowCount() == 1
    assert "1 left out: tensor b/phase: dtype complex64 is not real numbers" in view.status.text()


def test_ctrl_c_copies_the_selected_row_with_its_findings_whole(qtbot, make_window, tmp_path):
    from PySide6.QtWidgets import QApplication

    path = tmp_path / "loud.npy"
    np.save(path, 10 * sample("lecun_normal", 128, 128))
    window = make_window()
    view = inspected(qtbot, window, path)
    view.table.setFocus()
    view.table.selectRow(0)
    qtbot.keyClick(view.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    header, row = QApplication.clipboard().text().split("\n")
    assert header.split("\t")[0] == "Tensor" and len(header.split("\t")) == len(COLUMNS)
    cells = row.split("\t")
    assert cells[0] == "loud" and cells[-1] == " \u00b7 ".join(view.reports[0].flags)
