"""The simulation's configuration: one frozen, validated dataclass (its memory estimate is in memory.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .activations import get_activation
from .checks import choice_in, integer_in, params_mapping
from .errors import unknown_name
from .schemes import get_bias_init, get_scheme

# Normalizations of a layer's pre-activations (network.py): batch norm (each unit over the batch),
# layer norm (each sample over its units) and RMSNorm (each sample over its units, as layer norm but
# without the mean subtracted, as in Llama); none has no learned scale and shift.
NORMS = ("none", "batch", "layer", "rms")
INPUT_DISTRIBUTIONS = ("normal", "uniform")
DTYPES = ("float32", "float64")
# What becomes of values below the dtype's smallest normal: "flush" sets them to zero (fast on every
# CPU, see network.py), "keep" keeps IEEE's gradual underflow (exact, slow on many CPUs).
SUBNORMALS = ("flush", "keep")
# The mark `SimConfig.validated` leaves on a config it returns.
_VALIDATED = "_validated"

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

    @property
    def fan_in_first(self) -> int:
        return self.input_width or self.width

    def fans(self, layer: int) -> tuple[int, int]:
        """(fan_in, fan_out) of 1-based layer ``layer``."""
        return (self.fan_in_first if layer == 1 else self.width), self.width

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)

    def validated(self) -> SimConfig:
        """This config with canonical names and every parameter resolved, or a ConfigError. A
        config this returned is returned as it is: however many consumers ask (the window, the
        worker, the engine, the views), a config is validated once."""
        if self.__dict__.get(_VALIDATED):
            return self
        integers = {name: integer_in(name, getattr(self, name), low, high)
                    for name, (low, high) in RANGES.items()
                    if not (name == "input_width" and self.input_width is None)}
        if integers.get("input_width") in (None, integers["width"]):
            integers["input_width"] = None  # the same as width
        scheme = get_scheme(self.init)
        activation = get_activation(self.activation)
        bias = get_bias_init(self.bias_init)
        for name, allowed in (("norm", NORMS), ("input_dist", INPUT_DISTRIBUTIONS), ("dtype", DTYPES),
                              ("subnormals", SUBNORMALS)):
            choice_in(name, getattr(self, name), allowed)
        given = {name: params_mapping(name, getattr(self, name))
                 for name in ("init_params", "activation_params", "bias_params")}
        config = self.replace(
            **integers,
            init=scheme.name, init_params=scheme.params(given["init_params"]),
            activation=activation.name, activation_params=activation.params(given["activation_params"]),
            bias_init=bias.name, bias_params=bias.params(given["bias_params"]),
        )
        object.__setattr__(config, _VALIDATED, True)  # not a field: replace() makes a config to check again
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


