"""The `initsim` command: the window with no subcommand, headless work with one.

Headless subcommands import only the engine; the app (and Qt) is imported only to open the window.
Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from threadpoolctl import threadpool_limits

from .engine import ACTIVATIONS, BIAS_INITS, RANGES, SCHEMES, ConfigError, SimConfig, memory
from .engine.checks import choice_in, integer_in, number_in
from .engine.config import DTYPES, SUBNORMALS
from .engine.configfile import readable
from .engine.export import ExportError, atomic_write, export_weights, json_safe
from .engine.params import PARAMS, params_text
from .engine.presets import get_preset, presets

EXIT_USAGE = 2

# The user's own BLAS thread settings, which the command then leaves as they are.
BLAS_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

SCHEME_PARAMS = ("gain", "mode", "nonlinearity", "negative_slope", "std", "mean", "low", "high",
                 "limit", "scale", "distribution", "value", "sparsity")
ACTIVATION_PARAMS = ("slope", "alpha", "approximate")
BIAS_PARAMS = {"bias_std": "std", "bias_value": "value"}
# Every flag of add_config_flags, by its argparse name.
CONFIG_FIELDS = ("preset", "layers", "width", "batch", "input_width", "seed", "bins", "activation", "norm",
                 "input_dist", "dtype", "subnormals", "memory_limit_gib", "init", "bias_init", *SCHEME_PARAMS,
                 *ACTIVATION_PARAMS, *BIAS_PARAMS)


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


def _param_type(name: str) -> Callable[[str], Any]:
    """A parameter's flag: text for a choice, else any finite number (the scheme checks its range)."""
    return str if PARAMS[name].is_choice else number_flag()


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The network and initialization flags shared by every headless command that simulates."""
    net = parser.add_argument_group("network")
    net.add_argument("--preset", help="start from a preset (see `initsim presets`); flags override it")
    for name in ("layers", "width", "batch", "input_width", "seed", "bins"):
        low, high = RANGES[name]
        net.add_argument("--" + name.replace("_", "-"), type=integer_flag(low, high), metavar="N",
                         help=f"{low}..{high}")
    net.add_argument("--activation", metavar="NAME", help=", ".join(ACTIVATIONS))
    net.add_argument("--norm", metavar="NAME", help="normalization before the activation: none, batch, layer")
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
    init = parser.add_argument_group("initialization")
    init.add_argument("--init", metavar="NAME", help="scheme (see `initsim schemes`)")
    init.add_argument("--bias-init", metavar="NAME", help=", ".join(BIAS_INITS))
    for name in SCHEME_PARAMS + ACTIVATION_PARAMS:
        spec = PARAMS[name]
        init.add_argument(spec.flag, type=_param_type(name), metavar="X", help=spec.help)
    init.add_argument("--bias-std", type=number_flag(), metavar="X", help="std of the normal bias init")
    init.add_argument("--bias-value", type=number_flag(), metavar="X", help="value of the constant bias init")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The validated config the flags describe (a preset, overridden by the flags given)."""
    base = get_preset(args.preset).config if args.preset else SimConfig()
    changes: dict[str, Any] = {}
    for name in ("layers", "width", "batch", "input_width", "seed", "bins", "activation", "norm",
                 "input_dist", "dtype", "subnormals", "init", "bias_init"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
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


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


# --- simulate ------------------------------------------------------------------------------

def cmd_simulate(args: argparse.Namespace) -> int:
    result = simulated(config_from_args(args), args)
    theory = result.theory
    if args.json:
        print_json({"config": result.config.to_dict(),
                    "theory": {"q_star": theory.q_star, "chi1": theory.chi1,
                               "depth_scale": theory.depth_scale, "sigma_w2": theory.sigma_w2,
                               "sigma_b2": theory.sigma_b2},
                    "seconds": result.seconds, "layers": result.layer_records()})
        return 0
    c = result.config
    print(f"{c.layers} x {c.width} {c.activation}, init {c.init} {_params_text(c.init_params)}, "
          f"bias {c.bias_init}, norm {c.norm}, batch {c.batch}, seed {c.seed}, {c.dtype}")
    header = ("layer", "pre std", "act mean", "act std", "dead %", "sat %", "grad std",
              "theory pre", "theory grad", "nonfinite", "subnormal")
    print("  ".join(f"{h:>10}" for h in header))
    for row in result.layer_records():
        cells = (row["index"], _fmt(row["pre_std"]), _fmt(row["post_mean"]), _fmt(row["post_std"]),
                 f"{100 * row['dead_fraction']:.1f}", f"{100 * row['saturated_fraction']:.1f}",
                 _fmt(row["grad_std"]), _fmt(row["theory_pre_std"]), _fmt(row["theory_grad_std"]),
                 row["nonfinite"], row["subnormal"] + row["grad_subnormal"])
        print("  ".join(f"{str(cell):>10}" for cell in cells))
    print(f"mean field: sigma_w^2 = {_fmt(theory.sigma_w2[-1])}, sigma_b^2 = {_fmt(theory.sigma_b2)}, "
          f"q* = {_fmt(theory.q_star)}, chi_1 = {_fmt(theory.chi1)}, "
          f"depth scale = {_fmt(theory.depth_scale)} layers; {result.seconds:.3f} s")
    return 0


def simulated(config: SimConfig, args: argparse.Namespace):
    """The simulation of ``config`` under ``--memory-limit-gib``: its estimate announced, its steps
    (the forward pass, then the backward pass, layer by layer) reported as progress."""
    from .engine import simulate

    limit = memory_limit(args)
    progress = Progress("layer step", 2 * config.layers, announce(memory.simulation(config), limit))
    return simulate(config, limit, lambda event: progress.update(event.step))


def _params_text(params: dict) -> str:
    return f"({params_text(params)})" if params else ""


# --- weights -------------------------------------------------------------------------------

FAN_RANGE = (1, 65536)  # of one matrix written by itself
# The flags of add_config_flags that one matrix takes (the others describe a network).
MATRIX_FIELDS = ("init", "seed", "dtype", "memory_limit_gib", *SCHEME_PARAMS)

def cmd_weights(args: argparse.Namespace) -> int:
    from .engine import get_scheme

    out = Path(args.out)
    if args.layers is not None or args.preset:
        if out.suffix != ".npz":
            raise UsageError("a whole network (--layers or --preset) is written as .npz")
        if args.fan_in is not None:
            args.input_width = args.fan_in
        if args.fan_out is not None:
            args.width = args.fan_out
        config = config_from_args(args)
        announce(memory.simulation(config), memory_limit(args))
        export_weights(config, out, memory_limit(args))
        print(f"wrote {config.layers} layers of {config.init} to {out}")
        return 0
    if out.suffix != ".npy":
        raise UsageError("one matrix is written as .npy (use --layers N for a whole network as .npz)")
    if args.fan_in is None or args.fan_out is None:
        raise UsageError("--fan-in and --fan-out are required for one matrix")
    unused = [name for name in CONFIG_FIELDS if name not in MATRIX_FIELDS and getattr(args, name) is not None]
    if unused:
        raise UsageError(f"--{unused[0].replace('_', '-')} does not apply to one matrix "
                         "(a whole network takes it: add --layers N)")
    scheme = get_scheme(args.init or "kaiming_normal")
    if scheme.data_dependent:
        raise ConfigError("init", f"{scheme.name} depends on data: write a network with --layers")
    params = scheme.params({n: getattr(args, n) for n in SCHEME_PARAMS if getattr(args, n) is not None})
    estimate = memory.weights_matrix(scheme.name, args.fan_in, args.fan_out, args.dtype or "float32")
    memory.check(estimate, memory_limit(args), "--fan-in or --fan-out")
    announce(estimate, memory_limit(args))
    seed = args.seed if args.seed is not None else 0
    w = scheme.sample(args.fan_in, args.fan_out, np.random.default_rng(seed),
                      args.dtype or "float32", params)
    atomic_write(out, lambda f: np.save(f, w))
    print(f"wrote {scheme.name} {w.shape} (std {w.std():.4g}, formula std "
          f"{scheme.std(args.fan_in, args.fan_out, params):.4g}) to {out}")
    return 0


# --- registries ----------------------------------------------------------------------------

def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _call(text: str) -> str:
    """A framework call set as code, the words after it (if any) as text."""
    found = re.match(r"((?:nn|keras)\.[^ ]*?\([^)]*\)(?:; [^ ]*?\([^)]*\))?)(.*)", text)
    return _code(found.group(1)) + found.group(2) if found else text


def scheme_rows() -> list[dict]:
    return [{"name": s.name, "label": s.label, "family": s.family, "truncated": s.truncated,
             "formula": s.formula, "params": dict(s.defaults), "aliases": list(s.aliases),
             "pytorch": s.pytorch, "keras": s.keras, "description": s.description,
             "data_dependent": s.data_dependent} for s in SCHEMES.values()]


def activation_rows() -> list[dict]:
    rows = []
    for a in ACTIVATIONS.values():
        p = a.params()
        rows.append({"name": a.name, "formula": a.formula, "params": dict(a.defaults),
                     "gain": a.gain(), "pytorch_gain": a.torch_gain is not None,
                     "recommended": a.recommended, "recommended_params": a.recommended_params(p),
                     "why": a.why, "can_die": a.can_die(p),
                     "saturation": list(a.saturation) if a.saturation else None})
    return rows


def _gain_source(row: dict) -> str:
    return "PyTorch" if row["pytorch_gain"] else "mean field"


def schemes_markdown() -> str:
    """The README's table of schemes, from the registry (a test keeps the README equal to it)."""
    return _markdown_table(
        ("scheme", "framework", "W ~", "parameters", "PyTorch", "Keras"),
        [(_code(r["name"]) + "".join(f" ({_code(a)})" for a in r["aliases"]),
          r["family"] + (", truncated" if r["truncated"] else ""), r["formula"],
          _params_text(r["params"]) or "-", _call(r["pytorch"]), _call(r["keras"])) for r in scheme_rows()])


def activations_markdown() -> str:
    """The README's table of activations, from the registry."""
    return _markdown_table(
        ("activation", "phi", "gain", "recommended", "why"),
        [(_code(r["name"]), r["formula"], f"{r['gain']:.4f} ({_gain_source(r)})",
          _code(r["recommended"] + _params_text(r["recommended_params"])), r["why"])
         for r in activation_rows()])


def _listing(args: argparse.Namespace, rows: list[dict], text: Callable[[dict], str],
             markdown: Callable[[], str] | None = None) -> int:
    """A registry listing: JSON, the README's markdown table, or text for people."""
    if args.json:
        print_json(rows)
    elif markdown is not None and args.markdown:
        print(markdown())
    else:
        print("\n".join(text(row) for row in rows))
    return 0


def cmd_schemes(args: argparse.Namespace) -> int:
    return _listing(args, scheme_rows(), lambda r: (
        f"{r['label']}\n    {r['formula']}\n    params: {_params_text(r['params']) or '-'}"
        f"\n    PyTorch: {r['pytorch']}\n    Keras:   {r['keras']}"), schemes_markdown)


def cmd_activations(args: argparse.Namespace) -> int:
    return _listing(args, activation_rows(), lambda r: (
        f"{r['name']:<11} gain {r['gain']:.4f} ({_gain_source(r)})  ->  {r['recommended']} "
        f"{_params_text(r['recommended_params'])}\n    {r['formula']}\n    {r['why']}"), activations_markdown)


def cmd_presets(args: argparse.Namespace) -> int:
    rows = [{"name": p.name, "title": p.title, "explanation": p.explanation,
             "config": p.config.to_dict()} for p in presets().values()]
    return _listing(args, rows, lambda r: f"{r['name']:<22} {r['title']}")


def cmd_install_desktop(args: argparse.Namespace) -> int:
    from .desktop import data_home, install_desktop_entry

    try:
        written = install_desktop_entry(Path(args.prefix) if args.prefix else None)
    except OSError as exc:
        raise UsageError(f"cannot install under {args.prefix or data_home()}: {exc.strerror or exc}") from None
    print("installed the desktop entry and icons:\n  " + "\n  ".join(str(p) for p in written))
    return 0


# --- export --------------------------------------------------------------------------------

# The window, or a view of the app's registry marked offscreen (imported here, it would pull in Qt at
# every start); tests/app/test_view_registry.py keeps the two equal.
IMAGE_VIEWS = ("window", "histograms", "heatmap", "stats", "theory")
SIDE_RANGE = (100, 10000)


def _size(text: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT, each side in SIDE_RANGE."""
    match = re.fullmatch(r"\s*(\d+)\s*[x\u00d7X]\s*(\d+)\s*", text)
    if match is None:
        raise UsageError(f"--size takes WIDTHxHEIGHT in pixels, e.g. 1600x1000; got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    low, high = SIDE_RANGE
    if not (low <= width <= high and low <= height <= high):
        raise UsageError(f"--size: each side must be {low}..{high} pixels; got {width}x{height}")
    return width, height


def cmd_export(args: argparse.Namespace) -> int:
    """Everything is checked (the flags, the config, that the folder takes files) before anything
    is rendered or simulated."""
    from .engine.export import DATA_FORMATS, check_writable, image_scale

    if args.image_scale is not None:
        image_scale(args.image_scale, "--image-scale")
    size = _size(args.size) if args.size else None  # checked before Qt is imported for it
    if args.tour is not None:
        return _export_tour(args, size)
    if args.out_dir is not None:
        raise UsageError("--out-dir is for the slides of a --tour; one file is written with --out")
    if args.out is None:
        raise UsageError("export needs --out FILE (.png, .svg, .csv, .json, .npz) or --tour NAME --out-dir DIR")
    out = Path(args.out)
    suffix = out.suffix.lower()
    config = config_from_args(args)
    if suffix in DATA_FORMATS:  # numbers only: no Qt
        from .engine.export import export_data

        given = [flag for flag in ("view", "size", "image_scale") if getattr(args, flag) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for images; {suffix} holds data")
        check_writable(out)
        for path in export_data(simulated(config, args), out):
            print(f"wrote {path}")
        return 0
    if suffix not in (".png", ".svg"):
        raise UsageError(f"cannot export as {suffix or 'a file without a suffix'}: use .png or .svg "
                         f"(images), or {', '.join(DATA_FORMATS)} (data)")
    view = args.view or "window"
    if suffix == ".svg" and (view == "window" or args.image_scale is not None):
        raise UsageError("SVG holds one view's plots, at no scale: pick --view histograms, heatmap, "
                         "stats or theory")
    check_writable(out)
    limit = memory_limit(args)  # the hidden window runs the config under the same limit
    announce(memory.check(memory.simulation(config), limit, "layers, width or batch"), limit)
    from PySide6.QtCore import QSize

    from .app.io.offscreen import DEFAULT_SIZE, export_view, headless

    with headless():
        path = export_view(config, view, out, QSize(*size) if size else DEFAULT_SIZE,
                           args.image_scale or 1.0, memory_limit=limit)
    print(f"wrote {path}: the {view}")
    return 0


def _export_tour(args: argparse.Namespace, size: tuple[int, int] | None) -> int:
    from .engine.export import check_writable
    from .engine.tours import get_tour, read_tour

    others = [flag for flag in ("out", "view") if getattr(args, flag) is not None]
    if others:
        raise UsageError(f"--{others[0]} does not go with --tour: the slides are the window, one per step")
    flags = [name for name in CONFIG_FIELDS if name != "memory_limit_gib" and getattr(args, name) is not None]
    if flags:
        raise UsageError(f"--{flags[0].replace('_', '-')} does not go with --tour: each step has its config")
    if args.out_dir is None:
        raise UsageError("--tour needs --out-dir DIR for its slides")
    tour = read_tour(args.tour) if args.tour.endswith(".toml") else get_tour(args.tour)
    check_writable(args.out_dir, folder=True)
    limit = memory_limit(args)
    for step in tour.steps:  # each step runs in the hidden window under this limit
        memory.check(memory.simulation(step.config), limit, f"the layers, width or batch of step {step.title!r}")
    from PySide6.QtCore import QSize

    from .app.io.offscreen import SLIDE_SIZE, export_tour, headless

    with headless():
        paths = export_tour(tour, args.out_dir, QSize(*size) if size else SLIDE_SIZE, args.image_scale or 1.0,
                            memory_limit=limit)
    print(f"wrote {len(paths)} slides of {tour.title!r} to {args.out_dir}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


# --- theory, phase, sweep ------------------------------------------------------------------

def add_activation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activation", required=True, metavar="NAME", help=", ".join(ACTIVATIONS))
    for name in ACTIVATION_PARAMS:
        spec = PARAMS[name]
        parser.add_argument(spec.flag, type=_param_type(name), metavar="X", help=spec.help)


def _activation_from_args(args: argparse.Namespace):
    from .engine import get_activation

    act = get_activation(args.activation)
    return act, act.params({n: getattr(args, n) for n in ACTIVATION_PARAMS if getattr(args, n) is not None})


def cmd_theory(args: argparse.Namespace) -> int:
    from .engine.theory import mean_field, phase_of

    act, params = _activation_from_args(args)
    field = mean_field(act, params, args.sigma_w2, args.sigma_b2, args.depth, args.q0, args.c0)
    if args.json:
        print_json({"activation": act.name, "activation_params": params, "sigma_w2": field.sigma_w2,
                    "sigma_b2": field.sigma_b2, "depth": args.depth, "q0": args.q0, "c0": args.c0,
                    "q": field.q.tolist(), "c": field.c.tolist(), "q_star": field.q_star,
                    "chi1": field.chi1, "depth_scale": field.depth_scale, "phase": phase_of(field.chi1)})
        return 0
    print(f"{' '.join(filter(None, (act.name, _params_text(params))))}, sigma_w^2 = {field.sigma_w2:g}, sigma_b^2 = {field.sigma_b2:g}, "
          f"inputs with E[x^2] = {args.q0:g} and correlation {args.c0:g}")
    print("  ".join(f"{h:>10}" for h in ("layer", "q", "std", "c")))
    for layer, (q, c) in enumerate(zip(field.q, field.c), 1):
        print("  ".join(f"{cell:>10}" for cell in (layer, _fmt(q), _fmt(math.sqrt(q)), _fmt(c))))
    print(f"q* = {_fmt(field.q_star)}, chi_1 = {_fmt(field.chi1)} ({phase_of(field.chi1)}), "
          f"depth scale = {_fmt(field.depth_scale)} layers")
    return 0


def cmd_phase(args: argparse.Namespace) -> int:
    from .engine.phase_export import phase_csv, phase_png
    from .engine.theory import phase_axes, phase_diagram

    act, params = _activation_from_args(args)
    out = Path(args.out)
    if out.suffix not in (".png", ".csv"):
        raise UsageError("the phase diagram is written as .png or .csv")
    started = time.perf_counter()
    sigma_w2, sigma_b2 = phase_axes(act, params, args.grid, args.sigma_w2_max, args.sigma_b2_max)
    diagram = phase_diagram(act, params, sigma_w2, sigma_b2, args.q0)
    seconds = time.perf_counter() - started
    if out.suffix == ".png":
        atomic_write(out, lambda f: f.write(phase_png(diagram)))
    else:
        atomic_write(out, lambda f: f.write(phase_csv(diagram).encode()))
    print(f"wrote the {args.grid} x {args.grid} phase diagram of {act.name} to {out} ({seconds:.2f} s): "
          f"sigma_w^2 from {sigma_w2[0]:.4g} to {sigma_w2[-1]:.4g}, sigma_b^2 from 0 to {sigma_b2[-1]:.4g}")
    line = ", ".join(f"{w:.4g} at sigma_b^2 = {b:.4g}" for b, w in
                     zip(sigma_b2[[0, args.grid // 2, -1]], diagram.critical_sigma_w2[[0, args.grid // 2, -1]]))
    print(f"critical sigma_w^2 (chi_1 = 1): {line}")
    return 0


MAX_AXIS_POINTS = 10_000


def _axis_values(name: str, text: str) -> list:
    """A sweep axis: "a,b,c", or "start:stop:count" for evenly spaced numbers."""
    if name in ("sigma_w2", "sigma_b2"):
        if ":" in text:
            ends = text.split(":")
            if len(ends) != 3:
                raise UsageError(f"--{name.replace('_', '-')} takes a,b,c or start:stop:count; got {text!r}")
            start, stop = (number_in(name, read_number(end), 0.0) for end in ends[:2])
            count = integer_in(f"{name} count", read_integer(ends[2]), 1, MAX_AXIS_POINTS)
            return np.linspace(start, stop, count).tolist()
        return [read_number(v) for v in text.split(",")]
    if name in RANGES:
        return [read_integer(v) for v in text.split(",")]
    return text.split(",")


def cmd_sweep(args: argparse.Namespace) -> int:
    from .engine.sweep import (CONNECT_SECONDS, LOCAL_SCHEDULER, SIGMA_AXES, cluster, cores, grid, results_csv,
                               sweep)

    out = Path(args.out)
    if out.suffix != ".csv":
        raise UsageError("the sweep is written as .csv")
    axes = {name: _axis_values(name, getattr(args, name)) for name in SIGMA_AXES if getattr(args, name)}
    for item in args.vary:
        name, _, values = item.partition("=")
        if not values:
            raise UsageError(f"--vary takes FIELD=V1,V2,...; got {item!r}")
        name = name.strip().replace("-", "_")
        axes[name] = _axis_values(name, values)
    if not axes:
        raise UsageError("give at least one axis: --sigma-w2, --sigma-b2 or --vary FIELD=V1,V2,...")
    remote = args.scheduler not in (None, LOCAL_SCHEDULER)
    if remote and args.workers is not None:
        raise UsageError("sweep: --workers goes with --scheduler local or no --scheduler "
                         "(a running scheduler has its own workers)")
    if args.connect_timeout is not None and not remote:
        raise UsageError("sweep: --connect-timeout goes with --scheduler ADDRESS")
    # A remote cluster's workers run elsewhere: this machine holds every result and this process
    # (counted as one worker, whose run is the largest point's: each worker checks it too).
    base, limit = config_from_args(args), memory_limit(args)
    workers = 1 if remote else args.workers or cores()
    # Checked before the grid is made: its points times the base config's run.
    memory.check(memory.sweep_points(memory.simulation(base), math.prod(len(v) for v in axes.values()),
                                     workers, base.layers), limit, "the points or workers")
    configs = grid(base, axes)
    announce(memory.sweep(configs, workers), limit)
    results = []
    with contextlib.ExitStack() as running:
        try:
            executor = None if args.scheduler is None else running.enter_context(
                cluster(args.scheduler, args.workers, args.connect_timeout or CONNECT_SECONDS))
            stream = running.enter_context(contextlib.closing(
                sweep(configs, executor, workers, memory_limit=limit)))
            for result in stream:
                results.append(result)
                print(f"[{len(results)}/{len(configs)}] sigma_w^2 {result.sigma_w2:.4g}, sigma_b^2 "
                      f"{result.sigma_b2:.4g}: depth scale measured {_fmt(result.measured_depth_scale)}, "
                      f"theory {_fmt(result.theory_depth_scale)}", file=sys.stderr)
        except KeyboardInterrupt:
            print(f"interrupted: writing the {len(results)} finished runs", file=sys.stderr)
    if not results:
        print("no run finished: nothing written", file=sys.stderr)
        return 130
    fields = [name for name in axes if name not in SIGMA_AXES]
    atomic_write(out, lambda f: f.write(results_csv(results, fields).encode()))
    print(f"wrote {len(results)} of {len(configs)} runs to {out}")
    return 0 if len(results) == len(configs) else 130


# --- train, compare ------------------------------------------------------------------------

TRAIN_FLAGS = ("task", "samples", "noise", "task_dim", "data_seed", "optimizer", "lr", "momentum",
               "steps", "train_batch")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """The task and optimizer flags of `train` and `compare --train`."""
    from .engine.tasks import TASKS
    from .engine.train import OPTIMIZERS, TRAIN_RANGES, TRAIN_REAL_RANGES, TrainConfig

    def train_int(name: str) -> Callable[[str], int]:
        return integer_flag(*TRAIN_RANGES[name])

    def train_real(name: str) -> Callable[[str], float]:
        return number_flag(*TRAIN_REAL_RANGES[name])

    group = parser.add_argument_group("training")
    group.add_argument("--task", metavar="NAME", help=f"{', '.join(TASKS)} (default {TrainConfig.task})")
    group.add_argument("--samples", type=train_int("samples"), metavar="N",
                       help=f"training set size (default {TrainConfig.samples})")
    group.add_argument("--noise", type=train_real("noise"), metavar="X", help="the task's noise (default: the task's own)")
    group.add_argument("--task-dim", type=train_int("task_dim"), metavar="D",
                       help="input dimensions of blobs and regression")
    group.add_argument("--data-seed", type=train_int("data_seed"), metavar="N",
                       help=f"seed of the data (default {TrainConfig.data_seed}); --seed seeds the weights and batches")
    group.add_argument("--optimizer", metavar="NAME", help=", ".join(
        f"{name} (lr {o.default_lr:g})" for name, o in OPTIMIZERS.items()) + f"; default {TrainConfig.optimizer}")
    group.add_argument("--lr", type=train_real("lr"), metavar="X", help="learning rate (default: the optimizer's)")
    group.add_argument("--momentum", type=train_real("momentum"), metavar="X",
                       help=f"SGD's momentum (default {TrainConfig.momentum})")
    group.add_argument("--steps", type=train_int("steps"), metavar="N", help=f"default {TrainConfig.steps}")
    group.add_argument("--train-batch", type=train_int("train_batch"), metavar="N",
                       help=f"mini-batch size (default {TrainConfig.train_batch})")


def training_from_args(args: argparse.Namespace, **changes: Any):
    """The validated TrainConfig the training flags describe."""
    from .engine.train import TrainConfig

    given = {name: getattr(args, name) for name in TRAIN_FLAGS if getattr(args, name) is not None}
    return TrainConfig(**given, **changes).validated()


def _refuse_flags(args: argparse.Namespace, command: str, hints: dict[str, str]) -> None:
    for name, hint in hints.items():
        if getattr(args, name, None) is not None:
            raise UsageError(f"{command}: --{name.replace('_', '-')} {hint}")


def _named(name: str, params: dict) -> str:
    return " ".join(filter(None, (name, _params_text(dict(params)))))


def _rows(count: int, most: int = 20) -> list[int]:
    """At most ``most`` evenly spaced 1-based indices out of ``count``, the first and last included."""
    return sorted({int(i) for i in np.linspace(1, count, min(count, most)).round()})


def cmd_train(args: argparse.Namespace) -> int:
    from .engine.train import Diverged, Setup, StepEvent, describe, run

    _refuse_flags(args, "train", {"batch": "is the simulation's batch: use --train-batch",
                                  "input_width": "is the task's dimension: use --task-dim",
                                  "input_dist": "does not apply: the task gives the inputs",
                                  "bins": "does not apply: training draws no histograms"})
    every = {} if args.every is None else {"record_every": args.every}
    config, training, limit = config_from_args(args), training_from_args(args, **every), memory_limit(args)
    shown = announce(memory.training(config, training), limit)
    setup = Setup.of(config, training, memory_limit=limit)
    c, t, data = setup.net.config, setup.training, setup.data
    if not args.json:
        print(f"{t.task}: {len(data.inputs)} samples, {data.dim}-D, "
              f"{f'{data.classes} classes' if data.classes else 'regression'}; {c.layers} x {c.width} "
              f"{c.activation}, init {_named(c.init, c.init_params)}, "
              f"norm {c.norm}; {t.optimizer} "
              f"lr {t.lr:g}, batch {t.train_batch}, {t.steps} steps, seed {c.seed}, {c.dtype}")
        header = ("step", "loss", "accuracy", "set loss", "set acc", "grad:data", "(min..max)",
                  "log10 upd:data", "(min..max)")
        print("  ".join(f"{h:>10}" for h in header))
    events = []
    started = time.perf_counter()
    progress = Progress("step", t.steps, shown)
    for event in run(setup):
        events.append(event)
        progress.update(event.step)
        if args.json or not isinstance(event, StepEvent) or event.probe is None:
            continue
        cells = (event.step, _fmt(event.loss), _fmt(event.accuracy), _fmt(event.probe.loss),
                 _fmt(event.probe.accuracy), _fmt(min(event.grad_data)), _fmt(max(event.grad_data)),
                 _fmt(min(event.update_data)), _fmt(max(event.update_data)))
        print("  ".join(f"{str(cell):>10}" for cell in cells))
    diverged = events[-1] if events and isinstance(events[-1], Diverged) else None
    status = describe(events[-1], t.flat_steps)
    if args.json:
        print_json({"config": c.to_dict(), "train": t.to_dict(), "data_digest": data.digest,
                    "steps": [e.record() for e in events if isinstance(e, StepEvent)],
                    "diverged_at": diverged.step if diverged else None,
                    "diverged_layer": diverged.layer if diverged else None,
                    "status": "diverged" if diverged else "flat" if events[-1].flat else "healthy",
                    "message": status, "seconds": time.perf_counter() - started})
        return 0
    print(f"{status}; {time.perf_counter() - started:.2f} s")
    return 0


def _scheme_list(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``--init`` of compare: NAME[:PARAM=VALUE...],... e.g. zeros,normal:std=0.01,kaiming_normal."""
    from .engine.errors import unknown_name

    schemes = []
    for item in text.split(","):
        name, *pairs = item.strip().split(":")
        if not name:
            raise UsageError(f"--init takes NAME[:PARAM=VALUE...],...; got {text!r}")
        params: dict[str, Any] = {}
        for pair in pairs:
            key, equals, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not equals:
                raise UsageError(f"--init: expected PARAM=VALUE after {name!r}; got {pair!r}")
            if key not in SCHEME_PARAMS:
                raise unknown_name("init parameter", key, SCHEME_PARAMS)
            try:
                params[key] = _param_type(key)(value)
            except argparse.ArgumentTypeError:
                raise UsageError(f"--init: {key} of {name} must be a number; got {value!r}") from None
        schemes.append((name, params))
    return schemes


def cmd_compare(args: argparse.Namespace) -> int:
    from .engine.compare import CompareProgress, CompareResult, checked_inputs, compare_stream

    if args.init is None:
        raise UsageError("compare: --init takes the schemes to compare, e.g. kaiming_normal,xavier_normal,zeros")
    if not args.train:
        given = [name for name in TRAIN_FLAGS if getattr(args, name) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is a training flag: add --train")
    configs = []
    for name, params in _scheme_list(args.init):
        scheme_args = argparse.Namespace(**{**vars(args), "init": name, **params})
        configs.append(config_from_args(scheme_args))
    first_seed = configs[0].seed
    seeds = list(range(first_seed, first_seed + args.seeds))
    training = training_from_args(args) if args.train else None
    limit = memory_limit(args)
    checked, _ = checked_inputs(configs, seeds)
    announce(memory.comparison(checked, len(seeds), training), limit)
    result = None
    for event in compare_stream(configs, seeds, training, memory_limit=limit):
        if isinstance(event, CompareProgress):
            config = configs[event.config_index]
            print(f"[{event.done}/{event.total}] {config.init} seed {event.seed}", file=sys.stderr)
        elif isinstance(event, CompareResult):
            result = event
    assert result is not None
    runs = result.runs
    if args.json:
        print_json({"seeds": seeds, "train": training.to_dict() if training else None, "seconds": result.seconds,
                    "runs": [{"init": run.config.init, "init_params": dict(run.config.init_params),
                              "config": run.config.to_dict(), "seeds": list(run.seeds),
                              "diverged_at": list(run.diverged_at), "data_digest": run.data_digest,
                              "layers": run.layer_records(), "steps": run.step_records()} for run in runs]})
        return 0
    names = [_named(r.config.init, r.config.init_params) for r in runs]
    c = runs[0].config
    print(f"{len(runs)} schemes x {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}); {c.layers} x {c.width} "
          f"{c.activation}, norm {c.norm}; median (min..max) over the seeds")
    for i, name in enumerate(names, 1):
        print(f"  [{i}] {name}")
    print("simulation: activation std | gradient std, per layer")
    print(f"{'layer':>6}  " + "  ".join(f"{f'[{i}] act':>10} {'grad':>10}" for i in range(1, len(runs) + 1)))
    for layer in _rows(c.layers):
        print(f"{layer:>6}  " + "  ".join(f"{_fmt(r.activation_std.median[layer - 1]):>10} "
                                           f"{_fmt(r.grad_std.median[layer - 1]):>10}" for r in runs))
    if training is not None:
        print(f"training {training.task}, {training.optimizer} lr {training.lr:g}, batch {training.train_batch}: "
              "mini-batch loss")
        print(f"{'step':>6}  " + "  ".join(f"{f'[{i}] loss':>24}" for i in range(1, len(runs) + 1)))
        for step in _rows(training.steps):
            print(f"{step:>6}  " + "  ".join(
                f"{_band_text(r.loss.median[step - 1], r.loss.low[step - 1], r.loss.high[step - 1]):>24}"
                for r in runs if r.loss is not None))
        for name, run in zip(names, runs):
            diverged = [f"seed {s} at step {k}" for s, k in zip(run.seeds, run.diverged_at) if k]
            if diverged:
                print(f"{name} diverged: {', '.join(diverged)}")
    print(f"{result.seconds:.2f} s")
    return 0


def _band_text(median: float, low: float, high: float) -> str:
    return f"{_fmt(median)} ({_fmt(low)}..{_fmt(high)})" if math.isfinite(median) else "-"


# --- entry point ---------------------------------------------------------------------------

def build_parser() -> Parser:
    from .engine.compare import MAX_SEEDS
    from .engine.sweep import CONNECT_SECONDS
    from .engine.train import TRAIN_RANGES

    parser = Parser(prog="initsim", description="See what weight initialization does to a deep "
                    "network. With no command, opens the window.")
    parser.add_argument("--version", action="version", version=f"initsim {__import__('initsim').__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    simulate = commands.add_parser("simulate", help="simulate a network and print per-layer statistics")
    add_config_flags(simulate)
    simulate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    simulate.set_defaults(run=cmd_simulate)

    weights = commands.add_parser("weights", help="write sampled initial weights (.npy, or .npz for a net)")
    add_config_flags(weights)
    weights.add_argument("--fan-in", type=integer_flag(*FAN_RANGE), metavar="N")
    weights.add_argument("--fan-out", type=integer_flag(*FAN_RANGE), metavar="N")
    weights.add_argument("--out", required=True, metavar="FILE", help=".npy (one matrix) or .npz (network)")
    weights.set_defaults(run=cmd_weights)

    desktop = commands.add_parser("install-desktop", help="add initsim to the desktop's application menu "
                                  "(for the current user)")
    desktop.add_argument("--prefix", metavar="DIR",
                         help="data folder to install into (default: $XDG_DATA_HOME or ~/.local/share)")
    desktop.set_defaults(run=cmd_install_desktop)

    export = commands.add_parser("export", help="render a view or the window to PNG/SVG without a display, "
                                 "a run's data to CSV/JSON/NPZ, or a tour's slides")
    add_config_flags(export)
    export.add_argument("--out", metavar="FILE", help=".png or .svg (an image of --view); .csv (per-layer "
                        "statistics, config in FILE.config.json), .json (statistics and histograms) or "
                        ".npz (histograms)")
    export.add_argument("--view", choices=IMAGE_VIEWS, help="what the image shows (default: the window)")
    export.add_argument("--size", metavar="WxH", help="layout size in pixels of the view or window "
                        "(default 1600x1000; slides 1920x1080)")
    # Not --scale: that is VarianceScaling's parameter, among the config flags.
    export.add_argument("--image-scale", type=float, metavar="S", help="PNG pixels per layout pixel: 2 draws the "
                        "same layout twice as sharp (default 1)")
    export.add_argument("--tour", metavar="NAME", help="render every step of a tour (a shipped name, or a "
                        ".toml file) as numbered PNG slides in --out-dir")
    export.add_argument("--out-dir", metavar="DIR", help="folder for the slides of --tour (created if needed)")
    export.set_defaults(run=cmd_export)

    theory = commands.add_parser("theory", help="mean-field prediction, layer by layer, for one "
                                 "(sigma_w^2, sigma_b^2)")
    add_activation_flags(theory)
    theory.add_argument("--sigma-w2", type=number_flag(0.0), required=True, metavar="X", help="fan_in * E[W^2]")
    theory.add_argument("--sigma-b2", type=number_flag(0.0), default=0.0, metavar="X", help="E[b^2] (default 0)")
    theory.add_argument("--depth", type=integer_flag(*RANGES["layers"]), default=20, metavar="L",
                        help="layers (default 20)")
    theory.add_argument("--q0", type=number_flag(0.0), default=1.0, metavar="X", help="the inputs' E[x^2] (default 1)")
    theory.add_argument("--c0", type=number_flag(-1.0, 1.0), default=0.5, metavar="X",
                        help="correlation of the two inputs followed by c (default 0.5)")
    theory.add_argument("--json", action="store_true", help="print JSON instead of a table")
    theory.set_defaults(run=cmd_theory)

    phase = commands.add_parser("phase", help="write the order/chaos phase diagram (.png or .csv)")
    add_activation_flags(phase)
    phase.add_argument("--grid", type=integer_flag(2, 1000), default=200, metavar="N",
                       help="N x N points (default 200)")
    phase.add_argument("--sigma-w2-max", type=number_flag(1e-6, 1e6), metavar="X",
                       help="right edge (default: 3 x the critical sigma_w^2 at sigma_b^2 = 0)")
    phase.add_argument("--sigma-b2-max", type=number_flag(1e-6, 1e6), metavar="X",
                       help="top edge (default: 0.1 x the critical sigma_w^2 at sigma_b^2 = 0)")
    phase.add_argument("--q0", type=number_flag(0.0), default=1.0, metavar="X",
                       help="start of the variance iteration whose end is q* (default 1)")
    phase.add_argument("--out", required=True, metavar="FILE", help=".png (image) or .csv (every point)")
    phase.set_defaults(run=cmd_phase)

    sweep = commands.add_parser("sweep", help="simulate a grid of configs in parallel; measured vs "
                                "theory depth scale to CSV (progress on stderr)")
    add_config_flags(sweep)
    sweep.add_argument("--sigma-w2", metavar="SPEC", help="sigma_w^2 values: a,b,c or start:stop:count")
    sweep.add_argument("--sigma-b2", metavar="SPEC", help="sigma_b^2 values: a,b,c or start:stop:count")
    sweep.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2",
                       help="another axis over a config field (init, layers, width, seed, ...); repeatable")
    sweep.add_argument("--workers", type=integer_flag(1, 1024), metavar="N",
                       help="processes (default: one per core)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed scheduler "
                       "(tcp://host:8786), or 'local' for a LocalCluster of --workers processes "
                       "(needs initsim[cluster])")
    sweep.add_argument("--connect-timeout", type=number_flag(0.0, 3600.0, low_inclusive=False), metavar="S",
                       help=f"seconds to wait for --scheduler to answer (default {CONNECT_SECONDS:g})")
    sweep.add_argument("--out", required=True, metavar="FILE", help=".csv, one row per config")
    sweep.set_defaults(run=cmd_sweep)

    train = commands.add_parser("train", help="train the network on a built-in task; a row every K steps")
    add_config_flags(train)
    add_train_flags(train)
    train.add_argument("--every", type=integer_flag(*TRAIN_RANGES["record_every"]), metavar="K",
                       help="measure the whole training set and print a row every K steps (default 10)")
    train.add_argument("--json", action="store_true", help="print JSON (every step) instead of a table")
    train.set_defaults(run=cmd_train)

    compare = commands.add_parser("compare", help="compare up to 4 schemes over seeds: simulation, "
                                  "and training with --train (progress on stderr)")
    add_config_flags(compare)
    compare.add_argument("--seeds", type=integer_flag(1, MAX_SEEDS), default=3, metavar="N",
                         help="seeds per scheme: --seed, --seed + 1, ... (default 3)")
    compare.add_argument("--train", action="store_true", help="train each scheme too (the training flags)")
    add_train_flags(compare)
    compare.add_argument("--json", action="store_true", help="print JSON instead of tables")
    compare.set_defaults(run=cmd_compare)

    for name, run, text in (("schemes", cmd_schemes, "list the initialization schemes"),
                            ("activations", cmd_activations, "list the activations"),
                            ("presets", cmd_presets, "list the presets")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--json", action="store_true")
        if name != "presets":
            sub.add_argument("--markdown", action="store_true", help="the README's table")
        sub.set_defaults(run=run)
    return parser


def blas_threads(args: argparse.Namespace) -> int | None:
    """BLAS threads for a command: ``--blas-threads``, else one as in the window (a second thread
    only competes with whatever else holds the cores, and on a loaded machine slows the run down),
    unless the user's environment sets a count (None: leave it)."""
    threads = getattr(args, "blas_threads", None)  # checked by its flag's type
    if threads is not None:
        return threads
    return None if any(os.environ.get(name) for name in BLAS_ENVIRONMENT) else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, rest = build_parser().parse_known_args(argv)
        if args.command is None:  # the window; Qt takes what it knows of the rest (-platform ...)
            from .app import run

            return run(rest)
        if rest:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        with threadpool_limits(blas_threads(args)):
            return args.run(args)
    except (UsageError, ConfigError, ExportError) as exc:
        print(f"initsim: error: {readable(str(exc))}", file=sys.stderr)  # one line, cut: flags hold any text
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
