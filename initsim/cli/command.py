"""The parser of every subcommand, and `main`, the `initsim` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from threadpoolctl import threadpool_limits

from ..engine import RANGES, ConfigError
from ..engine.configfile import readable
from ..engine.export import ExportError
from .common import (BLAS_ENVIRONMENT, EXIT_USAGE, Parser, UsageError, add_config_flags, flag_type,
                     integer_flag, number_flag)
from .export import IMAGE_VIEWS, cmd_export
from .inspect import cmd_inspect
from .registries import cmd_activations, cmd_install_desktop, cmd_presets, cmd_schemes
from .simulate import FAN_RANGE, cmd_simulate, cmd_weights
from .theory import add_activation_flags, cmd_phase, cmd_sweep, cmd_theory
from .train import add_train_flags, cmd_compare, cmd_train


def build_parser() -> Parser:
    from ..engine.checks import choice_in
    from ..engine.compare import MAX_SEEDS
    from ..engine.layouts import LAYOUTS
    from ..engine.sweep import CONNECT_SECONDS
    from ..engine.train import TRAIN_RANGES, TrainConfig

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
                                 "a run's data to CSV/JSON/NPZ, a tour's slides, or the presets' gallery")
    add_config_flags(export)
    export.add_argument("--out", metavar="FILE", help=".png or .svg (an image of --view); .csv (per-layer "
                        "statistics, config in FILE.config.json), .json (statistics and histograms) or "
                        ".npz (histograms)")
    export.add_argument("--view", choices=IMAGE_VIEWS, help="what the image shows (default: the window)")
    export.add_argument("--size", metavar="WxH", help="layout size in pixels of the view or window "
                        "(default 1600x1000; slides 1920x1080; gallery images 1200x750)")
    # Not --scale: that is VarianceScaling's parameter, among the config flags.
    export.add_argument("--image-scale", type=float, metavar="S", help="PNG pixels per layout pixel: 2 draws the "
                        "same layout twice as sharp (default 1)")
    export.add_argument("--tour", metavar="NAME", help="render every step of a tour (a shipped name, or a "
                        ".toml file) as numbered PNG slides in --out-dir")
    export.add_argument("--out-dir", metavar="DIR", help="folder for the slides of --tour (created if needed)")
    export.add_argument("--steps", type=integer_flag(*TRAIN_RANGES["steps"]), metavar="N",
                        help=f"training steps of --view training (default {TrainConfig.steps}, as the Training tab)")
    export.add_argument("--gallery", metavar="DIR", help="render every preset's main views as PNGs into DIR, "
                        "with an index.html of them and each preset's diagnosis (created if needed)")
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

    phase = commands.add_parser("phase", help="write the order/chaos phase diagram (.png figure or .csv) "
                                "of --activation; a network's flags (--preset, --init, ...) mark its point")
    add_config_flags(phase)
    phase.add_argument("--grid", type=integer_flag(2, 1000), default=200, metavar="N",
                       help="N x N points (default 200)")
    phase.add_argument("--sigma-w2-max", type=number_flag(1e-6, 1e6), metavar="X",
                       help="right edge (default: 3 x the critical sigma_w^2 at sigma_b^2 = 0), widened to "
                       "hold the network's point")
    phase.add_argument("--sigma-b2-max", type=number_flag(1e-6, 1e6), metavar="X",
                       help="top edge (default: 0.1 x the critical sigma_w^2 at sigma_b^2 = 0), widened to "
                       "hold the network's point")
    phase.add_argument("--q0", type=number_flag(0.0), default=1.0, metavar="X",
                       help="start of the variance iteration whose end is q* (default 1)")
    phase.add_argument("--out", required=True, metavar="FILE", help=".png (a 1600 x 1200 figure) or .csv "
                       "(every point)")
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

    inspect = commands.add_parser("inspect", help="which initialization each tensor of a checkpoint follows, "
                                  "and what looks wrong (.safetensors, .npz, .npy, Keras .weights.h5)")
    inspect.add_argument("file", metavar="FILE", help="the checkpoint (pickles such as .pt are refused: "
                         "loading one runs its code)")
    inspect.add_argument("--layout", type=flag_type(lambda text: choice_in("", text, LAYOUTS), "name"),
                         metavar="NAME", help="torch: a Linear weight is (out, in), a conv kernel (out, in, kh, kw); "
                         "numpy: (in, out), Keras' conv (kh, kw, in, out) (default: torch for safetensors, "
                         "numpy for the others)")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(run=cmd_inspect)

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
            from ..app import run

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
