"""`initsim train` and `initsim compare`: training runs and schemes side by side."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import memory
from ..engine.params import params_in_brackets
from .common import (Progress, SCHEME_PARAMS, UsageError, announce, config_from_args, integer_flag,
                     memory_limit, number_flag, number_text, param_flag_type, print_json)


TRAIN_FLAGS = ("task", "samples", "noise", "task_dim", "data_seed", "optimizer", "lr", "momentum",
               "steps", "train_batch")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """The task and optimizer flags of `train` and `compare --train`."""
    from ..engine.tasks import TASKS
    from ..engine.train import OPTIMIZERS, TRAIN_RANGES, TRAIN_REAL_RANGES, TrainConfig

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
    from ..engine.train import TrainConfig

    given = {name: getattr(args, name) for name in TRAIN_FLAGS if getattr(args, name) is not None}
    return TrainConfig(**given, **changes).validated()


def _refuse_flags(args: argparse.Namespace, command: str, hints: dict[str, str]) -> None:
    for name, hint in hints.items():
        if getattr(args, name, None) is not None:
            raise UsageError(f"{command}: --{name.replace('_', '-')} {hint}")


def _named(name: str, params: dict) -> str:
    return " ".join(filter(None, (name, params_in_brackets(dict(params)))))


def _network_text(c) -> str:
    """"8 x 64" of a plain network; of a residual one its blocks, their form and branch scale (and
    whether alpha is learned: ReZero's 0 is)."""
    if c.residual == "none":
        return f"{c.layers} x {c.width}"
    alpha = f"alpha {c.branch_scale}" + (" (learned)" if c.branch_scale == "0" else "")
    return (f"{c.layers} {c.residual}-norm residual blocks x {c.width} (expansion {c.expansion}, {alpha}"
            f"{', Fixup' if c.fixup else ''})")


def _rows(count: int, most: int = 20) -> list[int]:
    """At most ``most`` evenly spaced 1-based indices out of ``count``, the first and last included."""
    return sorted({int(i) for i in np.linspace(1, count, min(count, most)).round()})


def cmd_train(args: argparse.Namespace) -> int:
    from ..engine.train import Diverged, Setup, StepEvent, chance_of, run, verdict_of

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
              f"{f'{data.classes} classes' if data.classes else 'regression'}; {_network_text(c)} "
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
        cells = (event.step, number_text(event.loss), number_text(event.accuracy), number_text(event.probe.loss),
                 number_text(event.probe.accuracy), number_text(min(event.grad_data)), number_text(max(event.grad_data)),
                 number_text(min(event.update_data)), number_text(max(event.update_data)))
        print("  ".join(f"{str(cell):>10}" for cell in cells))
    steps = [e for e in events if isinstance(e, StepEvent)]
    diverged = events[-1] if events and isinstance(events[-1], Diverged) else None
    verdict = verdict_of([e.loss for e in steps], chance_of(data), t.flat_steps, diverged)
    if args.json:
        print_json({"config": c.to_dict(), "train": t.to_dict(), "data_digest": data.digest,
                    "steps": [e.record() for e in steps],
                    "diverged_at": diverged.step if diverged else None,
                    "diverged_layer": diverged.layer if diverged else None,
                    "status": verdict.kind, "verdict": verdict.message, "seconds": time.perf_counter() - started})
        return 0
    print(f"{verdict.message}; {time.perf_counter() - started:.2f} s")
    return 0


def _scheme_list(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``--init`` of compare: NAME[:PARAM=VALUE...],... e.g. zeros,normal:std=0.01,kaiming_normal."""
    from ..engine.errors import unknown_name

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
                params[key] = param_flag_type(key)(value)
            except argparse.ArgumentTypeError:
                raise UsageError(f"--init: {key} of {name} must be a number; got {value!r}") from None
        schemes.append((name, params))
    return schemes


def cmd_compare(args: argparse.Namespace) -> int:
    from ..engine.compare import CompareProgress, CompareResult, checked_inputs, compare_stream

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
    print(f"{len(runs)} schemes x {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}); {_network_text(c)} "
          f"{c.activation}, norm {c.norm}; median (min..max) over the seeds")
    for i, name in enumerate(names, 1):
        print(f"  [{i}] {name}")
    print("simulation: activation std | gradient std, per layer")
    print(f"{'layer':>6}  " + "  ".join(f"{f'[{i}] act':>10} {'grad':>10}" for i in range(1, len(runs) + 1)))
    for layer in _rows(c.layers):
        print(f"{layer:>6}  " + "  ".join(f"{number_text(r.activation_std.median[layer - 1]):>10} "
                                           f"{number_text(r.grad_std.median[layer - 1]):>10}" for r in runs))
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
    return f"{number_text(median)} ({number_text(low)}..{number_text(high)})" if math.isfinite(median) else "-"
