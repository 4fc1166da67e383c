"""The controls dock: every field of a SimConfig as a widget, grouped, with tooltips.

The scheme, activation and bias combos and their parameter editors are built from the engine's
registries and its PARAMS table, so a scheme added to the engine shows up here unchanged.
"""

from __future__ import annotations

import html
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QVBoxLayout, QWidget)

from initsim.engine import (ACTIVATIONS, BIAS_INITS, RANGES, SCHEMES, ConfigError, SimConfig,
                            get_activation, get_scheme)
from initsim.engine.config import BRANCH_SCALES, RESIDUALS
from initsim.engine.params import PARAMS, Param, params_text
from initsim.engine.presets import Preset, presets
from initsim.engine.schemes import READ_SCHEMES
from initsim.engine.stats import HIST_SAMPLE

from .widgets import NumberBox, RefusalNote, note_label

# "New seed" draws seeds short enough to read and type; the seed box takes any the engine does.
NEW_SEED_MAX = 2**31 - 1
ARROW = " \u2192 "
CUSTOM = "custom"

NORM_LABELS = {"none": "none", "batch": "BatchNorm (each unit over the batch)",
               "layer": "LayerNorm (each sample over its units)", "rms": "RMSNorm (each sample over its units)"}
RESIDUAL_LABELS = {"none": "none (a plain MLP)", "pre": "pre-norm blocks: x + \u03b1 F(norm(x))",
                   "post": "post-norm blocks: norm(x + \u03b1 F(x))"}
assert tuple(RESIDUAL_LABELS) == RESIDUALS
# The branch scale's menu: the names the engine takes, and the numbers a lecture starts from; any
# other number can be typed.
BRANCH_SCALE_CHOICES = {
    "1": "alpha = 1: each block adds its branch in full",
    **{name: f"alpha = {name}, L the number of blocks"
       + (" (GPT-2's: two branches a layer)" if "2L" in name else " (the stream's variance stays bounded)")
       for name in BRANCH_SCALES},
    "0": "alpha = 0: ReZero / SkipInit, every block starts as the identity (alpha is learned in training)",
}
INPUT_LABELS = {"normal": "normal N(0, 1)", "uniform": "uniform U(-\u221a3, \u221a3)"}
DTYPE_LABELS = {"float32": "float32", "float64": "float64"}
SUBNORMAL_LABELS = {"flush": "flush to zero", "keep": "keep (IEEE)"}


class TextBox(QLineEdit):
    """A free-text parameter (a checkpoint's path), taken when its editing ends."""

    valueChanged = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.editingFinished.connect(self._finished)
        self._taken = ""

    def value(self) -> str:
        return self.text().strip()

    def setValue(self, value: str) -> None:  # noqa: N802 - as the number boxes'
        self._taken = str(value)
        self.setText(self._taken)
        self.setCursorPosition(0)  # a long path shows its start

    def _finished(self) -> None:
        if self.value() != self._taken:
            self._taken = self.value()
            self.valueChanged.emit()


class ParamEditor(QWidget):
    """One row per parameter of a scheme, activation or bias init, built from PARAMS, and a note
    under them when a number typed is refused."""

    changed = Signal()

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix  # object names are "<prefix>.<param>", e.g. "init.gain"
        self._editors: dict[str, QComboBox | NumberBox | TextBox] = {}
        self._form = QFormLayout()
        self.refusal = RefusalNote(f"{prefix}.refused")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._form)
        layout.addWidget(self.refusal)
        self.setVisible(False)

    def set_params(self, values: Mapping[str, Any]) -> None:
        """Show one editor per entry of ``values`` (a resolved parameter dict), set to its value."""
        if list(values) != list(self._editors):
            self._rebuild(list(values))
        self.refusal.hide()
        for name, value in values.items():
            editor = self._editors[name]
            editor.blockSignals(True)
            if isinstance(editor, QComboBox):
                editor.setCurrentIndex(editor.findData(value))
            else:
                editor.setValue(value)
            editor.blockSignals(False)

    def values(self) -> dict[str, Any]:
        return {name: editor.currentData() if isinstance(editor, QComboBox) else editor.value()
                for name, editor in self._editors.items()}

    def _rebuild(self, names: list[str]) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self._editors = {}
        for name in names:
            param = PARAMS[name]
            if param.is_choice:
                editor = QComboBox()
                for choice in param.choices:
                    editor.addItem(choice, choice)
                editor.currentIndexChanged.connect(self.changed)
            elif param.text:
                editor = TextBox()
                editor.setPlaceholderText("a file (or File > Open checkpoint, then Simulate)")
                editor.valueChanged.connect(self.changed)
            else:
                editor = NumberBox(param, owner=self._prefix)
                editor.valueChanged.connect(self.changed)
                self.refusal.watch(editor)
            editor.setObjectName(f"{self._prefix}.{name}")
            editor.setToolTip(f"{name}: {param.help} ({param.allowed()})")
            label = QLabel(name.replace("_", " "))
            label.setToolTip(editor.toolTip())
            self._form.addRow(label, editor)
            self._editors[name] = editor
        self.setVisible(bool(names))


def _combo(name: str, tooltip: str, items: Mapping[str, str], shown_chars: int = 16) -> QComboBox:
    """A combo box named ``name`` whose items show the values of ``items`` and hold its keys;
    at least ``shown_chars`` characters wide, longer items show whole in the popup list."""
    combo = QComboBox()
    combo.setObjectName(name)
    combo.setToolTip(tooltip)
    # Long labels would set the dock's width; the popup list still shows them whole.
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(shown_chars)
    for key, label in items.items():
        combo.addItem(label, key)
    return combo


def _integer_box(name: str, tooltip: str, note: RefusalNote) -> NumberBox:
    """A box for the config's integer field ``name``, in the engine's range, typed values taken
    keystroke by keystroke, refusals said in ``note``."""
    low, high = RANGES[name]
    box = NumberBox(Param(name, tooltip, low=low, high=high), integer=True)
    box.setObjectName(name)
    box.setToolTip(tooltip)
    box.setAccelerated(True)
    note.watch(box)
    return box


def _set_data(combo: QComboBox, key: str) -> None:
    combo.setCurrentIndex(combo.findData(key))


class ControlsPanel(QWidget):
    """The form. ``changed`` is emitted once per user edit (and once per ``set_config``) with what
    the controls now say (`said`): a validated config, or the ConfigError that says why none."""

    changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._edits_in_progress = 0  # nested `_one_change` blocks: changed waits for the outermost
        # The config of the last set_config, for the fields without a control of their own.
        self._last_set = SimConfig()
        # The config as last read from the widgets, and what the controls said of it.
        self._last_read: tuple[SimConfig | None, SimConfig | ConfigError | None] = (None, None)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(8)
        for group in (self._preset_group(), self._network_group(), self._residual_group(),
                      self._activation_group(), self._init_group(), self._bias_group(), self._seed_group()):
            layout.addWidget(group)
        layout.addStretch(1)

    # --- building -------------------------------------------------------------------------

    def _preset_group(self) -> QGroupBox:
        self.preset = _combo("preset", "A classic case of good or bad initialization; choosing "
                             "one sets every control below", {})
        self.preset.addItem("Custom settings", CUSTOM)
        self.preset.model().item(0).setEnabled(False)  # shown, never chosen: it means "none matches"
        for preset in presets().values():
            self.preset.addItem(preset.title, preset.name)
            self.preset.setItemData(self.preset.count() - 1, preset.explanation,
                                    Qt.ItemDataRole.ToolTipRole)
        self.preset.activated.connect(self._on_preset)
        self.preset_note = note_label(name="preset_note")
        return self._group("Preset", [self.preset, self.preset_note])

    def _network_group(self) -> QGroupBox:
        self.network_refusal = RefusalNote("network.refused")
        self.layers = _integer_box("layers", "Number of dense layers (depth)", self.network_refusal)
        self.width = _integer_box("width", "Units per layer; also the input's width", self.network_refusal)
        self.batch = _integer_box("batch", "Inputs pushed through the network at once; the statistics "
                                  f"are over the whole batch, the histograms over up to {HIST_SAMPLE:,} "
                                  "of its values", self.network_refusal)
        self.input_dist = _combo("input_dist", "Distribution of the input batch (unit variance "
                                 "either way)", INPUT_LABELS)
        self.norm = _combo("norm", "Normalization of each layer's pre-activations before the "
                           "activation, without the learned scale and shift", NORM_LABELS)
        for spin in (self.layers, self.width, self.batch):
            spin.valueChanged.connect(self._on_edit)
        for combo in (self.input_dist, self.norm):
            combo.currentIndexChanged.connect(self._on_edit)
        group = self._form_group("Network", [("Layers", self.layers), ("Width", self.width),
                                             ("Batch", self.batch), ("Input", self.input_dist),
                                             ("Normalization", self.norm)])
        self.network_form = group.layout()
        group.layout().addRow(self.network_refusal)
        return group

    def _residual_group(self) -> QGroupBox:
        self.residual = _combo("residual", "Residual blocks instead of plain layers: each of the layers "
                               "becomes x + \u03b1 F(x), F(u) = \u03c6(u W1 + b1) W2 + b2, the MLP half of a "
                               "transformer layer; the normalization above is the stream's", RESIDUAL_LABELS)
        self.branch_scale = QComboBox()
        self.branch_scale.setObjectName("branch_scale")
        self.branch_scale.setEditable(True)  # any number can be typed
        self.branch_scale.setToolTip("The branch scale \u03b1: a number, or 1/sqrt(L), 1/sqrt(2L) with L "
                                     "the number of blocks")
        for value, tip in BRANCH_SCALE_CHOICES.items():
            self.branch_scale.addItem(value, value)
            self.branch_scale.setItemData(self.branch_scale.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.block_refusal = RefusalNote("block.refused")
        self.expansion = _integer_box("expansion", "The branch's hidden width, in widths: W1 is (W, E W), "
                                      "W2 (E W, W); 4 in transformers", self.block_refusal)
        self.fixup = QCheckBox("Fixup: W2 = 0, W1 \u00d7 L^-1/2 (no norm)")
        self.fixup.setObjectName("fixup")
        self.fixup.setToolTip("Fixup (Zhang et al. 2019): each branch's last matrix starts at zero and its "
                              "first is scaled by L^(-1/2), so that the network starts as the identity "
                              "without a normalization")
        self.residual.currentIndexChanged.connect(self._on_edit)
        self.branch_scale.currentTextChanged.connect(self._on_edit)
        self.expansion.valueChanged.connect(self._on_edit)
        self.fixup.toggled.connect(self._on_edit)
        self.block_options = QWidget()
        form = QFormLayout(self.block_options)
        form.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Branch scale \u03b1", self.branch_scale), ("Expansion", self.expansion)):
            caption = QLabel(label)
            caption.setToolTip(widget.toolTip())
            form.addRow(caption, widget)
        form.addRow(self.fixup)
        form.addRow(self.block_refusal)
        self.block_options.setVisible(False)
        return self._group("Residual", [self.residual, self.block_options])

    def _activation_group(self) -> QGroupBox:
        self.activation = _combo("activation", "The nonlinearity after every layer",
                                 {name: name for name in ACTIVATIONS})
        for i, act in enumerate(ACTIVATIONS.values()):
            self.activation.setItemData(i, f"{act.formula}\n{act.why}", Qt.ItemDataRole.ToolTipRole)
        self.activation_params = ParamEditor("activation")
        self.activation.currentIndexChanged.connect(self._on_activation)
        self.activation_params.changed.connect(self._on_edit)
        self.recommendation = note_label(name="recommendation")
        self.apply_recommended = QPushButton("Use it")
        self.apply_recommended.setObjectName("apply_recommended")
        self.apply_recommended.setToolTip("Set the initialization to the scheme usually paired "
                                          "with this activation")
        self.apply_recommended.clicked.connect(self.use_recommended)
        hint = QHBoxLayout()
        hint.setContentsMargins(0, 0, 0, 0)
        hint.addWidget(self.recommendation, 1)
        hint.addWidget(self.apply_recommended, 0, Qt.AlignmentFlag.AlignTop)
        hint_row = QWidget()
        hint_row.setLayout(hint)
        return self._group("Activation", [self.activation, self.activation_params, hint_row])

    def _init_group(self) -> QGroupBox:
        self.init = _combo("init", "The weight-initialization scheme: PyTorch names (xavier_*, "
                           "kaiming_*) keep PyTorch's semantics, Keras names (glorot_*, he_*, "
                           "lecun_*) Keras's truncated normals",
                           {scheme.name: scheme.label for scheme in (SCHEMES | READ_SCHEMES).values()},
                           shown_chars=40)
        for i, scheme in enumerate((SCHEMES | READ_SCHEMES).values()):
            self.init.setItemData(i, f"{scheme.formula}\n{scheme.description}",
                                  Qt.ItemDataRole.ToolTipRole)
        self.init_params = ParamEditor("init")
        self.init.currentIndexChanged.connect(self._on_init)
        self.init_params.changed.connect(self._on_edit)
        self.init_note = note_label(name="init_note")
        return self._group("Initialization", [self.init, self.init_params, self.init_note])

    def _bias_group(self) -> QGroupBox:
        self.bias_init = _combo("bias_init", "How the biases start",
                                {bias.name: f"{bias.name}: {bias.formula}" for bias in BIAS_INITS.values()})
        for i, bias in enumerate(BIAS_INITS.values()):
            self.bias_init.setItemData(i, f"PyTorch: {bias.pytorch}", Qt.ItemDataRole.ToolTipRole)
        self.bias_params = ParamEditor("bias")
        self.bias_init.currentIndexChanged.connect(self._on_bias)
        self.bias_params.changed.connect(self._on_edit)
        return self._group("Bias", [self.bias_init, self.bias_params])

    def _seed_group(self) -> QGroupBox:
        self.seed_refusal = RefusalNote("seed.refused")
        self.seed = _integer_box("seed", "Seed of every random draw (input, weights, biases, output "
                                 "gradient): the same seed gives the same run", self.seed_refusal)
        self.seed.valueChanged.connect(self._on_edit)
        self.new_seed_button = QPushButton("New seed")
        self.new_seed_button.setObjectName("new_seed")
        self.new_seed_button.setToolTip("Draw a random seed (Ctrl+N)")
        self.new_seed_button.clicked.connect(self.new_seed)
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.new_seed_button)
        seed_widget = QWidget()
        seed_widget.setLayout(seed_row)
        self.dtype = _combo("dtype", "Floating-point type of the simulation: float32 as in "
                            "training, float64 to rule out rounding", DTYPE_LABELS)
        self.dtype.currentIndexChanged.connect(self._on_edit)
        self.subnormals = _combo(
            "subnormals", "Values below the dtype's smallest normal (1.2e-38 in float32, 2.2e-308 in "
            "float64), where a vanishing signal ends up: flush to zero keeps the run as fast as a healthy "
            "one; keep (IEEE) keeps them exactly, at a fraction of the speed on many CPUs. Either way the "
            "warnings say from which layer they appear", SUBNORMAL_LABELS)
        self.subnormals.currentIndexChanged.connect(self._on_edit)
        group = self._form_group("Seed and precision", [("Seed", seed_widget), ("dtype", self.dtype),
                                                        ("Subnormals", self.subnormals)])
        group.layout().addRow(self.seed_refusal)
        return group

    @staticmethod
    def _group(title: str, widgets: list[QWidget]) -> QGroupBox:
        group = QGroupBox(title)
        layout = QVBoxLayout(group)
        for widget in widgets:
            layout.addWidget(widget)
        return group

    @staticmethod
    def _form_group(title: str, rows: list[tuple[str, QWidget]]) -> QGroupBox:
        group = QGroupBox(title)
        form = QFormLayout(group)
        for label, widget in rows:
            caption = QLabel(label)
            caption.setToolTip(widget.toolTip())
            form.addRow(caption, widget)
        return group

    # --- reading and writing the config ---------------------------------------------------

    def config(self) -> SimConfig:
        """What the controls say: validated when valid, else as it is (``validated()`` says why)."""
        said = self.said()
        return said if isinstance(said, SimConfig) else self._last_read[0]

    def said(self) -> SimConfig | ConfigError:
        """What the controls say: a validated config, or the ConfigError that says why none.
        Validated once per state of the controls, however many consumers ask."""
        config = self._last_set.replace(
            layers=self.layers.value(), width=self.width.value(), batch=self.batch.value(),
            input_dist=self.input_dist.currentData(), norm=self.norm.currentData(),
            activation=self.activation.currentData(), activation_params=self.activation_params.values(),
            init=self.init.currentData(), init_params=self.init_params.values(),
            bias_init=self.bias_init.currentData(), bias_params=self.bias_params.values(),
            seed=self.seed.value(), dtype=self.dtype.currentData(),
            subnormals=self.subnormals.currentData(), residual=self.residual.currentData(),
            branch_scale=self.branch_scale.currentText().strip(), expansion=self.expansion.value(),
            fixup=self.fixup.isChecked())
        if config != self._last_read[0]:
            try:
                self._last_read = config, config.validated()
            except ConfigError as exc:
                self._last_read = config, exc
        return self._last_read[1]

    def set_config(self, config: SimConfig) -> None:
        """Set every control from ``config``; raises ConfigError if it is invalid."""
        config = config.validated()
        with self._one_change():
            self._last_set = config
            self.network_refusal.hide()
            self.seed_refusal.hide()
            self.block_refusal.hide()
            self.layers.setValue(config.layers)
            self.width.setValue(config.width)
            self.batch.setValue(config.batch)
            _set_data(self.input_dist, config.input_dist)
            _set_data(self.norm, config.norm)
            _set_data(self.activation, config.activation)
            self.activation_params.set_params(config.activation_params)
            _set_data(self.init, config.init)
            self.init_params.set_params(config.init_params)
            _set_data(self.bias_init, config.bias_init)
            self.bias_params.set_params(config.bias_params)
            self.seed.setValue(config.seed)
            _set_data(self.dtype, config.dtype)
            _set_data(self.subnormals, config.subnormals)
            _set_data(self.residual, config.residual)
            self.branch_scale.setCurrentText(config.branch_scale)
            self.expansion.setValue(config.expansion)
            self.fixup.setChecked(config.fixup)

    def new_seed(self) -> None:
        self.seed.setValue(random.randint(0, NEW_SEED_MAX))

    def use_recommended(self) -> None:
        """Switch to the scheme usually paired with the current activation, with its parameters."""
        act = get_activation(self.activation.currentData())
        scheme = get_scheme(act.recommended)
        params = scheme.params(act.recommended_params(self.activation_params.values()))
        with self._one_change():
            _set_data(self.init, scheme.name)
            self.init_params.set_params(params)

    @contextmanager
    def _one_change(self) -> Iterator[None]:
        """Edits inside count as one change: the handlers refresh the notes, and ``changed`` is
        emitted once at the end."""
        self._edits_in_progress += 1
        try:
            yield
        finally:
            self._edits_in_progress -= 1
        if not self._edits_in_progress:
            self._refresh_notes()
            self.changed.emit(self.said())

    # --- reacting to edits ----------------------------------------------------------------

    def _on_edit(self) -> None:
        if not self._edits_in_progress:
            self._refresh_notes()
            self.changed.emit(self.said())

    def _on_preset(self, index: int) -> None:
        name = self.preset.itemData(index)
        if name != CUSTOM:
            self.set_config(presets()[name].config)

    def _on_activation(self) -> None:
        with self._one_change():
            self.activation_params.set_params(get_activation(self.activation.currentData()).params())

    def _on_init(self) -> None:
        scheme = get_scheme(self.init.currentData())
        try:
            params = scheme.params()
        except ConfigError:  # a parameter with no usable default (the checkpoint's file): the refusal asks for it
            params = dict(scheme.defaults)
        with self._one_change():
            self.init_params.set_params(params)

    def _on_bias(self) -> None:
        with self._one_change():
            self.bias_params.set_params(BIAS_INITS[self.bias_init.currentData()].params())

    def _refresh_notes(self) -> None:
        self._refresh_read_network()
        self._refresh_blocks()
        self._refresh_preset()
        self._refresh_recommendation()
        self._refresh_init_note()

    def _refresh_read_network(self) -> None:
        """A network read from a file (the checkpoint scheme) has the file's depth, widths and biases:
        their controls are off while it is chosen, and show the file's once it is read."""
        read = self.init.currentData() in READ_SCHEMES
        for widget in (self.layers, self.width, self.bias_init, self.bias_params):
            widget.setEnabled(not read)

    def _refresh_read_note(self) -> None:
        """A network read from a file: its layers' widths, or why it cannot be read."""
        said = self.said()
        if isinstance(said, ConfigError):
            self.init_note.setText(f"<span style='color:#b00020'>{html.escape(str(said))}</span>")
            return
        self.init_note.setText(
            f"<b>{said.layers} dense layers</b> of {html.escape(Path(said.init_params['file']).name)}: "
            f"{ARROW.join(map(str, said.widths))}<br><span style='color:#555'>their weights and biases as "
            f"stored ({said.init_params['layout']} layout); the activation, batch and input are "
            "the controls'</span>")
        self.init_note.setToolTip(get_scheme(said.init).description)

    def _refresh_blocks(self) -> None:
        """The block options show with residual blocks; the depth's caption says what it counts."""
        residual = self.residual.currentData() != "none"
        self.block_options.setVisible(residual)
        caption = self.network_form.labelForField(self.layers)
        caption.setText("Blocks" if residual else "Layers")

    def _refresh_preset(self) -> None:
        preset = self._matching_preset()
        self.preset.blockSignals(True)
        _set_data(self.preset, preset.name if preset else CUSTOM)
        self.preset.blockSignals(False)
        self.preset_note.setText(preset.explanation if preset else
                                 "Your own settings. Pick a preset to see one of the classic cases.")

    def _matching_preset(self) -> Preset | None:
        """The preset the controls show, whatever the seed."""
        config = self.config()
        for preset in presets().values():
            if preset.config.replace(seed=config.seed) == config:
                return preset
        return None

    def _refresh_recommendation(self) -> None:
        act = get_activation(self.activation.currentData())
        wanted = act.recommended_params(self.activation_params.values())
        current = self.init_params.values()
        follows = self.init.currentData() == act.recommended and all(
            current.get(name) == value for name, value in wanted.items())
        args = params_text(wanted)
        scheme = act.recommended + (f" ({args})" if args else "")
        if follows:
            self.recommendation.setText(f"\u2713 {scheme} is the usual scheme for {act.name}.")
        else:
            self.recommendation.setText(f"For {act.name} the usual scheme is <b>{scheme}</b>.")
        self.recommendation.setToolTip(act.why)
        self.apply_recommended.setVisible(not follows)

    def _refresh_init_note(self) -> None:
        scheme = get_scheme(self.init.currentData())
        if scheme.name in READ_SCHEMES:
            self._refresh_read_note()
            return
        width = self.width.value()
        try:
            std = scheme.std(width, width, self.init_params.values())
        except ConfigError as exc:
            self.init_note.setText(f"<span style='color:#b00020'>{html.escape(str(exc))}</span>")
            return
        std_text = "set from the data" if scheme.data_dependent else f"{std:.4g}"
        self.init_note.setText(
            f"<b>std {std_text}</b> at width {width}<br>"
            f"<span style='color:#555'>{scheme.formula}</span><br>"
            f"PyTorch: <code>{scheme.pytorch}</code><br>Keras: <code>{scheme.keras}</code>")
        self.init_note.setToolTip(scheme.description)
