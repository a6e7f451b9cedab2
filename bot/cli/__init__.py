"""The ``craftlink`` command line: ``main`` builds the parser in ``bot/cli/main.py``; each further
subcommand (match, channels, staff, report) lives in its own module here and is wired there explicitly."""

from bot.cli.main import main

__all__ = ["main"]
