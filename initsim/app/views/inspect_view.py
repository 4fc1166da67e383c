"""The Inspect view (issue 14): a checkpoint's tensors, which initialization each follows and what
is wrong with it; the selected tensor's values against its matched scheme's exact density, its
spectrum against Marchenko-Pastur; and "Simulate these weights", which runs a checkpoint whose
dense layers chain (an MLP) through the simulation, so every view shows what it does to a signal.

The file is read on the view's own threads, a tensor at a time: the table fills in as the tensors
are inspected, and a 1 GB checkpoint never holds the window."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QSizePolicy, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from initsim.engine import get_scheme
from initsim.engine.chain import ChainError, find_chain
from initsim.engine.checkpoints import natural_key, open_checkpoint
from initsim.engine.inspection import TensorReport, inspect_tensor, scheme_density
from initsim.engine.layouts import LAYOUTS, as_matrix
from initsim.engine.params import params_text
from initsim.engine.spectra import weight_spectrum
from initsim.engine.stats import Histogram, histogram

from ..actions import make_action
from ..messages import show_message
from ..runtime.controller import StreamRunner
from ..widgets import ComputedView, ProgressBar, SteadyLabel, named, number
from .phase_plot import LABEL_STYLE
from .plot_notes import PlotNote
from .plotstyle import COLORS, density_steps, step_style, style_plot, title_never_sizes

LAYOUT_TEXT = {"torch": "PyTorch (out, in)", "numpy": "numpy / Keras (in, out)"}
# The values' histogram: a subsample this large draws the same picture as the whole tensor.
MAX_SAMPLE = 1 << 20
ARROW = " \u2192 "
MAX_VALUE_BINS = 80
MIN_VALUE_BINS = 10
BEST_COLUMN_WIDTH = 230
SPECTRUM_BINS = 60
DENSITY_POINTS = 400
FLAGGED_ROW = QColor("#fbe3e3")
# (key, header, tooltip) of the table's columns.
COLUMNS = (
    ("name", "Tensor", "The tensor's name in the file"),
    ("shape", "Shape", "As stored; the layout says which axis is the fan-in"),
    ("kind", "Kind", "weight (2 axes or more), bias, norm scale, or other (e.g. BatchNorm's running statistics)"),
    ("fans", "Fan in \u2192 out", "PyTorch's fans: a conv kernel's include its receptive field"),
    ("std", "Std", "The standard deviation of the finite values"),
    ("best", "Best match", "The most specific scheme of initsim's registry whose exact distribution at "
     "these fans is consistent with the values (hover for its equivalents)"),
    ("ks", "KS", "Kolmogorov-Smirnov distance between the values and the matched scheme's distribution"),
    ("mp", "MP KS", "Kolmogorov-Smirnov distance between the matrix's spectrum and Marchenko-Pastur's law "
     "(a random matrix of independent entries: ~0.01-0.05; trained or structured weights: larger)"),
    ("flags", "Findings", "What is wrong, in plain words: a tensor drawn by a standard scheme at its own "
     "fans has none"),
)


@dataclass(frozen=True)
class Opened:
    """The first event of an inspection: the file as its header describes it."""

    path: Path
    format: str
    layout: str
    tensors: int
    nbytes: int
    chain: tuple[int, ...]  # the widths of its dense layers that chain (input first), or ()
    chain_text: str  # what "Simulate these weights" would run, or why it cannot


@dataclass(frozen=True)
class Skipped:
    """A tensor the inspector has no words for (complex numbers), left out of the table."""

    name: str
    reason: str


@dataclass(frozen=True)
class TensorDetail:
    """What the plots draw of one tensor: its values' histogram and the matched scheme's density
    over it, and (a matrix) its eigenvalues' histogram and the Marchenko-Pastur law over them."""

    name: str
    values: Histogram | None  # None: no finite value
    density: tuple[np.ndarray, np.ndarray] | None  # (x, pdf) of the best match
    spectrum: Histogram | None
    law: tuple[np.ndarray, np.ndarray] | None
    spectrum_note: str  # why there is no spectrum, or ""


def inspect_job(path: Path, layout: str | None):
    """Open the checkpoint, then inspect its tensors one at a time (each read, then dropped)."""
    def events(should_stop) -> Iterator[object]:
        with open_checkpoint(path) as checkpoint:
            shown = layout or checkpoint.default_layout
            try:
                layers = find_chain(checkpoint.tensors, shown)
                widths = (layers[0].fan_in, *(layer.fan_out for layer in layers))
                text = (f"Run its {len(layers)} dense layers that chain, {ARROW.join(map(str, widths))} "
                        f"({layers[0].weight} to {layers[-1].weight}), through the simulation with exactly "
                        "these weights and biases")
            except ChainError as exc:
                widths, text = (), f"Nothing to simulate: {exc}"
            yield Opened(checkpoint.path, checkpoint.format, shown, len(checkpoint.tensors),
                         sum(info.nbytes for info in checkpoint.tensors), widths, text)
            for info in checkpoint.tensors:
                if should_stop():
                    return
                try:
                    yield inspect_tensor(info.name, checkpoint.read(info.name), shown)
                except ValueError as exc:  # as the command does: one tensor, not the whole file
                    yield Skipped(info.name, str(exc))
    return events


def detail_job(path: Path, layout: str, report: TensorReport):
    def events(should_stop) -> Iterator[object]:
        with open_checkpoint(path) as checkpoint:
            yield tensor_detail(report, checkpoint.read(report.name), layout)
    return events


def value_sample(array: np.ndarray) -> np.ndarray:
    """The finite values of ``array``, or MAX_SAMPLE of them at evenly spaced places (a fixed,
    reproducible picture; a tensor's order carries no pattern a histogram could show)."""
    flat = np.asarray(array).reshape(-1)
    if flat.size > MAX_SAMPLE:
        flat = flat[np.linspace(0, flat.size - 1, MAX_SAMPLE).astype(np.int64)]
    flat = flat.astype(np.float64)
    return flat[np.isfinite(flat)]


def value_bins(count: int) -> int:
    """Rice's rule, 2 n^(1/3) bins: a bias of 256 values in 12, a matrix in 80."""
    return int(np.clip(2 * count ** (1 / 3), MIN_VALUE_BINS, MAX_VALUE_BINS))


def tensor_detail(report: TensorReport, array: np.ndarray, layout: str) -> TensorDetail:
    sample = value_sample(array)
    values = density = None
    if sample.size:
        values = histogram(sample, float(sample.min()), float(sample.max()), value_bins(sample.size))
        if report.best is not None:
            x = np.linspace(values.edges[0], values.edges[-1], DENSITY_POINTS)
            pdf = scheme_density(report.best, report.fan_in, report.fan_out, x)
            density = (x, pdf) if np.any(pdf) else None  # a point mass (zeros, a constant) has none
    spectrum = law = None
    if report.mp_ks is None:
        note = ("A matrix's spectrum: this tensor is not a weight" if report.kind != "weight" else
                "No spectrum: the matrix is too large to decompose here, or not finite")
    else:
        note = ""
        found = weight_spectrum(as_matrix(array, layout))
        spectrum = found.histogram(SPECTRUM_BINS)
        x = np.linspace(spectrum.edges[0], spectrum.edges[-1], DENSITY_POINTS)
        law = (x, found.density(x))
    return TensorDetail(report.name, values, density, spectrum, law, note)


class SortedItem(QTableWidgetItem):
    """A cell that sorts by its value (a number, a name in natural order), not by its text."""

    def __init__(self, text: str, key: tuple) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.key < getattr(other, "key", ())


def sort_keys(report: TensorReport) -> dict[str, tuple]:
    """Each column's sort key: numbers as numbers (none last), names in natural order, the most
    findings first."""
    def value(found: float | None) -> tuple:
        return (1, 0.0) if found is None or math.isnan(found) else (0, found)
    return {"name": (natural_key(report.name),), "shape": (math.prod(report.shape),), "kind": (report.kind,),
            "fans": value(report.fan_in), "std": value(report.std), "best": (match_text(report),),
            "ks": value(report.best.ks if report.best else None), "mp": value(report.mp_ks),
            "flags": (-len(report.flags),)}


def match_text(report: TensorReport) -> str:
    """The best match as a call with the parameters that differ from the scheme's defaults."""
    best = report.best
    if best is None:
        return "\u2014"
    defaults = get_scheme(best.scheme).params()
    changed = {key: value for key, value in best.params.items() if defaults.get(key) != value}
    return f"{best.scheme}({params_text(changed)})" if changed else best.scheme


class InspectView(ComputedView):
    """The tensor table above, the selected tensor's values and spectrum below."""

    simulate_requested = Signal(str, str)  # "Simulate these weights": the file and its layout

    def __init__(self) -> None:
        super().__init__("inspect")
        self.path: Path | None = None
        self.opened: Opened | None = None
        self.reports: list[TensorReport] = []
        self.skipped: list[Skipped] = []
        self.detail: TensorDetail | None = None
        self.detail_runner = StreamRunner("inspect detail", parent=self)
        self.detail_runner.events.connect(self._on_detail)
        self.detail_runner.failed.connect(self._on_detail_failed)
        self.runner.done.connect(self._on_done)

        self.open_button = named(QPushButton("Open checkpoint\u2026"), "open_checkpoint",
                                 "Open a .safetensors, .npz, .npy or Keras .weights.h5 file (or drop one on "
                                 "the window); PyTorch pickles are refused: loading one runs its code")
        self.file_label = named(QLabel("No checkpoint open"), "checkpoint_file", "The file shown")
        # However long the name, the bar never widens the window.
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.layout_box = named(QComboBox(), "checkpoint_layout", "How a dense layer's matrix is stored: "
                                "PyTorch's Linear keeps (out, in), numpy and Keras (in, out). It sets the fans, "
                                "so the schemes matched")
        for key in LAYOUTS:
            self.layout_box.addItem(LAYOUT_TEXT[key], key)
        self.layout_box.setEnabled(False)
        self.layout_box.activated.connect(self._reinspect)
        self.simulate_button = named(QPushButton("Simulate these weights"), "simulate_checkpoint",
                                     "Run the checkpoint's dense layers, whose shapes chain, through the "
                                     "simulation with exactly these weights: every view then shows what "
                                     "they do to a signal")
        self.simulate_button.setEnabled(False)
        self.simulate_button.clicked.connect(self._simulate)
        self.progress = ProgressBar()
        self.progress.setObjectName("inspect_progress")
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = named(QLabel(), "inspect_status", "What the inspection found, or why it could not read the file")
        self.status.setWordWrap(True)
        self.status.setProperty("role", "status")
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        # The selected tensor's findings in full, over its plots (the table's cell cuts them).
        self.findings = named(SteadyLabel(), "tensor_findings", "What is wrong with the selected tensor")
        self.findings.setProperty("role", "status")
        self.findings.hide()
        self.table = named(QTableWidget(0, len(COLUMNS)), "tensor_table", "One row a tensor; select one "
                           "to see its values and spectrum below")
        self.table.setHorizontalHeaderLabels([header for _, header, _ in COLUMNS])
        for column, (_, _, tip) in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column, (key, _, _) in enumerate(COLUMNS):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch if key == "flags" else
                                        QHeaderView.ResizeMode.ResizeToContents)
        # A match's parameters can be long; the findings take the rest of the row.
        header.setSectionResizeMode(self.column("best"), QHeaderView.ResizeMode.Interactive)
        header.resizeSection(self.column("best"), BEST_COLUMN_WIDTH)
        self.table.itemSelectionChanged.connect(self._on_selected)
        # Ctrl+C copies the selected row as the table shows it (tab-separated, under its header), the
        # findings whole: for a bug report or a notebook.
        copy = make_action(self.table, "Copy", [QKeySequence.StandardKey.Copy], self.copy_selected,
                           "Copy the selected tensor's row")
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.table.addAction(copy)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        # A click on a header sorts by it (the findings: the flagged tensors first); by name at first.
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

        self.plots = pg.GraphicsLayoutWidget()
        self.value_plot = self.plots.addPlot(row=0, col=0)
        self.spectrum_plot = self.plots.addPlot(row=0, col=1)
        for plot in (self.value_plot, self.spectrum_plot):
            style_plot(plot)
            title_never_sizes(plot)
            plot.setMouseEnabled(False, False)
            plot.showGrid(x=True, y=True, alpha=0.12)
            plot.setLabel("left", "density", **LABEL_STYLE)
        self.value_plot.setLabel("bottom", "value", **LABEL_STYLE)
        self.spectrum_plot.setLabel("bottom", "eigenvalue of W\u1d40W / fan-in", **LABEL_STYLE)
        law_pen = pg.mkPen("#222222", width=2, style=Qt.PenStyle.DashLine)
        self.value_curve = self.value_plot.plot([], [], **step_style(COLORS["pre"]))
        self.density_curve = self.value_plot.plot([], [], pen=law_pen, antialias=True)
        self.spectrum_curve = self.spectrum_plot.plot([], [], **step_style(COLORS["post"]))
        self.law_curve = self.spectrum_plot.plot([], [], pen=law_pen, antialias=True)
        spectrum_legend = self.spectrum_plot.addLegend(offset=(-8, 8), labelTextSize="9pt")
        spectrum_legend.addItem(pg.PlotDataItem(pen=pg.mkPen(COLORS["post"], width=4)), "eigenvalues")
        spectrum_legend.addItem(pg.PlotDataItem(pen=law_pen), "Marchenko-Pastur")
        self.value_note = PlotNote(self.value_plot)
        self.spectrum_note = PlotNote(self.spectrum_plot)

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        bar.addWidget(self.open_button)
        bar.addWidget(self.file_label, 1)
        bar.addWidget(QLabel("Layout"))
        bar.addWidget(self.layout_box)
        bar.addWidget(self.simulate_button)
        bar.addWidget(self.progress)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.table)
        selected = QWidget()
        selected_layout = QVBoxLayout(selected)
        selected_layout.setContentsMargins(0, 4, 0, 0)
        selected_layout.addWidget(self.findings)
        selected_layout.addWidget(self.plots, 1)
        splitter.addWidget(selected)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        status_row = QHBoxLayout()
        status_row.setContentsMargins(8, 0, 8, 0)
        status_row.addWidget(self.status)
        layout.addLayout(status_row)
        layout.addWidget(splitter, 1)
        self._show_empty()

    @staticmethod
    def column(key: str) -> int:
        return [k for k, _, _ in COLUMNS].index(key)

    # --- the window's calls -------------------------------------------------------------------

    def open_checkpoint(self, path: str | Path, layout: str | None = None) -> None:
        """Inspect ``path`` (its own default layout unless ``layout``): the table fills in as the
        tensors are read; a file that cannot be read says why in the status line."""
        self.path = Path(path)
        self.opened = None
        self.reports = []
        self.skipped = []
        self.table.setRowCount(0)
        self._clear_detail()
        self.simulate_button.setEnabled(False)
        self.file_label.setText(self.path.name)
        self.file_label.setToolTip(str(self.path))
        show_message(self.status, "info", f"Reading {self.path.name}\u2026")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.runner.start(inspect_job(self.path, layout))

    @property
    def running(self) -> bool:
        return self.runner.busy or self.detail_runner.busy

    def shutdown(self) -> None:
        self.detail_runner.shutdown()
        super().shutdown()

    # --- the table -------------------------------------------------------------------------

    def fold(self, events: list) -> None:
        for event in events:
            if isinstance(event, Opened):
                self._opened(event)
            elif isinstance(event, Skipped):
                self.skipped.append(event)
            else:
                self._add_row(event)
        if self.opened is not None:
            self.progress.setValue(len(self.reports))

    def _opened(self, opened: Opened) -> None:
        self.opened = opened
        self.layout_box.setEnabled(True)
        self.layout_box.setCurrentIndex(self.layout_box.findData(opened.layout))
        self.file_label.setText(f"{opened.path.name} \u00b7 {opened.tensors} tensors \u00b7 "
                                f"{size_text(opened.nbytes)}")
        self.file_label.setToolTip(f"{opened.path}\n{opened.format}, {opened.tensors} tensors, "
                                   f"{opened.nbytes:,} bytes of data")
        self.progress.setRange(0, max(opened.tensors, 1))
        self.simulate_button.setEnabled(bool(opened.chain))
        self.simulate_button.setToolTip(opened.chain_text)

    def _add_row(self, report: TensorReport) -> None:
        self.reports.append(report)
        row = self.table.rowCount()
        self.table.insertRow(row)
        fans = f"{report.fan_in} \u2192 {report.fan_out}" if report.fan_in else ""
        cells = {"name": report.name, "shape": " \u00d7 ".join(map(str, report.shape)) or "scalar",
                 "kind": report.kind, "fans": fans, "std": number(report.std), "best": match_text(report),
                 "ks": number(report.best.ks) if report.best else "", "mp": "" if report.mp_ks is None
                 else number(report.mp_ks), "flags": "; ".join(report.flags)}
        keys = sort_keys(report)
        sorting = self.table.isSortingEnabled()
        self.table.setSortingEnabled(False)  # or the row would move between its cells
        for column, (key, _, _) in enumerate(COLUMNS):
            item = SortedItem(cells[key], keys[key])
            item.setData(Qt.ItemDataRole.UserRole, len(self.reports) - 1)  # the report it shows
            if key == "best" and report.equivalent:
                item.setToolTip("The same distribution at these fans: " + ", ".join(report.equivalent))
            elif key == "flags" and report.flags:
                item.setToolTip("\n".join(report.flags))
            if key in ("std", "ks", "mp"):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if report.flags:
                item.setBackground(QBrush(FLAGGED_ROW))
            self.table.setItem(row, column, item)
        self.table.setSortingEnabled(sorting)
        if row == 0:
            self.table.selectRow(0)

    @Slot(int, float)
    def _on_done(self, run_id: int, seconds: float) -> None:
        self.progress.hide()
        flagged = sum(1 for report in self.reports if report.flags)
        weights = sum(1 for report in self.reports if report.kind == "weight")
        matched = sum(1 for report in self.reports if report.best is not None)
        left_out = (f" ({len(self.skipped)} left out: {self.skipped[0].reason}"
                    + (" and more" if len(self.skipped) > 1 else "") + ")") if self.skipped else ""
        summary = (f"{len(self.reports)} tensors{left_out}, {weights} weights, {matched} matched to a scheme; "
                   f"read in {seconds:.1f} s. ")
        if flagged:
            first = next(report.name for report in self.reports if report.flags)
            show_message(self.status, "warn", summary + f"\u26a0 {flagged} with findings (shaded rows; the "
                         f"first is {first}).")
        else:
            show_message(self.status, "ok", summary + "\u2713 No findings.")

    def show_failure(self, message: str) -> None:
        self.progress.hide()
        show_message(self.status, "error", f"Cannot inspect {self.path.name if self.path else 'the file'}: "
                                           f"{message}")
        if not self.reports:
            self._show_empty(keep_status=True)

    def _reinspect(self) -> None:
        if self.path is not None:
            self.open_checkpoint(self.path, self.layout_box.currentData())

    def copy_selected(self) -> None:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        if not rows:
            return
        lines = ["\t".join(header for _, header, _ in COLUMNS)]
        for row in rows:
            report = self.reports[self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)]
            cells = [self.table.item(row, column).text() for column in range(len(COLUMNS) - 1)]
            lines.append("\t".join(cells + [" \u00b7 ".join(report.flags)]))
        QApplication.clipboard().setText("\n".join(lines))

    # --- the selected tensor ---------------------------------------------------------------

    def _on_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.opened is None:
            return
        report = self.reports[self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)]
        self.detail_runner.start(detail_job(self.opened.path, self.opened.layout, report))

    @Slot(int, object)
    def _on_detail(self, run_id: int, events: list) -> None:
        for detail in events:
            self.detail = detail
            self._draw_detail(detail)

    @Slot(int, str)
    def _on_detail_failed(self, run_id: int, message: str) -> None:
        self._clear_detail()
        self.value_note.say(f"Cannot read this tensor: {message}")

    def _draw_detail(self, detail: TensorDetail) -> None:
        report = next(r for r in self.reports if r.name == detail.name)
        self.value_plot.setTitle(f"{detail.name}: values", size="10pt")
        if report.flags:
            show_message(self.findings, "warn", f"\u26a0 {detail.name}: " + " \u00b7 ".join(report.flags))
        self.findings.setVisible(bool(report.flags))
        finite = report.std == report.std and detail.values is not None  # nan: no finite value
        if not finite or report.std == 0:
            # A constant has no spread to draw: a bar one bin wide beside its value would mislead.
            self.value_curve.setData([], [])
            self.density_curve.setData([], [])
            self.value_note.say(f"Every finite value is {number(report.mean)}" if finite
                                else "No finite value to draw")
        else:
            edges, density = detail.values.edges, density_steps(detail.values.counts, detail.values.edges)
            self.value_curve.setData(edges, density, **step_style(COLORS["pre"]))
            if detail.density is not None:
                self.density_curve.setData(*detail.density)
                # The title is the legend: a legend box would hide the bell it describes.
                self.value_plot.setTitle(f"{detail.name}: values, and {match_text(report)}'s density "
                                         "(dashed)", size="10pt")
            else:
                self.density_curve.setData([], [])
            self.value_note.say("")
            self.value_plot.enableAutoRange()
        self.spectrum_plot.setTitle(f"{detail.name}: spectrum", size="10pt")
        if detail.spectrum is None:
            self.spectrum_curve.setData([], [])
            self.law_curve.setData([], [])
            self.spectrum_note.say(detail.spectrum_note)
        else:
            edges, density = detail.spectrum.edges, density_steps(detail.spectrum.counts, detail.spectrum.edges)
            self.spectrum_curve.setData(edges, density, **step_style(COLORS["post"]))
            self.law_curve.setData(*detail.law)
            self.spectrum_note.say("")
            # The law's 1/sqrt(x) pole at 0 (a square matrix) must not flatten the histogram.
            top = float(np.max(density)) if density.size else 1.0
            self.spectrum_plot.setYRange(0, 1.15 * top if math.isfinite(top) and top > 0 else 1.0)
            self.spectrum_plot.setXRange(edges[0], edges[-1], padding=0.02)

    def _clear_detail(self) -> None:
        self.detail = None
        for curve in (self.value_curve, self.density_curve, self.spectrum_curve, self.law_curve):
            curve.setData([], [])
        self.value_plot.setTitle("")
        self.spectrum_plot.setTitle("")
        self.value_note.say("")
        self.spectrum_note.say("")
        self.findings.hide()

    def _show_empty(self, keep_status: bool = False) -> None:
        self._clear_detail()
        self.value_note.say("Open a checkpoint (File > Open checkpoint, or drop a .safetensors, .npz, .npy "
                            "or .weights.h5 file on the window) to see which initialization each tensor "
                            "follows and what is wrong with it")
        if not keep_status:
            show_message(self.status, "info", "No checkpoint open.")

    # --- simulate --------------------------------------------------------------------------

    def _simulate(self) -> None:
        if self.opened is not None and self.opened.chain:
            self.simulate_requested.emit(str(self.opened.path), self.opened.layout)


def size_text(nbytes: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"
