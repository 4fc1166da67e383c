"""`initsim phase --out FILE.png`: a figure, not a bare colour field. Axes with their ticks and
labels, a title, the critical line, a colour bar, and the network's point where its config puts it,
with text large enough for a projector. (Here among the app's tests: the figure is drawn with Qt.)"""

from __future__ import annotations

import json

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QSize
from PySide6.QtGui import QImage

from initsim.app.io.imaging import CONFIG_KEY
from initsim.app.views.phase_plot import figure_widget
from initsim.cli import main
from initsim.cli.theory import FIGURE_LAYOUT, FIGURE_SCALE
from initsim.engine import SimConfig, get_activation
from initsim.engine.phase_export import axes_from_zero, default_extent, extent_holding
from initsim.engine.theory import config_sigmas, phase_diagram

SIZE = (1600, 1200)
MARKER_RGB = (255, 212, 0)  # the marker's fill, #ffd400
INK = 110  # a channel no brighter than this in all three: text, ticks or the critical line


def write_phase(tmp_path, capsys, *flags: str) -> tuple[np.ndarray, QImage]:
    """The PNG `initsim phase` writes for ``flags``, as (rows, columns, RGB) and as a QImage."""
    out = tmp_path / "phase.png"
    assert main(["phase", *flags, "--out", str(out)]) == 0
    capsys.readouterr()
    image = QImage(str(out))
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), -1)[:, :3 * rgb.width()]
    return rows.reshape(rgb.height(), rgb.width(), 3).copy(), image  # a copy: the QImage's memory goes with it


def ink(rgb: np.ndarray) -> np.ndarray:
    return rgb.max(axis=2) <= INK


def ink_runs(rows: np.ndarray) -> list[int]:
    """The heights of the bands of rows with ink (``rows``: one bool per row)."""
    heights, height = [], 0
    for row in rows:
        if row:
            height += 1
        elif height:
            heights.append(height)
            height = 0
    return heights + ([height] if height else [])


def pixel_of(config: SimConfig, sigma_w2: float, sigma_b2: float) -> tuple[int, int]:
    """Where the figure of ``config``'s activation, its axes holding the config's point, draws
    (sigma_w^2, sigma_b^2): the same figure laid out here, its view box's mapping to the file's pixels."""
    act, params = get_activation(config.activation), dict(config.activation_params)
    extent = extent_holding(default_extent(act, params), config_sigmas(config))
    widget = figure_widget(phase_diagram(act, params, *axes_from_zero(extent, 200)), None, QSize(*FIGURE_LAYOUT))
    try:
        plots = widget.findChild(pg.GraphicsLayoutWidget)
        scene = plots.ci.getItem(0, 0).vb.mapViewToScene(QPointF(sigma_w2, sigma_b2))
        at = plots.mapTo(widget, plots.mapFromScene(scene))
        return round(at.x() * FIGURE_SCALE), round(at.y() * FIGURE_SCALE)
    finally:
        widget.close()


def plot_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the coloured field: the columns and rows left of the colour bar
    in which most pixels are coloured (not white, not grey)."""
    coloured = (rgb.max(axis=2).astype(int) - rgb.min(axis=2)) > 40
    field = coloured[:, : int(rgb.shape[1] * 0.85)]
    columns = np.flatnonzero(field.mean(axis=0) > 0.5)
    rows = np.flatnonzero(field.mean(axis=1) > 0.5)
    return columns[0], rows[0], columns[-1], rows[-1]


def test_the_png_is_a_figure_with_axes_labels_title_colour_bar_and_critical_line(tmp_path, capsys):
    rgb, image = write_phase(tmp_path, capsys, "--activation", "tanh")
    assert (image.width(), image.height()) == SIZE
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200  # a diverging colour scale, not a blank
    left, top, right, bottom = plot_box(rgb)
    assert right - left > 0.6 * SIZE[0] and bottom - top > 0.6 * SIZE[1]
    margins = {"left (the sigma_b^2 ticks and label)": rgb[top:bottom, : left - 20],
               "below (the sigma_w^2 ticks and label)": rgb[bottom + 20:, left:right],
               "above (the title)": rgb[: top - 10, left:right],
               "right (the colour bar's ticks and title)": rgb[top:bottom, right + 20:]}
    for where, margin in margins.items():
        assert ink(margin).sum() > 500, f"no text {where}"
    # Text for a projector: the tick labels' digits (about 0.72 of the font's size) at least 13 pixels
    # high, the title's capitals too: fonts of 18 pixels or more.
    digits = ink_runs(ink(rgb[top - 30:bottom + 30, left - 120: left - 20]).any(axis=1))
    assert len(digits) >= 4 and min(digits) >= 13, digits
    assert max(ink_runs(ink(rgb[: top - 10, left:right]).any(axis=1))) >= 13
    # The colour bar: blue at its foot, red at its head, in a column right of the diagram.
    bar = rgb[top:bottom, right + 20:]
    blue_columns = np.flatnonzero((bar[-10, :, 2].astype(int) - bar[-10, :, 0]) > 80)
    assert blue_columns.size and ((bar[10, blue_columns, 0].astype(int) - bar[10, blue_columns, 2]) > 80).all()
    # The critical line (dashed, dark) crosses the field: tanh's runs from sigma_w^2 = 1 at the
    # bottom to 1.99 at the top, in the white between blue and red.
    field = ink(rgb[top:bottom, left:right])
    assert field.any(axis=1).mean() > 0.5
    assert (rgb[bottom, left, 2] > rgb[bottom, left, 0]) and (rgb[bottom, right, 0] > rgb[bottom, right, 2])
    assert "Network" not in image.textKeys() and not (rgb == MARKER_RGB).all(axis=2).any()


# The network flags, the config they describe, and what the marker's label says.
NETWORKS = {
    "he_relu": (("--activation", "relu", "--init", "kaiming_normal"), SimConfig(), "kaiming_normal"),  # (2, 0)
    "zeros": (("--activation", "relu", "--init", "zeros"), SimConfig(init="zeros"), "zeros: zero weights, no signal"),
    "256": (("--activation", "relu", "--init", "normal", "--std", "1"),  # 256 x 1
            SimConfig(init="normal", init_params={"std": 1.0}), "normal"),
    "bias": (("--activation", "tanh", "--init", "normal", "--std", "6.25", "--bias-init", "normal", "--bias-std", "0.1"),
             SimConfig(activation="tanh", init="normal", init_params={"std": 6.25}, bias_init="normal",
                       bias_params={"std": 0.1}), "normal, bias normal"),  # (1e4, 0.01)
}


@pytest.mark.parametrize("name", NETWORKS)
def test_the_network_is_marked_where_its_config_puts_it(tmp_path, capsys, name):
    flags, config, label = NETWORKS[name]
    rgb, image = write_phase(tmp_path, capsys, *flags)
    config = config.validated()
    sigma_w2, sigma_b2 = config_sigmas(config)
    x, y = pixel_of(config, sigma_w2, sigma_b2)
    assert np.abs(rgb[y - 2: y + 3, x - 2: x + 3].astype(int) - MARKER_RGB).max() <= 8
    marked = (np.abs(rgb.astype(int) - MARKER_RGB).max(axis=2) <= 8).nonzero()
    assert np.hypot(marked[0] - y, marked[1] - x).max() <= 16  # the marker, and nothing yellow elsewhere
    assert image.text("Network").startswith(f"{label} at sigma_w^2 = {sigma_w2:.6g}")
    assert SimConfig.from_dict(json.loads(image.text(CONFIG_KEY))) == config
