"""The architecture's contracts (pyproject.toml's [tool.importlinter]), checked with import-linter
on the source's imports: the engine imports neither Qt nor the app nor the command line; the app's
model imports no Qt; no view imports another; no package's modules import each other in a cycle
(imports under TYPE_CHECKING aside)."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_imports_keep_every_architecture_contract(capsys):
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert "BROKEN" not in report and code == 0, report
    assert report.count(" KEPT") == 4, report  # every contract was checked
