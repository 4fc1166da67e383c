"""`initsim theory`, `phase` and `sweep`: the mean-field theory, its phase diagram and measured sweeps."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..engine import ACTIVATIONS, RANGES, SimConfig, get_activation, memory
from ..engine.checks import integer_in, number_in
from ..engine.export import atomic_write
from ..engine.params import PARAMS, params_in_brackets
from .common import (ACTIVATION_PARAMS, CONFIG_FIELDS, UsageError, announce, config_from_args, memory_limit,
                     number_text, param_flag_type, print_json, read_integer, read_number)

if TYPE_CHECKING:
    from ..engine.phase_export import MarkedPoint
    from ..engine.theory import PhaseDiagram


def add_activation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activation", required=True, metavar="NAME", help=", ".join(ACTIVATIONS))
    for name in ACTIVATION_PARAMS:
        spec = PARAMS[name]
        parser.add_argument(spec.flag, type=param_flag_type(name), metavar="X", help=spec.help)


def _activation_from_args(args: argparse.Namespace):
    act = get_activation(args.activation)
    return act, act.params({n: getattr(args, n) for n in ACTIVATION_PARAMS if getattr(args, n) is not None})


def cmd_theory(args: argparse.Namespace) -> int:
    from ..engine.theory import mean_field, phase_of

    act, params = _activation_from_args(args)
    field = mean_field(act, params, args.sigma_w2, args.sigma_b2, args.depth, args.q0, args.c0)
    if args.json:
        print_json({"activation": act.name, "activation_params": params, "sigma_w2": field.sigma_w2,
                    "sigma_b2": field.sigma_b2, "depth": args.depth, "q0": args.q0, "c0": args.c0,
                    "q": field.q.tolist(), "c": field.c.tolist(), "q_star": field.q_star,
                    "chi1": field.chi1, "depth_scale": field.depth_scale, "phase": phase_of(field.chi1)})
        return 0
    print(f"{' '.join(filter(None, (act.name, params_in_brackets(params))))}, sigma_w^2 = {field.sigma_w2:g}, sigma_b^2 = {field.sigma_b2:g}, "
          f"inputs with E[x^2] = {args.q0:g} and correlation {args.c0:g}")
    print("  ".join(f"{h:>10}" for h in ("layer", "q", "std", "c")))
    for layer, (q, c) in enumerate(zip(field.q, field.c), 1):
        print("  ".join(f"{cell:>10}" for cell in (layer, number_text(q), number_text(math.sqrt(q)), number_text(c))))
    print(f"q* = {number_text(field.q_star)}, chi_1 = {number_text(field.chi1)} ({phase_of(field.chi1)}), "
          f"depth scale = {number_text(field.depth_scale)} layers")
    return 0


# The flags that say which network, beyond the activation whose diagram it is: given any, the
# diagram marks that network's point.
NETWORK_FIELDS = tuple(name for name in CONFIG_FIELDS
                       if name not in ("activation", *ACTIVATION_PARAMS, "memory_limit_gib"))
# The PNG is the Theory view's diagram laid out at FIGURE_LAYOUT pixels and drawn at FIGURE_SCALE
# pixels per layout pixel: 1600 x 1200, its 9-point tick labels 24 pixels high, for a projector.
FIGURE_LAYOUT = (800, 600)
FIGURE_SCALE = 2.0


def network_name(config: SimConfig) -> str:
    """The init, and the bias init unless it is zeros: what places a network on the diagram."""
    return config.init if config.bias_init == "zeros" else f"{config.init}, bias {config.bias_init}"


def cmd_phase(args: argparse.Namespace) -> int:
    from ..engine.phase_export import axes_from_zero, default_extent, extent_holding, phase_csv
    from ..engine.theory import phase_diagram

    out = Path(args.out)
    if out.suffix not in (".png", ".csv"):
        raise UsageError("the phase diagram is written as .png or .csv")
    if args.activation is None and args.preset is None:
        raise UsageError("phase: give --activation, or a network's --preset")
    config = config_from_args(args)
    act, params = get_activation(config.activation), dict(config.activation_params)
    point = _marked_network(args, config)
    started = time.perf_counter()
    extent = default_extent(act, params, args.sigma_w2_max, args.sigma_b2_max)
    if point is not None:
        extent = extent_holding(extent, (point.sigma_w2, point.sigma_b2))
    sigma_w2, sigma_b2 = axes_from_zero(extent, args.grid)
    diagram = phase_diagram(act, params, sigma_w2, sigma_b2, args.q0)
    seconds = time.perf_counter() - started
    if out.suffix == ".png":
        atomic_write(out, _figure_png(diagram, point, config))
    else:
        atomic_write(out, phase_csv(diagram).encode())
    print(f"wrote the {args.grid} x {args.grid} phase diagram of {act.name} to {out} ({seconds:.2f} s): "
          f"sigma_w^2 from 0 to {sigma_w2[-1]:.4g}, sigma_b^2 from 0 to {sigma_b2[-1]:.4g}")
    line = ", ".join(f"{w:.4g} at sigma_b^2 = {b:.4g}" for b, w in
                     zip(sigma_b2[[0, args.grid // 2, -1]], diagram.critical_sigma_w2[[0, args.grid // 2, -1]]))
    print(f"critical sigma_w^2 (chi_1 = 1): {line}")
    if point is not None:
        print(f"the network ({point.label}) at sigma_w^2 = {number_text(point.sigma_w2)}, "
              f"sigma_b^2 = {number_text(point.sigma_b2)}")
    return 0


def _marked_network(args: argparse.Namespace, config: SimConfig) -> MarkedPoint | None:
    """The network's point, if the flags name a network (see NETWORK_FIELDS)."""
    from ..engine.phase_export import MarkedPoint, zero_weights_label
    from ..engine.theory import config_sigmas

    if not any(getattr(args, name) is not None for name in NETWORK_FIELDS):
        return None
    sigma_w2, sigma_b2 = config_sigmas(config)
    return MarkedPoint(sigma_w2, sigma_b2, zero_weights_label(network_name(config), sigma_w2))


def _figure_png(diagram: PhaseDiagram, point: MarkedPoint | None, config: SimConfig) -> bytes:
    """The diagram as the PNG of a figure, rendered offscreen; its text chunks say what it shows
    (and, with a point, the config, as `initsim export` writes it)."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QImage

    from ..app.io.imaging import CONFIG_KEY, render_image
    from ..app.io.offscreen import headless
    from ..app.views.phase_plot import figure_widget
    from ..engine.export import config_json
    from ..engine.phase_export import phase_notes, png_bytes

    with headless():
        widget = figure_widget(diagram, point, QSize(*FIGURE_LAYOUT))
        image = render_image(widget, FIGURE_SCALE).convertToFormat(QImage.Format.Format_RGB888)
        widget.close()
    # A copy of the pixels, not a view of the image's memory; each row's bytes are padded to a multiple of 4.
    rows = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), -1)
    rgb = rows[:, :3 * image.width()].reshape(image.height(), image.width(), 3).copy()
    notes = phase_notes(diagram, point)
    if point is not None:
        notes[CONFIG_KEY] = config_json(config)
    return png_bytes(rgb, notes)


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
    from ..engine.sweep import (CONNECT_SECONDS, LOCAL_SCHEDULER, SIGMA_AXES, cluster, cores, grid, results_csv,
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
                      f"{result.sigma_b2:.4g}: depth scale measured {number_text(result.measured_depth_scale)}, "
                      f"theory {number_text(result.theory_depth_scale)}", file=sys.stderr)
        except KeyboardInterrupt:
            print(f"interrupted: writing the {len(results)} finished runs", file=sys.stderr)
    if not results:
        print("no run finished: nothing written", file=sys.stderr)
        return 130
    fields = [name for name in axes if name not in SIGMA_AXES]
    atomic_write(out, lambda f: f.write(results_csv(results, fields).encode()))
    print(f"wrote {len(results)} of {len(configs)} runs to {out}")
    return 0 if len(results) == len(configs) else 130
