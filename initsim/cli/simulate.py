"""`initsim simulate` (a run's per-layer statistics) and `initsim weights` (the initial weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..engine import ConfigError, SimConfig, memory
from ..engine.diagnosis import WARNING_KINDS
from ..engine.export import atomic_write, export_weights, result_record
from ..engine.params import params_in_brackets
from ..engine.schemes import READ_SCHEMES
from .common import (CONFIG_FIELDS, Progress, SCHEME_PARAMS, UsageError, announce, config_from_args,
                     memory_limit, number_text, print_json)


def cmd_simulate(args: argparse.Namespace) -> int:
    result = simulated(config_from_args(args), args)
    theory = result.theory
    record = result_record(result)
    if args.json:
        print_json({**record, "seconds": result.seconds})
        return 0
    c = result.config
    residual = c.residual != "none"
    block = (f"; {c.residual}-norm residual blocks, alpha {c.branch_scale}, expansion {c.expansion}"
             + (", Fixup" if c.fixup else "")) if residual else ""
    read = c.init in READ_SCHEMES  # a checkpoint's own layers: widths per layer, biases from the file
    widths = " -> ".join(map(str, c.widths))
    print(f"{f'{c.layers} layers {widths}' if read else f'{c.layers} x {c.width}'} {c.activation}, init {c.init} "
          f"{params_in_brackets(c.init_params)}, {'biases from the file' if read else f'bias {c.bias_init}'}, "
          f"norm {c.norm}, batch {c.batch}, seed {c.seed}, {c.dtype}{block}")
    # A block's pre std is its branch's hidden pre-activation, its act the stream x_l, its grad dL/dx_l.
    header = (("block", "hidden pre", "x mean", "x std", "branch std") if residual else
              ("layer", "pre std", "act mean", "act std")) + \
        ("dead %", "sat %", "grad std", "theory pre", *(("theory x",) if residual else ()), "theory grad",
         "nonfinite", "subnormal")
    print("  ".join(f"{h:>10}" for h in header))
    for row in result.layer_records():
        cells = (row["index"], number_text(row["pre_std"]), number_text(row["post_mean"]), number_text(row["post_std"]),
                 *((number_text(row["branch_std"]),) if residual else ()),
                 f"{100 * row['dead_fraction']:.1f}", f"{100 * row['saturated_fraction']:.1f}",
                 number_text(row["grad_std"]), number_text(row["theory_pre_std"]),
                 *((number_text(row["theory_post_std"]),) if residual else ()), number_text(row["theory_grad_std"]),
                 row["nonfinite"], row["subnormal"] + row["grad_subnormal"])
        print("  ".join(f"{str(cell):>10}" for cell in cells))
    if residual and theory.post_std[0] is None:
        print(f"mean field: no prediction for these blocks (weights of nonzero mean, or batch norm of one "
              f"sample); {result.seconds:.3f} s")
    elif residual:  # a stream has no fixed point: the prediction is the columns' (README's residual theory)
        print(f"mean field: per block, W1's sigma_w^2 = {number_text(theory.sigma_w2[-1])}, b1's sigma_b^2 = "
              f"{number_text(theory.sigma_b2)}, alpha = {number_text(c.branch_alpha)}; {result.seconds:.3f} s")
    elif read:  # each layer its own sigma_w^2: no one fixed point or depth scale
        print(f"mean field: each layer's sigma_w^2 = fan_in x mean(W^2) of its stored weights, from "
              f"{number_text(min(theory.sigma_w2))} to {number_text(max(theory.sigma_w2))}; {result.seconds:.3f} s")
    else:
        print(f"mean field: sigma_w^2 = {number_text(theory.sigma_w2[-1])}, sigma_b^2 = {number_text(theory.sigma_b2)}, "
              f"q* = {number_text(theory.q_star)}, chi_1 = {number_text(theory.chi1)}, "
              f"depth scale = {number_text(theory.depth_scale)} layers; {result.seconds:.3f} s")
    for finding in record["diagnosis"]:
        print(f"{'warning' if finding['kind'] in WARNING_KINDS else 'note'}: {finding['message']}")
    return 0


def simulated(config: SimConfig, args: argparse.Namespace):
    """The simulation of ``config`` under ``--memory-limit-gib``: its estimate announced, its steps
    (the forward pass, then the backward pass, layer by layer) reported as progress."""
    from ..engine import simulate

    limit = memory_limit(args)
    progress = Progress("layer step", 2 * config.layers, announce(memory.simulation(config), limit))
    return simulate(config, limit, lambda event: progress.update(event.step))


# --- weights -------------------------------------------------------------------------------

FAN_RANGE = (1, 65536)  # of one matrix written by itself
# The flags of add_config_flags that one matrix takes (the others describe a network).
MATRIX_FIELDS = ("init", "seed", "dtype", "memory_limit_gib", *SCHEME_PARAMS)

def cmd_weights(args: argparse.Namespace) -> int:
    from ..engine import get_scheme

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
        print(f"wrote {config.layers} {'blocks' if config.residual != 'none' else 'layers'} of {config.init} to {out}")
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
