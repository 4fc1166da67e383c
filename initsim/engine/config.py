"""The simulation's configuration: one frozen, validated dataclass (its memory estimate is in memory.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import get_activation
from .chain import load_chain, widest
from .checks import choice_in, integer_in, params_mapping
from .errors import ConfigError, shown, unknown_name
from .schemes import CHECKPOINT, get_bias_init, get_scheme

# Normalizations of a layer's pre-activations (network.py): batch norm (each unit over the batch),
# layer norm (each sample over its units) and RMSNorm (each sample over its units, as layer norm but
# without the mean subtracted, as in Llama); none has no learned scale and shift.
NORMS = ("none", "batch", "layer", "rms")
# Residual networks (issue 13): none is the plain MLP; pre and post are the block's two forms (pre-norm:
# x_l = x_{l-1} + alpha F(norm(x_{l-1})); post-norm: x_l = norm(x_{l-1} + alpha F(x_{l-1}))).
RESIDUALS = ("none", "pre", "post")
# The branch scale alpha's names, by depth L (the number of blocks): GPT-2 scales by 1/sqrt(2L) (two
# residual branches a layer), 1/sqrt(L) keeps the stream's variance bounded with a norm. A number
# (0 for ReZero / SkipInit) is given as itself.
BRANCH_SCALES: dict[str, Callable[[int], float]] = {
    "1/sqrt(L)": lambda blocks: 1 / math.sqrt(blocks),
    "1/sqrt(2L)": lambda blocks: 1 / math.sqrt(2 * blocks),
}
INPUT_DISTRIBUTIONS = ("normal", "uniform")
DTYPES = ("float32", "float64")
# What becomes of values below the dtype's smallest normal: "flush" sets them to zero (fast on every
# CPU, see network.py), "keep" keeps IEEE's gradual underflow (exact, slow on many CPUs).
SUBNORMALS = ("flush", "keep")
# The mark `SimConfig.validated` leaves on a config it returns.
_VALIDATED = "_validated"
# Where a validated checkpoint config keeps its layers' (fan_in, fan_out), which differ per layer.
_LAYER_FANS = "_layer_fans"

# Keys that older configs, tours and sessions carry and that are read and dropped: the memory limit
# is the user's setting (memory.py), never a file's.
IGNORED_KEYS = ("memory_limit",)

# Inclusive ranges of the integer fields: the window's spin boxes and the CLI use the same ones.
RANGES: dict[str, tuple[int, int]] = {
    "layers": (1, 1000),
    "width": (1, 4096),
    "batch": (1, 8192),
    "input_width": (1, 4096),
    "seed": (0, 2**63 - 1),
    "bins": (2, 1024),
    "expansion": (1, 16),  # a residual block's hidden width is expansion x width (4 in transformers)
}


@dataclass(frozen=True)
class SimConfig:
    """An MLP of ``layers`` dense layers of ``width`` units on a batch of ``batch`` inputs."""

    layers: int = 20
    width: int = 256
    batch: int = 512
    activation: str = "relu"
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    init: str = "kaiming_normal"
    init_params: Mapping[str, Any] = field(default_factory=dict)
    bias_init: str = "zeros"
    bias_params: Mapping[str, Any] = field(default_factory=dict)
    norm: str = "none"  # normalization before the activation: one of NORMS
    input_width: int | None = None  # None: the same as width
    input_dist: str = "normal"  # unit variance either way
    seed: int = 0
    dtype: str = "float32"
    subnormals: str = "flush"
    bins: int = 64
    # The residual block (see RESIDUALS and README's "Residual networks"); ``layers`` counts blocks.
    residual: str = "none"
    branch_scale: str = "1"  # alpha: a number as text, or a name of BRANCH_SCALES
    expansion: int = 1
    fixup: bool = False  # Fixup (Zhang et al. 2019): W2 = 0 and W1 scaled by L^(-1/2), no norm

    @property
    def branch_alpha(self) -> float:
        """The branch scale alpha as a number (of a validated config)."""
        by_depth = BRANCH_SCALES.get(self.branch_scale)
        return by_depth(self.layers) if by_depth is not None else float(self.branch_scale)

    @property
    def part(self) -> str:
        """What the network's parts are called in words: its layers, or a residual network's blocks."""
        return "layer" if self.residual == "none" else "block"

    @property
    def hidden_width(self) -> int:
        """A residual block's hidden width, expansion x width."""
        return self.expansion * self.width

    @property
    def fan_in_first(self) -> int:
        return self.input_width or self.width

    def fans(self, layer: int) -> tuple[int, int]:
        """(fan_in, fan_out) of 1-based layer ``layer``: a checkpoint's own per layer (init
        checkpoint), else the input's width or the width, then the width."""
        layer_fans = self.__dict__.get(_LAYER_FANS)
        if layer_fans is None and self.init == CHECKPOINT:
            layer_fans = self.validated().__dict__[_LAYER_FANS]
        if layer_fans is not None:
            return layer_fans[layer - 1]
        return (self.fan_in_first if layer == 1 else self.width), self.width

    @property
    def widths(self) -> tuple[int, ...]:
        """The input's width, then each layer's: a checkpoint's differ (784, 256, 128, 10)."""
        return (self.fans(1)[0], *(self.fans(layer)[1] for layer in range(1, self.layers + 1)))

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)

    def validated(self) -> SimConfig:
        """This config with canonical names and every parameter resolved, or a ConfigError. A
        config this returned is returned as it is: however many consumers ask (the window, the
        worker, the engine, the views), a config is validated once."""
        if self.__dict__.get(_VALIDATED):
            return self
        # A checkpoint's depth and widths are its file's (`_checkpoint_network`), whatever the config
        # says, and may lie beyond the ranges that the window's spin boxes and the CLI offer.
        from_file = self.init == CHECKPOINT
        integers = {name: integer_in(name, getattr(self, name), low, high)
                    for name, (low, high) in RANGES.items()
                    if not (name == "input_width" and self.input_width is None)
                    and not (from_file and name in ("layers", "width", "input_width"))}
        if not from_file and integers.get("input_width") in (None, integers["width"]):
            integers["input_width"] = None  # the same as width
        block = _block_options(self, integers["expansion"])
        scheme = get_scheme(self.init)
        activation = get_activation(self.activation)
        bias = get_bias_init(self.bias_init)
        for name, allowed in (("norm", NORMS), ("input_dist", INPUT_DISTRIBUTIONS), ("dtype", DTYPES),
                              ("subnormals", SUBNORMALS)):
            choice_in(name, getattr(self, name), allowed)
        given = {name: params_mapping(name, getattr(self, name))
                 for name in ("init_params", "activation_params", "bias_params")}
        config = self.replace(
            **(integers | block),
            init=scheme.name, init_params=scheme.params(given["init_params"]),
            activation=activation.name, activation_params=activation.params(given["activation_params"]),
            bias_init=bias.name, bias_params=bias.params(given["bias_params"]),
        )
        if config.residual != "none" and scheme.data_dependent:
            raise ConfigError("init", f"{scheme.name} is not available for residual networks yet (it fits "
                              "each plain layer to the data)")
        layer_fans = None
        if scheme.name == CHECKPOINT:
            config, layer_fans = _checkpoint_network(config)
        object.__setattr__(config, _VALIDATED, True)  # not a field: replace() makes a config to check again
        if layer_fans is not None:
            object.__setattr__(config, _LAYER_FANS, layer_fans)
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, every field present."""
        out = dataclasses.asdict(self)
        for key in ("activation_params", "init_params", "bias_params"):
            out[key] = dict(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimConfig:
        """A config from a mapping; unknown keys are refused with the closest valid names, and
        the keys of older files in IGNORED_KEYS are dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k not in IGNORED_KEYS}
        for key in data:
            if key not in known:
                raise unknown_name("config", key, known)
        return cls(**{k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()})




def _checkpoint_network(config: SimConfig) -> tuple[SimConfig, tuple[tuple[int, int], ...]]:
    """A checkpoint config's network, from its file's chained dense layers (engine/chain.py): its
    depth, its input width, its width (the widest layer's fan_out) and each layer's fans are the
    file's, whatever the config said; its biases are the file's (zeros where a layer has none), so
    bias_init is set to zeros and ignored. The file's path is made absolute and the layout resolved
    (auto: the format's default)."""
    if config.residual != "none":
        raise ConfigError("residual", "a checkpoint's dense layers are a plain MLP: choose residual none")
    chain = load_chain(config.init_params["file"], config.init_params["layout"])
    width, first = widest(chain.fans), chain.fans[0][0]
    return config.replace(
        layers=len(chain.layers), width=width, input_width=None if first == width else first,
        init_params={"file": str(chain.path), "layout": chain.layout}, bias_init="zeros", bias_params={},
    ), chain.fans


def branch_scale_text(value: Any) -> str:
    """A branch scale in its canonical text: a name of BRANCH_SCALES (spaces and the case of L
    aside), or a finite number (given as a number or as text) in its shortest form ("0.5", "1")."""
    if isinstance(value, str):
        key = value.replace(" ", "").replace("l)", "L)")
        if key in BRANCH_SCALES:
            return key
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
    else:
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError("branch_scale", f"got {shown(value)}, expected a finite number or one of "
                          + ", ".join(BRANCH_SCALES))
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _block_options(config: SimConfig, expansion: int) -> dict[str, Any]:
    """The validated residual fields. A plain network (residual none) has no block: its block options
    are set to their defaults, whatever they were (a file's or the window's leftovers), so that
    every plain config is the same config. The CLI refuses them with residual none instead, as
    flags that would do nothing."""
    residual = choice_in("residual", config.residual, RESIDUALS)
    if not isinstance(config.fixup, (bool, np.bool_)):
        raise ConfigError("fixup", f"got {shown(config.fixup)}, expected true or false")
    scale = branch_scale_text(config.branch_scale)
    if residual == "none":
        return {"residual": residual, "branch_scale": "1", "expansion": 1, "fixup": False}
    if config.fixup and config.norm != "none":
        raise ConfigError("fixup", f"Fixup replaces the normalization: choose norm none (got {config.norm})")
    return {"residual": residual, "branch_scale": scale, "expansion": expansion, "fixup": bool(config.fixup)}
