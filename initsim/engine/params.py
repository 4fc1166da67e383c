"""Parameters shared by init schemes, bias inits and activations.

A parameter has one name everywhere (registry, config, CLI flag ``--name-with-dashes``, UI control),
so ``gain`` means the same thing in every scheme that takes it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .checks import choice_in, number_in, number_range, params_mapping
from .errors import ConfigError, shown

ParamValue = float | str


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    choices: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    text: bool = False  # free text (a file's path), neither a number nor a choice

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        if self.is_choice:
            return "one of " + ", ".join(self.choices)
        if self.text:
            return "a file's path"
        return number_range(self.low, self.high, self.low_inclusive)

    def validate(self, owner: str, value: ParamValue) -> ParamValue:
        """Return the value coerced to its type, or raise a ConfigError naming the parameter."""
        field = f"{owner}.{self.name}"
        if self.is_choice:
            return choice_in(field, value.strip().lower() if isinstance(value, str) else value, self.choices)
        if self.text:
            return text_in(field, value)
        return number_in(field, value, self.low, self.high, self.low_inclusive)


FAN_MODES = ("fan_in", "fan_out", "fan_avg")
NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)

PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("gain", "multiplies the scheme's standard deviation (PyTorch's gain)", low=0.0),
        Param("mode", "which fan sets the variance", choices=FAN_MODES),
        Param("nonlinearity", "activation whose PyTorch gain is used", choices=NONLINEARITIES),
        Param("negative_slope", "PyTorch's `a` of kaiming_*: the leaky_relu slope in the gain",
              low=0.0, high=1e3),
        Param("std", "standard deviation of the normal before any truncation", low=0.0),
        Param("mean", "mean of the normal", low=-1e6, high=1e6),
        Param("low", "lower cut of trunc_normal, an absolute value (not in units of std)",
              low=-1e6, high=1e6),
        Param("high", "upper cut of trunc_normal, an absolute value (not in units of std)",
              low=-1e6, high=1e6),
        Param("limit", "half-width of the symmetric uniform U(-limit, limit)", low=0.0, high=1e6),
        Param("scale", "variance scale of variance_scaling (1: LeCun/Glorot, 2: He)",
              low=0.0, high=1e6, low_inclusive=False),
        Param("distribution", "variance_scaling's distribution",
              choices=("truncated_normal", "untruncated_normal", "uniform")),
        Param("value", "the constant every entry takes", low=-1e6, high=1e6),
        Param("sparsity", "fraction of zeros in each column of the PyTorch weight", low=0.0, high=1.0),
        Param("slope", "leaky_relu's negative slope", low=0.0, high=1e3),
        Param("alpha", "elu's alpha", low=0.0, high=1e3),
        Param("approximate", "gelu: exact erf form or the tanh approximation",
              choices=("none", "tanh")),
        Param("file", "the checkpoint whose chained dense layers are the network (.safetensors, .npz, "
              ".npy, Keras .weights.h5)", text=True),
        Param("layout", "how the checkpoint stores a dense weight: torch (out, in), numpy (in, out), "
              "or auto (torch for safetensors, numpy otherwise)", choices=("auto", "torch", "numpy")),
    )
}


def text_in(field: str, value: ParamValue) -> str:
    """A text parameter's value: non-empty text (or a path object), without surrounding spaces."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, f"got {shown(value)}, expected a file's path")
    return value.strip()


def params_text(params: dict[str, ParamValue]) -> str:
    """Parameters as people read them: ``gain=1.5, mode=fan_in`` (numbers in their shortest form)."""
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in params.items())


def params_in_brackets(params: dict[str, ParamValue]) -> str:
    """``(gain=1.5)`` after a name, or nothing when there are no parameters."""
    return f"({params_text(params)})" if params else ""


def resolve(owner: str, defaults: dict[str, ParamValue], given: Any) -> dict:
    """Defaults overlaid with the given values (a mapping, or None), each validated; unknown names
    are refused."""
    given = params_mapping(f"{owner} params", given)
    for name in given:
        if name not in defaults:
            takes = ", ".join(defaults) or "no parameters"
            raise ConfigError(f"{owner}.{name}", f"not a parameter of {owner} (it takes: {takes})")
    return {name: PARAMS[name].validate(owner, given.get(name, default))
            for name, default in defaults.items()}
