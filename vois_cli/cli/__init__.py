"""Console entry point: `vois` (and `python -m vois_cli`, which torchrun uses)."""

from __future__ import annotations

import sys

from rich.console import Console

from vois_cli.cli.app import app
from vois_cli.errors import InputError

# Command modules register themselves on `app` when imported; add one import per module.

__all__ = ["app", "main"]


def main() -> None:
    """Run the CLI; a user-input error becomes one line on stderr and exit code 2."""
    try:
        app(prog_name="vois")
    except InputError as e:
        Console(stderr=True, soft_wrap=True, highlight=False).print(f"vois: error: {e}", markup=False)
        sys.exit(2)
