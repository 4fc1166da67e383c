"""The `initsim` command: the window with no subcommand, headless work with one.

Headless subcommands import only the engine; the app (and Qt) is imported only to open the window.
Bad input prints one line on stderr and exits with status 2.
"""

from .command import main

__all__ = ["main"]
