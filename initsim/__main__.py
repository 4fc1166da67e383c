"""`python -m initsim`: the same as the `initsim` command."""

from .cli import main

raise SystemExit(main())
