"""`python -m initsim`: the same as the `initsim` command."""

from .cli import main

# Guarded: worker processes started with "spawn" (sweeps, bands) import the main module again.
if __name__ == "__main__":
    raise SystemExit(main())
