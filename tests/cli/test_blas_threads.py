"""The command line limits BLAS threads as the window does; a flag or the environment overrides it."""

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from initsim.cli import command, main
from initsim.cli.common import BLAS_ENVIRONMENT


def _blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


@pytest.fixture
def threads_seen(monkeypatch):
    """The BLAS thread count while `initsim simulate` runs, as the command sees it."""
    seen = []
    monkeypatch.setattr(command, "cmd_simulate", lambda args: seen.append(_blas_threads()) or 0)
    for name in BLAS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return seen


def test_one_thread_by_default_and_the_flag_sets_another(threads_seen):
    with threadpool_limits(2):  # around the command, where the machine's BLAS allows two
        outer = _blas_threads()
        assert main(["simulate"]) == 0
        assert main(["simulate", "--blas-threads", str(outer)]) == 0
        assert _blas_threads() == outer  # given back afterwards
    assert threads_seen == [1, outer]


@pytest.mark.parametrize("variable", BLAS_ENVIRONMENT)
def test_the_users_environment_is_left_as_it_is(threads_seen, monkeypatch, variable):
    monkeypatch.setenv(variable, "2")
    with threadpool_limits(2):  # around the command, where the machine's BLAS allows two
        outer = _blas_threads()
        assert main(["simulate"]) == 0
        assert main(["simulate", "--blas-threads", "1"]) == 0  # the flag still decides
    assert threads_seen == [outer, 1]


@pytest.mark.parametrize("value", ["0", "-3", "100000"])
def test_a_thread_count_out_of_range_is_one_line(threads_seen, capsys, value):
    assert main(["simulate", "--blas-threads", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--blas-threads" in err and threads_seen == []
