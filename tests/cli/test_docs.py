"""The README's tables are the registries': adding a scheme or an activation updates the docs."""

import re
from pathlib import Path

import pytest

from initsim.engine import ACTIVATIONS, SCHEMES
from initsim.engine.tables import activations_markdown, schemes_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def table(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name} table: .*? -->\n(.*?)\n<!-- end of {name} table -->", text, re.S)
    assert found, f"README has no {name} table"
    return found.group(1)


@pytest.mark.parametrize("name,generate,registry", [("schemes", schemes_markdown, SCHEMES),
                                                    ("activations", activations_markdown, ACTIVATIONS)])
def test_readme_table_is_the_registry(name, generate, registry):
    assert table(name) == generate(), f"run `initsim {name} --markdown` and paste it into the README"
    for key in registry:
        assert f"`{key}`" in table(name)
