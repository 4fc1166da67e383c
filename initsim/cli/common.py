"""What every subcommand shares: reading flags (numbers, names, the config's flags), usage
errors, memory announcements, progress lines and JSON output."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from ..engine import ACTIVATIONS, BIAS_INITS, RANGES, SCHEMES, ConfigError, SimConfig, memory
from ..engine.checks import choice_in, integer_in, number_in
from ..engine.config import BRANCH_SCALES, DTYPES, NORMS, RESIDUALS, SUBNORMALS, branch_scale_text
from ..engine.export import json_safe
from ..engine.params import PARAMS
from ..engine.presets import get_preset
from ..engine.schemes import READ_SCHEMES

EXIT_USAGE = 2

# The user's own BLAS thread settings, which the command then leaves as they are.
BLAS_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def params_taken(registry: dict) -> tuple[str, ...]:
    """The parameters some entry of ``registry`` (schemes, activations, bias inits) takes, in
    PARAMS' order: one flag each."""
    taken = {name for entry in registry.values() for name in entry.defaults}
    return tuple(name for name in PARAMS if name in taken)


# The checkpoint scheme (its weights read from a file) is not a distribution in SCHEMES, but its
# parameters (--file, --layout) are flags as any scheme's.
SCHEME_PARAMS = params_taken(SCHEMES | READ_SCHEMES)
ACTIVATION_PARAMS = params_taken(ACTIVATIONS)
BIAS_PARAMS = {f"bias_{name}": name for name in params_taken(BIAS_INITS)}  # --bias-std sets the bias init's std
# Every flag of add_config_flags, by its argparse name.
# The residual block's flags (issue 13): they describe a block, so residual none refuses them.
BLOCK_FIELDS = ("branch_scale", "expansion", "fixup")
CONFIG_FIELDS = ("preset", "layers", "width", "batch", "input_width", "seed", "bins", "activation", "norm",
                 "input_dist", "dtype", "subnormals", "memory_limit_gib", "init", "bias_init", *SCHEME_PARAMS,
                 *ACTIVATION_PARAMS, *BIAS_PARAMS, "residual", *BLOCK_FIELDS)


class UsageError(Exception):
    """Bad command-line input; main() prints it on one line and exits with status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(message)


# ASCII only: int() and float() also read other scripts' digits ('\u0663' is 3) and underscores.
_INTEGER = re.compile(r"[+-]?[0-9]{1,4000}")  # int() refuses more than 4,300 digits
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,5})?|[+-]?(inf|infinity|nan)",
                     re.IGNORECASE)


def read_integer(text: str) -> int | str:
    """The integer that ASCII digits spell; any other text as it is, for the check to refuse."""
    return int(text) if _INTEGER.fullmatch(text) else text


def read_number(text: str) -> float | str:
    """The number that ASCII text spells (inf and nan included); any other text, or a number
    beyond float's range (1e400 is not inf), as it is."""
    if not _NUMBER.fullmatch(text):
        return text
    number = float(text)
    return number if math.isfinite(number) or "n" in text.lower() else text


def flag_type(check: Callable[[str], Any], kind: str) -> Callable[[str], Any]:
    """An argparse type made of an engine check of the flag's text: its ConfigError becomes
    argparse's one-line error, which names the flag."""
    def convert(text: str) -> Any:
        try:
            return check(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    convert.__name__ = kind
    return convert


def integer_flag(low: int, high: int) -> Callable[[str], int]:
    return flag_type(lambda text: integer_in("", read_integer(text), low, high), "integer")


def number_flag(low: float = -math.inf, high: float = math.inf, low_inclusive: bool = True
                ) -> Callable[[str], float]:
    return flag_type(lambda text: number_in("", read_number(text), low, high, low_inclusive), "number")


def param_flag_type(name: str) -> Callable[[str], Any]:
    """A parameter's flag: text for a choice or a path, else any finite number (the scheme checks its
    range)."""
    return str if PARAMS[name].is_choice or PARAMS[name].text else number_flag()


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The network and initialization flags shared by every headless command that simulates."""
    net = parser.add_argument_group("network")
    net.add_argument("--preset", help="start from a preset (see `initsim presets`); flags override it")
    for name in ("layers", "width", "batch", "input_width", "seed", "bins"):
        low, high = RANGES[name]
        net.add_argument("--" + name.replace("_", "-"), type=integer_flag(low, high), metavar="N",
                         help=f"{low}..{high}")
    net.add_argument("--activation", metavar="NAME", help=", ".join(ACTIVATIONS))
    net.add_argument("--norm", metavar="NAME", help="normalization before the activation: " + ", ".join(NORMS))
    net.add_argument("--input-dist", metavar="NAME", help="input distribution (unit variance): normal, uniform")
    net.add_argument("--dtype", type=flag_type(lambda text: choice_in("", text, DTYPES), "name"),
                     metavar="NAME", help="float32 (default) or float64")
    net.add_argument("--subnormals", type=flag_type(lambda text: choice_in("", text, SUBNORMALS), "name"),
                     metavar="NAME", help="values below the dtype's smallest normal: flush (default: set to "
                     "zero, fast on every CPU) or keep (IEEE's gradual underflow, exact, slow on many CPUs)")
    # At most 1 PiB: more than any machine holds, and still a byte count once multiplied out.
    net.add_argument("--memory-limit-gib", type=number_flag(0.0, 2.0**20, low_inclusive=False), metavar="GIB",
                     help=f"refuse runs whose estimated memory is over this (default "
                     f"{memory.DEFAULT_MEMORY_LIMIT / memory.GIB:g}); a long or large run's estimate "
                     "is shown on stderr either way")
    parser.add_argument("--blas-threads", type=integer_flag(1, 1024), metavar="N",
                        help="threads of the matrix products (default 1, as in the window, unless "
                        + ", ".join(BLAS_ENVIRONMENT) + " is set)")
    block = parser.add_argument_group("residual network (README: Residual networks)")
    block.add_argument("--residual", type=flag_type(lambda text: choice_in("", text, RESIDUALS), "name"),
                       metavar="FORM", help="none (default: a plain MLP), pre (x + alpha F(norm(x))) or post "
                       "(norm(x + alpha F(x))); --layers counts blocks")
    block.add_argument("--branch-scale", type=flag_type(branch_scale_text, "scale"), metavar="X",
                       help="alpha: a number (default 1; 0 for ReZero / SkipInit), " + " or ".join(BRANCH_SCALES))
    block.add_argument("--expansion", type=integer_flag(*RANGES["expansion"]), metavar="E",
                       help="the branch's hidden width is E x width (default 1; 4 as in transformers)")
    block.add_argument("--fixup", action="store_const", const=True, default=None,
                       help="Fixup: W2 = 0 and W1 scaled by L^(-1/2); no norm")
    init = parser.add_argument_group("initialization")
    init.add_argument("--init", metavar="NAME", help="scheme (see `initsim schemes`)")
    init.add_argument("--bias-init", metavar="NAME", help=", ".join(BIAS_INITS))
    for name in SCHEME_PARAMS + ACTIVATION_PARAMS:
        spec = PARAMS[name]
        init.add_argument(spec.flag, type=param_flag_type(name), metavar="FILE" if spec.text else "X",
                          help=spec.help)
    for flag, name in BIAS_PARAMS.items():
        init.add_argument("--" + flag.replace("_", "-"), type=param_flag_type(name), metavar="X",
                          help=f"the bias init's {name}: {PARAMS[name].help}")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The validated config the flags describe (a preset, overridden by the flags given)."""
    base = get_preset(args.preset).config if args.preset else SimConfig()
    changes: dict[str, Any] = {}
    for name in ("layers", "width", "batch", "input_width", "seed", "bins", "activation", "norm",
                 "input_dist", "dtype", "subnormals", "init", "bias_init", "residual", *BLOCK_FIELDS):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    # A block's flags with no block would do nothing: refused, as a flag the scheme does not take.
    block_flags = [name for name in BLOCK_FIELDS if name in changes]
    if block_flags and changes.get("residual", base.residual) == "none":
        raise UsageError(", ".join("--" + name.replace("_", "-") for name in block_flags)
                         + ": only for a residual network (give --residual pre or post)")
    # Parameters belong to their scheme: naming a new scheme starts from its defaults.
    init_params = {} if "init" in changes else dict(base.init_params)
    act_params = {} if "activation" in changes else dict(base.activation_params)
    bias_params = {} if "bias_init" in changes else dict(base.bias_params)
    init_params.update({n: getattr(args, n) for n in SCHEME_PARAMS if getattr(args, n) is not None})
    act_params.update({n: getattr(args, n) for n in ACTIVATION_PARAMS if getattr(args, n) is not None})
    bias_params.update({p: getattr(args, f) for f, p in BIAS_PARAMS.items() if getattr(args, f) is not None})
    return base.replace(init_params=init_params, activation_params=act_params,
                        bias_params=bias_params, **changes).validated()


def memory_limit(args: argparse.Namespace) -> int:
    """``--memory-limit-gib`` in bytes, or the default limit."""
    gib = getattr(args, "memory_limit_gib", None)
    return memory.DEFAULT_MEMORY_LIMIT if gib is None else memory.gib_limit(gib)


def announce(estimate: memory.Estimate, limit: int) -> bool:
    """Show a long or large run's estimate on stderr before it starts (one over the limit is
    refused by the engine instead); returns whether it was shown, i.e. whether the run is worth
    a progress report."""
    shown = estimate.worth_showing and estimate.bytes <= limit
    if shown:
        print(f"initsim: {estimate.text()}", file=sys.stderr)
    return shown


PROGRESS_SECONDS = 5.0  # between progress lines when stderr is not a terminal


class Progress:
    """"what k of n" on stderr: rewritten in place on a terminal, else a line every few seconds."""

    def __init__(self, what: str, total: int, shown: bool) -> None:
        self.what, self.total, self.shown = what, total, shown
        self.terminal = sys.stderr.isatty()
        self.last = time.monotonic()

    def update(self, done: int) -> None:
        if not self.shown:
            return
        now = time.monotonic()
        if self.terminal:
            print(f"\r{self.what} {done} of {self.total}", end="" if done < self.total else "\n",
                  file=sys.stderr, flush=True)
        elif now - self.last >= PROGRESS_SECONDS or done == self.total:
            print(f"initsim: {self.what} {done} of {self.total}", file=sys.stderr, flush=True)
            self.last = now


def print_json(data: Any) -> None:
    json.dump(json_safe(data), sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")


def number_text(value: float | None) -> str:
    """A number as the tables print it: 4 significant digits, "-" for none."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"
