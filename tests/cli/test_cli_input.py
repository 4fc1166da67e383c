"""Malformed command lines: every one is refused with one line naming the flag, status 2, before
anything is computed or written."""

import argparse

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initsim.cli import main
from initsim.cli.command import build_parser
from initsim.cli.common import _INTEGER, _NUMBER


def refused(capsys, *argv):
    """The one line of stderr of a command that must exit with status 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("initsim: error:"), err
    return err


MATRIX = ("weights", "--fan-in", "3", "--fan-out", "3")


@pytest.mark.parametrize("argv,needle", [
    ((*MATRIX, "--seed", "-1000000000000000000000000000000"), "--seed: got -1000000000000000000000000000000"),
    ((*MATRIX, "--seed", "-1"), "--seed: got -1, expected an integer in [0, "),
    ((*MATRIX, "--dtype", "garbage"), "--dtype: unknown name 'garbage'"),
    ((*MATRIX, "--dtype", "float16"), "--dtype: unknown name 'float16'"),
    ((*MATRIX, "--bins", "18446744073709551616"), "--bins: got 18446744073709551616"),
    ((*MATRIX, "--bias-std", "3"), "--bias-std does not apply to one matrix"),
    ((*MATRIX, "--fan-in", "65537"), "--fan-in: got 65537"),
    (("simulate", "--memory-limit-gib", "inf"), "--memory-limit-gib: got inf"),
    (("simulate", "--memory-limit-gib", "1e308"), "--memory-limit-gib: got 1e+308"),
    (("simulate", "--width", "\u0663"), "--width: got '\u0663', expected an integer"),
    (("simulate", "--layers", "1_0"), "--layers: got '1_0'"),
    (("simulate", "--gain", "1e400", "--init", "xavier_normal"), "--gain: got '1e400', expected a finite number"),
    (("simulate", "--std", "\u0661.5", "--init", "normal"), "--std: got '\u0661.5'"),
    (("sweep", "--sigma-w2", "1:0:0"), "sigma_w2 count: got 0"),
    (("sweep", "--sigma-w2", "0:1:1000000000000"), "sigma_w2 count: got 1000000000000"),
    (("sweep", "--sigma-w2", "0:1"), "start:stop:count"),
    (("sweep", "--sigma-w2", "nan:1:3"), "sigma_w2: got nan"),
    (("sweep", "--vary", "layers=2,\u0663"), "layers: got '\u0663'"),
    (("compare", "--init", "zeros", "--seeds", "1000000000"), "--seeds: got 1000000000, expected an integer in [1, 32]"),
    (("theory", "--activation", "relu", "--sigma-w2", "1", "--depth", "\u0663"), "--depth: got '\u0663'"),
    (("train", "--lr", "nan"), "--lr: got nan"),
])
def test_malformed_numbers_are_one_line_naming_the_flag(tmp_path, capsys, argv, needle):
    out = tmp_path / ("w.npy" if argv[0] == "weights" else "out.csv")
    err = refused(capsys, *argv, "--out", str(out)) if argv[0] in ("weights", "sweep") else refused(capsys, *argv)
    assert needle in err
    assert not out.exists()


def test_the_message_is_one_line_of_readable_length(capsys):
    assert len(refused(capsys, "export", "--view", "1" * 5000)) < 600
    assert len(refused(capsys, "simulate", "--activation", "x" * 5000)) < 600
    assert "a b" in refused(capsys, "simulate", "a\nb")  # the rest of the line, not a second one


def test_a_matrix_takes_ascii_numbers_with_a_sign_and_its_dtype(tmp_path, capsys):
    out = tmp_path / "w.npy"
    assert main([*MATRIX, "--seed", "+5", "--dtype", "float64", "--init", "normal", "--std", "1E-2",
                 "--out", str(out)]) == 0
    w = np.load(out)
    assert w.dtype == np.float64 and w.shape == (3, 3) and np.abs(w).max() < 0.1


def _typed_flags() -> list[tuple[str, str, str]]:
    """(command, flag, "integer" or "number") of every flag that the checks' types read."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return [(name, action.option_strings[0], action.type.__name__)
            for name, command in commands.items() for action in command._actions
            if getattr(action.type, "__name__", "") in ("integer", "number")]


TYPED_FLAGS = _typed_flags()


def not_a_number(kind: str) -> st.SearchStrategy[str]:
    """Text that the flag's kind cannot read: any text but what ASCII spells as that kind."""
    grammar = _INTEGER if kind == "integer" else _NUMBER
    return st.text(max_size=12).filter(lambda t: not grammar.fullmatch(t))


@st.composite
def malformed(draw) -> list[str]:
    command, flag, kind = draw(st.sampled_from(TYPED_FLAGS))
    beyond = ["10" * 40, "-" + "9" * 30] if kind == "integer" else ["1e400", "-1e400", "nan", "inf", "-inf"]
    value = draw(not_a_number(kind) | st.sampled_from(beyond))
    return [command, f"{flag}={value}"]


def test_every_checked_flag_is_covered():
    flags = {flag for _, flag, _ in TYPED_FLAGS}
    assert {"--layers", "--seed", "--gain", "--memory-limit-gib", "--fan-in", "--depth", "--c0", "--grid",
            "--workers", "--samples", "--lr", "--seeds", "--every", "--blas-threads"} <= flags


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(malformed())
def test_any_malformed_number_is_refused_in_one_line(capsys, argv):
    refused(capsys, *argv)
