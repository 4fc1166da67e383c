"""Sweeps: many configs simulated as independent tasks on any `concurrent.futures.Executor`.

`sweep` submits one task per config to the executor the caller passes (by default a local process
pool) and yields each small `SweepResult` as its task finishes. Any executor with that interface
runs the same sweep: a thread pool, a process pool, dask.distributed's `Client.get_executor()`
(`cluster` opens one, for the CLI's ``--scheduler``), or a Ray adapter (see the README). A task is
the module-level function `measure(index, config)`, so it pickles by reference, and its result is a
few hundred numbers.

What a sweep measures: the depth over which the gradient's variance changes by a factor e, from a
least-squares line through ln Var(dL/dh_l) over the layers, beside the theory's 1 / |ln chi_1|.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import dataclasses
import importlib.metadata
import io
import itertools
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .. import __version__
from . import memory
from .checks import listed, number_in
from .config import SimConfig
from .errors import ConfigError, shown, unknown_name
from .memory import DEFAULT_MEMORY_LIMIT
from .simulate import simulate
from .theory import config_at, config_sigmas, depth_scale

SIGMA_AXES = ("sigma_w2", "sigma_b2")
_PARAMS_OF = {"init": "init_params", "activation": "activation_params", "bias_init": "bias_params"}
_POLL_SECONDS = 0.1  # how often a waiting sweep checks should_stop


@dataclass(frozen=True)
class SweepResult:
    index: int  # position of the config in the list given to `sweep`
    config: SimConfig
    sigma_w2: float  # the hidden layers' fan_in E[W^2] and E[b^2]
    sigma_b2: float
    pre_std: tuple[float, ...]  # per layer, measured
    grad_std: tuple[float, ...]
    measured_chi1: float  # per-layer factor of the gradient variance, from the fitted line
    measured_depth_scale: float
    theory_chi1: float | None  # None with a normalization (no prediction)
    theory_depth_scale: float | None
    theory_pre_std: tuple[float, ...]  # per layer, the mean-field prediction
    theory_grad_std: tuple[float | None, ...]
    seconds: float

    def record(self) -> dict[str, Any]:
        """The scalar results, one flat row (the CLI's CSV columns)."""
        return {"index": self.index, "sigma_w2": self.sigma_w2, "sigma_b2": self.sigma_b2,
                "measured_chi1": self.measured_chi1, "theory_chi1": self.theory_chi1,
                "measured_depth_scale": self.measured_depth_scale,
                "theory_depth_scale": self.theory_depth_scale,
                "output_pre_std": self.pre_std[-1], "input_grad_std": self.grad_std[0],
                "seconds": self.seconds}


def fitted_chi1(grad_std: Sequence[float]) -> float:
    """exp of the slope of ln Var(grad) against the layer index, over the layers where the gradient
    is finite and nonzero (the gradient flows from the last layer to the first, so a per-layer
    factor chi shows as Var_l ~ chi^(L - l)). NaN with fewer than two such layers."""
    variance = np.square(np.asarray(grad_std, np.float64))
    layers = np.arange(variance.size)
    usable = np.isfinite(variance) & (variance > 0)
    if usable.sum() < 2:
        return math.nan
    slope = np.polyfit(layers[usable], np.log(variance[usable]), 1)[0]
    return float(np.exp(-slope))


def measure(index: int, config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> SweepResult:
    """One task: simulate ``config`` and summarize it."""
    result = simulate(config, memory_limit)
    grad_std = tuple(b.grad.std for b in result.backward)
    chi = fitted_chi1(grad_std)
    sigma_w2, sigma_b2 = config_sigmas(result.config)
    theory = result.theory
    return SweepResult(index, result.config, sigma_w2, sigma_b2,
                       tuple(f.pre.std for f in result.forward), grad_std, chi, depth_scale(chi),
                       theory.chi1, theory.depth_scale, theory.pre_std, theory.grad_std, result.seconds)


def grid(base: SimConfig, axes: Mapping[str, Sequence[Any]]) -> list[SimConfig]:
    """Every combination of the axes' values (the last axis varying fastest), validated.

    An axis is a SimConfig field (``init``, ``layers``, ``seed``, ...) or ``sigma_w2`` / ``sigma_b2``,
    which move the config to that point of the phase diagram (`theory.config_at`); a sigma not
    given keeps the base config's own. A config's position in the list is its C-order grid index:
    ``np.unravel_index(result.index, [len(v) for v in axes.values()])`` places a sweep's result."""
    names = list(axes)
    known = {f.name for f in dataclasses.fields(SimConfig)} | set(SIGMA_AXES)
    for name in names:
        if name not in known:
            raise unknown_name("axis", name, known)
    values_of = {name: listed(name, axes[name]) for name in names}
    for name in set(SIGMA_AXES) & set(names):
        values_of[name] = [number_in(name, value, 0.0) for value in values_of[name]]
    configs = []
    for values in itertools.product(*(values_of[name] for name in names)):
        point = dict(zip(names, values))
        fields = {k: v for k, v in point.items() if k not in SIGMA_AXES}
        for name, params in _PARAMS_OF.items():  # a new scheme or activation starts from its defaults
            if name in fields and params not in fields:
                fields[params] = {}
        config = base.replace(**fields)
        if any(name in point for name in SIGMA_AXES):
            if config.residual != "none":
                raise ConfigError("residual", "the sigma_w2 and sigma_b2 axes place plain layers on the phase "
                                  "diagram; residual blocks have no depth scale to measure (choose residual none)")
            own_w2, own_b2 = config_sigmas(config.validated())
            config = config_at(config, point.get("sigma_w2", own_w2), point.get("sigma_b2", own_b2))
        configs.append(config.validated())
    return configs


def _one_blas_thread() -> None:
    """Worker initializer: parallelism comes from the tasks; a second BLAS thread per worker only
    competes for the cores, and OpenBLAS threads that lose that race slow down tenfold."""
    threadpool_limits(limits=1)


def cores() -> int:
    """The cores this process may run on: the local pool's default number of workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_pool(workers: int | None = None) -> cf.ProcessPoolExecutor:
    """The default executor: ``workers`` processes (default: one per core), each with one BLAS
    thread, started with "spawn", which is safe from a program that runs threads (a GUI)."""
    return cf.ProcessPoolExecutor(max_workers=workers or cores(), initializer=_one_blas_thread,
                                  mp_context=multiprocessing.get_context("spawn"))


def dask_setup(worker: object) -> None:
    """dask's preload hook, run in each worker of `cluster`'s LocalCluster as it starts: one BLAS
    thread, as `local_pool`'s workers, and Ctrl+C left to the sweep's own process, which cancels
    the tasks and closes the cluster (a worker that took it died with a traceback on the terminal)."""
    _one_blas_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _interrupt_ignored() -> Iterator[None]:
    """Ctrl+C ignored while dask starts its worker processes, which inherit that: a worker still
    importing takes no KeyboardInterrupt (its traceback on the terminal, a cluster that cannot
    close). A blocked signal would be kept for later, but dask's threads, which spawn the workers,
    do not keep the block. Off the main thread, Ctrl+C is not this code's to handle: nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _UnwantedResults(logging.Filter):
    """Drops tornado's log of races in dask's ClientExecutor (distributed 2026.8), all about results
    the sweep no longer wants, when its futures are cancelled: a task that finished meanwhile (the
    result set on a cancelled future), one cancelled as its result was fetched (CancelledError),
    one fetched as the client closed (CommClosedError). Tracebacks after Ctrl+C that say nothing
    went wrong (3 runs in 20 stopped a 400-point sweep so)."""

    def __init__(self, closed: type[Exception]) -> None:
        super().__init__()
        self.raised = (cf.InvalidStateError, cf.CancelledError, closed)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, self.raised):
            return True
        frames = traceback.extract_tb(error.__traceback__)
        return not any(frame.name == "_cascade_future" for frame in frames)


def same_initsim(versions: Mapping[str, str | Exception]) -> None:
    """ConfigError("scheduler") unless every worker (address: its initsim version, or the error
    looking it up) has this initsim: a worker without it cannot read a task, drops out of the
    cluster, and the sweep would wait for ever."""
    for worker, version in versions.items():
        if version != __version__:
            found = "no initsim" if isinstance(version, Exception) else f"initsim {shown(version)}"
            raise ConfigError("scheduler", f"worker {worker} has {found}, not initsim {__version__}: "
                                           f"install this version on the cluster's workers")


CONNECT_SECONDS = 10.0  # how long `cluster` waits for a dask scheduler to answer
LOCAL_SCHEDULER = "local"


@contextlib.contextmanager
def cluster(scheduler: str, workers: int | None = None,
            connect_seconds: float = CONNECT_SECONDS) -> Iterator[cf.Executor]:
    """An executor on a dask.distributed cluster, for `sweep`, closed on leaving.

    ``scheduler``: a running scheduler's address (``tcp://host:8786``), or "local" to start a
    LocalCluster of ``workers`` worker processes (default: one per core) with one thread and one
    BLAS thread each, as `local_pool` (shut down on leaving). dask is imported only here.
    ConfigError("scheduler") when dask.distributed is not installed, the address is not one, no
    scheduler answers within ``connect_seconds``, a worker has not this initsim (`same_initsim`),
    or, from the sweep inside, when workers died running a point (out of memory, killed)."""
    with contextlib.ExitStack() as stack:
        try:
            from dask.distributed import Client, LocalCluster
            from distributed.comm import CommClosedError
            from distributed.comm.addressing import get_address_host_port
            from distributed.scheduler import KilledWorker
        except ImportError as exc:
            raise ConfigError("scheduler", "a sweep on a cluster needs dask.distributed: "
                                           "install initsim[cluster]") from exc
        if scheduler == LOCAL_SCHEDULER:
            with _interrupt_ignored():
                scheduler = stack.enter_context(LocalCluster(
                    n_workers=workers or cores(), threads_per_worker=1, processes=True,
                    dashboard_address="127.0.0.1:0", preload=[__name__],
                    silence_logs=logging.ERROR)).scheduler_address  # not the warnings of tasks cancelled on Ctrl+C
        try:  # refused before a Client exists: one that failed to start complains when collected
            get_address_host_port(scheduler)
        except ValueError as exc:
            raise ConfigError("scheduler", f"{shown(scheduler)} is not a scheduler's address "
                                           f"(tcp://host:port): {exc}") from exc
        unwanted, tornado_log = _UnwantedResults(CommClosedError), logging.getLogger("tornado.application")
        tornado_log.addFilter(unwanted)
        stack.callback(tornado_log.removeFilter, unwanted)  # once the client has closed
        try:
            client = stack.enter_context(Client(scheduler, timeout=connect_seconds, set_as_default=False))
        except Exception as exc:  # OSError when nothing answers in time, anything from a non-scheduler
            raise ConfigError("scheduler", f"no dask scheduler answered at {shown(scheduler)} within "
                                           f"{connect_seconds:g} s ({type(exc).__name__})") from exc
        same_initsim(client.run(importlib.metadata.version, "initsim", on_error="return"))
        try:
            yield client.get_executor(pure=False)  # pure=False: every task runs, none is taken from a cache
        except KilledWorker as exc:  # dask gave up on a point after workers died running it
            raise ConfigError("scheduler", str(exc)) from exc


def _next_finished(finished: queue.SimpleQueue[cf.Future],
                   should_stop: Callable[[], bool]) -> cf.Future | None:
    """The next future to finish, or None once ``should_stop()`` turns true (checked every 0.1 s)."""
    while not should_stop():
        try:
            return finished.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            pass
    return None


def sweep(configs: Sequence[SimConfig], executor: cf.Executor | None = None, workers: int | None = None,
          should_stop: Callable[[], bool] | None = None,
          memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Iterator[SweepResult]:
    """Simulate every config as its own task; yield the results as the tasks finish.

    ``executor``: any `concurrent.futures.Executor`; None starts a `local_pool` of ``workers``
    processes and shuts it down at the end. Stopping (``should_stop()`` turning true, checked at
    least every 0.1 s, or the caller closing the generator) cancels the tasks not yet started; a
    task already running finishes in its worker and is dropped. A task's exception is raised here.
    Before anything starts, ConfigError if running ``workers`` points at once (default: one per
    core) and keeping every point's result needs more than ``memory_limit`` bytes (`memory.sweep`).
    """
    should_stop = should_stop or (lambda: False)
    memory.check(memory.sweep(configs, workers or cores()), memory_limit,
                 "the points, workers, layers, width or batch")
    owned = executor is None
    executor = local_pool(workers) if owned else executor
    # Finished futures come through a queue, not cf.wait: a Ctrl+C inside cf.wait, which takes every
    # pending future's lock in turn, left some taken, and the executor's thread that then finished
    # or cancelled one of them waited for ever (a dask sweep of 400 points hung so). Every future is
    # kept to the end: a dask future let go runs its __del__ here, and a Ctrl+C there was lost.
    finished: queue.SimpleQueue[cf.Future] = queue.SimpleQueue()
    submitted: list[cf.Future] = []
    try:
        for index, config in enumerate(configs):
            submitted.append(executor.submit(measure, index, config, memory_limit))
            submitted[-1].add_done_callback(finished.put)
        for _ in submitted:
            future = _next_finished(finished, should_stop)
            if future is None:
                return
            yield future.result()
    finally:
        for future in submitted:  # those finished or running stay as they are
            future.cancel()
        if owned:
            executor.shutdown(wait=False, cancel_futures=True)


def results_csv(results: Sequence[SweepResult], fields: Sequence[str] = ()) -> str:
    """The results in grid order, one CSV row each: index, the config ``fields`` named (the axes
    of the sweep), then the columns of `SweepResult.record`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, result in enumerate(sorted(results, key=lambda r: r.index)):
        record = result.record()
        if number == 0:
            writer.writerow(["index", *fields, *list(record)[1:]])
        writer.writerow([record["index"], *(getattr(result.config, f) for f in fields), *list(record.values())[1:]])
    return out.getvalue()


def seed_configs(config: SimConfig, seeds: int) -> list[SimConfig]:
    """``config`` with seeds seed, seed + 1, ..., seed + seeds - 1."""
    return grid(config, {"seed": [config.seed + k for k in range(seeds)]})


# --- the finite-width band ----------------------------------------------------------------

BAND_QUANTILES = (16.0, 84.0)  # percentiles: the +-1 sigma range of a normal spread


@dataclass(frozen=True)
class Band:
    """One per-layer quantity over seeds: median and spread, beside the theory's curve."""

    median: np.ndarray  # (layers,)
    low: np.ndarray  # 16th percentile over seeds
    high: np.ndarray  # 84th percentile
    theory: np.ndarray  # NaN where no prediction applies

    @property
    def theory_outside(self) -> np.ndarray:
        """Layers where the theory's curve leaves the measured band: where theory and the finite
        network part."""
        return (self.theory < self.low) | (self.theory > self.high)


@dataclass(frozen=True)
class FiniteWidthBand:
    """The real network's spread around mean-field theory, from several seeds of the simulation:
    a width-W network drifts from the infinite-width curve by O(1/sqrt(W)) per layer."""

    config: SimConfig  # the first seed's
    seeds: int
    pre_std: Band
    grad_std: Band


def _band(values: np.ndarray, theory: Sequence[float | None]) -> Band:
    low, median, high = np.nanpercentile(values, (BAND_QUANTILES[0], 50.0, BAND_QUANTILES[1]), axis=0)
    return Band(median, low, high, np.array([math.nan if t is None else t for t in theory]))


def band_of(results: Sequence[SweepResult]) -> FiniteWidthBand:
    """The band of finished runs of one config over several seeds (e.g. from `sweep`)."""
    first = min(results, key=lambda r: r.index)
    with np.errstate(invalid="ignore"):
        pre = _band(np.array([r.pre_std for r in results]), first.theory_pre_std)
        grad = _band(np.array([r.grad_std for r in results]), first.theory_grad_std)
    return FiniteWidthBand(first.config, len(results), pre, grad)


def finite_width_band(config: SimConfig, seeds: int = 8, executor: cf.Executor | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      memory_limit: int = DEFAULT_MEMORY_LIMIT) -> FiniteWidthBand:
    """Simulate ``config`` with ``seeds`` seeds (through `sweep`) and return the band; stopped
    early, the band of the runs that finished (at least one is needed)."""
    results = list(sweep(seed_configs(config, seeds), executor, should_stop=should_stop,
                         memory_limit=memory_limit))
    if not results:
        raise ConfigError("seeds", "no run finished: the band needs at least one")
    return band_of(results)
