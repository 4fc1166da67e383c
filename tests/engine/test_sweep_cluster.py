"""Sweeps on a dask.distributed cluster: the same numbers as the local pool, and one-line errors
when dask is missing, no scheduler answers, a worker lacks initsim or workers die."""

import dataclasses
import importlib.util
import multiprocessing
import socket
import sys
from importlib.metadata import PackageNotFoundError
from types import SimpleNamespace

import pytest
from threadpoolctl import threadpool_info

from initsim.cli import main
from initsim.engine import ConfigError, SimConfig
from initsim.engine import sweep as W

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="dask.distributed is not installed (pip install -e '.[cluster]')")

SMALL = SimConfig(layers=8, width=32, batch=32, activation="tanh", init="xavier_normal")
SWEEP_FLAGS = ["sweep", "--layers", "8", "--width", "32", "--batch", "32", "--activation", "tanh",
               "--sigma-w2", "0.8,2.5", "--vary", "seed=0,1"]


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two worker processes for the module (starting one takes seconds)."""
    with W.cluster(W.LOCAL_SCHEDULER, workers=2) as executor:
        yield executor
    assert not multiprocessing.active_children()  # the workers were shut down with the cluster


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def same_numbers(a: W.SweepResult, b: W.SweepResult) -> bool:
    """Every field but the time it took."""
    return dataclasses.replace(a, seconds=0.0) == dataclasses.replace(b, seconds=0.0)


@needs_dask
def test_a_local_cluster_of_processes_gives_the_local_pools_numbers_exactly(cluster):
    configs = W.grid(SMALL, {"sigma_w2": [0.8, 2.5], "sigma_b2": [0.0, 0.05], "seed": [0, 1]})
    on_cluster = sorted(W.sweep(configs, cluster), key=lambda r: r.index)
    with W.local_pool(2) as pool:
        on_pool = sorted(W.sweep(configs, pool), key=lambda r: r.index)
    assert [r.index for r in on_cluster] == list(range(len(configs)))
    assert all(same_numbers(a, b) for a, b in zip(on_cluster, on_pool))
    assert on_cluster[0].measured_chi1 < 1 < on_cluster[-1].measured_chi1


@needs_dask
def test_the_local_clusters_workers_run_one_blas_thread(cluster):
    pools = cluster.submit(threadpool_info).result()
    assert pools and all(pool["num_threads"] == 1 for pool in pools)


@needs_dask
def test_cli_sweep_on_a_scheduler_writes_the_local_sweeps_csv(cluster, tmp_path, capsys):
    address = cluster._client.scheduler.address  # the executor's client: the fixture's scheduler
    assert main([*SWEEP_FLAGS, "--scheduler", address, "--out", str(tmp_path / "cluster.csv")]) == 0
    assert main([*SWEEP_FLAGS, "--workers", "2", "--out", str(tmp_path / "pool.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("[4/4]") == 2  # progress on stderr, as without a scheduler

    def numbers(name: str) -> list[list[str]]:  # every column but the last, seconds
        return [line.split(",")[:-1] for line in (tmp_path / name).read_text().splitlines()]

    assert numbers("cluster.csv") == numbers("pool.csv") and len(numbers("pool.csv")) == 5


@needs_dask
def test_a_point_whose_workers_died_is_one_line(cluster):
    from distributed.scheduler import KilledWorker

    address = cluster._client.scheduler.address
    with pytest.raises(ConfigError, match="scheduler: .*all those workers died"), W.cluster(address):
        raise KilledWorker("measure-1", SimpleNamespace(address="tcp://127.0.0.1:4000"), 3)  # a WorkerState


def test_a_worker_without_this_initsim_is_refused_before_any_task_goes_to_it():
    W.same_initsim({"tcp://127.0.0.1:4001": W.__version__, "tcp://127.0.0.1:4002": W.__version__})
    with pytest.raises(ConfigError, match="worker tcp://127.0.0.1:4002 has no initsim"):
        W.same_initsim({"tcp://127.0.0.1:4001": W.__version__,
                        "tcp://127.0.0.1:4002": PackageNotFoundError("initsim")})
    with pytest.raises(ConfigError, match="has initsim '0.0.1', not initsim"):
        W.same_initsim({"tcp://127.0.0.1:4001": "0.0.1"})


def refused(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_without_dask_a_cluster_sweep_is_one_line_saying_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # its import fails, as uninstalled
    monkeypatch.setitem(sys.modules, "distributed", None)
    out = tmp_path / "never.csv"
    err = refused(capsys, *SWEEP_FLAGS, "--scheduler", "local", "--out", str(out))
    assert "scheduler" in err and "install initsim[cluster]" in err and not out.exists()
    with pytest.raises(ConfigError, match="initsim\\[cluster\\]"), W.cluster("tcp://127.0.0.1:8786"):
        pass


@needs_dask
def test_a_scheduler_that_does_not_answer_is_one_line_after_the_timeout(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{unused_port()}"
    err = refused(capsys, *SWEEP_FLAGS, "--scheduler", address, "--connect-timeout", "0.5",
                  "--out", str(tmp_path / "never.csv"))
    assert f"no dask scheduler answered at '{address}' within 0.5 s" in err
    assert not (tmp_path / "never.csv").exists()
    with pytest.raises(ConfigError, match="not a scheduler's address"), W.cluster("no-port-here"):
        pass


def test_cluster_flags_that_do_not_go_together_are_refused(tmp_path, capsys):
    out = str(tmp_path / "never.csv")
    assert "--workers goes with" in refused(capsys, *SWEEP_FLAGS, "--scheduler", "tcp://127.0.0.1:1",
                                            "--workers", "2", "--out", out)
    assert "--connect-timeout goes with" in refused(capsys, *SWEEP_FLAGS, "--connect-timeout", "3",
                                                    "--out", out)
    assert "connect-timeout" in refused(capsys, *SWEEP_FLAGS, "--scheduler", "tcp://127.0.0.1:1",
                                        "--connect-timeout", "0", "--out", out)
