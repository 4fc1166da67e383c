"""The numpy engine: registries, simulation, theory. It never imports Qt."""

from .activations import ACTIVATIONS, Activation, get_activation
from .config import RANGES, SimConfig
from .errors import ConfigError
from .memory import DEFAULT_MEMORY_LIMIT, Estimate
from .schemes import BIAS_INITS, SCHEMES, BiasInit, Scheme, calculate_gain, get_bias_init, get_scheme
from .simulate import (BackwardEvent, ForwardEvent, LayerEvent, ResidualWeights, SimResult, initial_blocks,
                       initial_weights, simulate, simulate_stream)
from .stats import Histogram, Stats
from .theory import TheoryPrediction

__all__ = [
    "ACTIVATIONS", "Activation", "BIAS_INITS", "BackwardEvent", "BiasInit", "ConfigError",
    "DEFAULT_MEMORY_LIMIT", "Estimate", "ForwardEvent", "Histogram", "LayerEvent", "RANGES", "ResidualWeights", "SCHEMES",
    "Scheme", "SimConfig", "SimResult", "Stats", "TheoryPrediction", "calculate_gain", "get_activation",
    "get_bias_init", "get_scheme", "initial_blocks", "initial_weights", "simulate", "simulate_stream",
]
