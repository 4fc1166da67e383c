"""The memory guard: the limit is the caller's, every entry checks its estimate before it allocates,
and the estimate is what a run really holds (peak RSS, measured in a fresh process)."""

import concurrent.futures as cf
import json
import math
import os
import platform
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from initsim.engine import ConfigError, SimConfig, initial_weights, memory, simulate, simulate_stream
from initsim.engine.compare import compare
from initsim.engine.configfile import config_from_toml
from initsim.engine.export import export_weights
from initsim.engine.sweep import sweep
from initsim.engine.train import TrainConfig, train

MIB = 2**20


def test_the_limit_is_no_field_of_a_config_and_old_files_load_without_it():
    assert "memory_limit" not in SimConfig().to_dict()
    config = config_from_toml("layers = 1000\nwidth = 4096\nbatch = 8192\nmemory_limit = " + "9" * 30 + "\n")
    assert (config.layers, config.width, config.batch) == (1000, 4096, 8192)
    assert SimConfig.from_dict({"layers": 3, "memory_limit": 10**30}) == SimConfig(layers=3)
    with pytest.raises(ConfigError) as error:  # the file's limit is not honoured: the default holds
        simulate(config)
    assert error.value.field == "memory"


def _allocated_while_refused(call) -> int:
    """Peak bytes numpy and Python allocated in ``call``, which must raise ConfigError("memory")."""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as error:
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert error.value.field == "memory", error.value


LARGE = SimConfig(layers=40, width=1024, batch=1024)  # about 330 MiB if it ran
BLOBS = TrainConfig(task="blobs", samples=20_000, task_dim=1024, steps=1)  # 470 MiB to generate


@pytest.mark.parametrize("entry", [
    lambda limit: simulate(LARGE, limit),
    lambda limit: next(simulate_stream(LARGE, None, limit)),
    lambda limit: initial_weights(LARGE, limit),
    lambda limit: export_weights(LARGE, Path("never-written.npz"), limit),
    lambda limit: train(SimConfig(layers=1, width=8), BLOBS, limit),
    lambda limit: compare([LARGE.replace(layers=2), LARGE.replace(layers=2, init="orthogonal")], range(32), None, limit),
    lambda limit: compare([SimConfig(layers=1, width=8)], [0], BLOBS, limit),
    lambda limit: next(sweep([LARGE.replace(seed=s) for s in range(4)], cf.ThreadPoolExecutor(1), 4,
                             memory_limit=limit)),
], ids=["simulate", "stream", "initial_weights", "export_weights", "train", "compare", "compare_train", "sweep"])
def test_every_entry_checks_its_estimate_before_it_allocates(entry):
    assert _allocated_while_refused(lambda: entry(64 * MIB)) < 4 * MIB


def test_the_estimate_counts_every_dimension():
    small = SimConfig(layers=10, width=256, batch=256)
    base = memory.simulation(small.validated())
    for changes in ({"layers": 20}, {"width": 512}, {"batch": 512}, {"dtype": "float64"},
                    {"input_width": 2048}, {"norm": "batch"}):
        grown = memory.simulation(small.replace(**changes).validated())
        assert grown.bytes > base.bytes, changes
    # One matrix's QR holds five float64 copies of it; a normal draw one.
    wide = SimConfig(layers=2, width=4096, batch=8)
    assert memory.simulation(wide.replace(init="orthogonal").validated()).bytes > \
        2 * memory.simulation(wide.validated()).bytes
    assert memory.weights_matrix("orthogonal", 65536, 65536, "float32").bytes > 32 * 2**30
    small = SimConfig(layers=1, width=1).validated()
    data = TrainConfig(task="blobs", samples=100_000, task_dim=4096, steps=1).validated()
    assert memory.training(small, data).bytes > 3 * 100_000 * 4096 * 8  # generated in float64


def test_a_range_of_points_is_counted_before_any_point_is_made():
    run = memory.simulation(SimConfig().validated())
    with pytest.raises(ConfigError, match=r"needs about .* GiB, over the limit of 2\.00 GiB \(reduce"):
        memory.check(memory.sweep_points(run, 10**12, 2, 20), memory.DEFAULT_MEMORY_LIMIT, "the points")
    assert memory.sweep_points(run, 10, 2, 20).bytes < memory.sweep_points(run, 10, 4, 20).bytes


def test_the_estimate_reads_as_a_line_and_a_limit_is_a_positive_number():
    estimate = memory.Estimate(int(3.2 * 2**30), 1e12, 0.0, "1000 layers x 4096 x 512")
    assert estimate.text() == "about 3.2 GiB and ~40 s (1000 layers x 4096 x 512)"
    assert estimate.worth_showing
    assert not memory.simulation(SimConfig(layers=2, width=8, batch=8).validated()).worth_showing
    assert memory.gib_limit(0.5) == 2**29
    for bad in (0, -1.0, math.inf, math.nan, True, "2"):
        with pytest.raises(ConfigError):
            memory.gib_limit(bad)


# --- measured: peak RSS of a run in a fresh process against its estimate ---------------------

MEASURE = """
import json, re, sys
import numpy as np
from initsim.engine import SimConfig, memory, simulate
from initsim.engine.train import TrainConfig, train

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

spec = json.loads(sys.argv[1])
config = SimConfig(**spec["config"]).validated()
if "train" in spec:
    settings = TrainConfig(**spec["train"]).validated()
    estimate = memory.training(config, settings)
    small = settings.replace(samples=64, task_dim=min(settings.task_dim, 8) if settings.task == "blobs" else 2)
    warm_up, run = (lambda: train(config.replace(layers=1, width=8), small),
                    lambda: train(config, settings, 2**40))
else:
    estimate = memory.simulation(config)
    warm_up, run = (lambda: simulate(config.replace(layers=2, width=64, batch=64, input_width=None)),
                    lambda: simulate(config, 2**40))
warm_up()  # the modules a run imports, and BLAS's own buffers, belong to the baseline
square = np.ones((512, 512), config.dtype)
square @ square
open("/proc/self/clear_refs", "w").write("5")  # the peak so far is forgotten
baseline = status("VmRSS")
run()
print(json.dumps({"peak": status("VmHWM") - baseline, "estimate": estimate.bytes}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists() or platform.libc_ver()[0] != "glibc",
                    reason="measures RSS through Linux's /proc; the engine steadies glibc's heap")
@pytest.mark.parametrize("spec", [
    {"config": {"layers": 20, "width": 1024, "batch": 1024}},
    {"config": {"layers": 4, "width": 2048, "batch": 1024, "init": "orthogonal"}},
    {"config": {"layers": 20, "width": 1024, "batch": 1024, "init": "lsuv"}},
    {"config": {"layers": 2, "width": 256}, "train": {"task": "blobs", "samples": 10_000, "task_dim": 1024,
                                                     "steps": 2}},
    {"config": {"layers": 10, "width": 1024}, "train": {"task": "spirals", "samples": 2000, "steps": 3,
                                                       "train_batch": 1024}},
    {"config": {"layers": 10, "width": 1024, "batch": 1024, "residual": "pre", "norm": "layer"}},
    {"config": {"layers": 6, "width": 512, "batch": 1024, "residual": "post", "expansion": 4, "input_width": 256,
                "norm": "rms", "activation": "gelu"}},
    {"config": {"layers": 8, "width": 1024, "residual": "pre", "norm": "layer"},
     "train": {"task": "spirals", "samples": 2000, "steps": 3, "train_batch": 1024}},
    {"config": {"layers": 4, "width": 512, "residual": "post", "norm": "rms", "expansion": 4, "activation": "gelu",
                "branch_scale": "0"},
     "train": {"task": "spirals", "samples": 4000, "steps": 3, "train_batch": 2048, "optimizer": "adam"}},
], ids=["plain", "orthogonal", "lsuv", "training_data", "training_network", "residual_pre",
        "residual_post_expanded", "training_residual_pre_layer", "training_residual_post_rms_expanded_rezero"])
def test_measured_peak_rss_is_within_15_percent_of_the_estimate(spec):
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(spec)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                            "MKL_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    peak, estimate = measured["peak"], measured["estimate"]
    assert estimate > 100 * MIB  # the run's own arrays dominate whatever else the process does
    assert abs(peak - estimate) <= 0.15 * estimate, f"peak {peak / MIB:.0f} MiB, estimate {estimate / MIB:.0f} MiB"
