"""Console entry point: `vois` (and `python -m vois_cli`, which torchrun uses).

Command modules register themselves on `app` when imported; they import torch-heavy library
code inside their functions, so `vois --help` starts fast.
"""

from __future__ import annotations

import sys

from rich.console import Console

from vois_cli.cli import eval as _eval  # noqa: F401
from vois_cli.cli import extract as _extract  # noqa: F401
from vois_cli.cli import infer as _infer  # noqa: F401
from vois_cli.cli import preprocess as _preprocess  # noqa: F401
from vois_cli.cli import synth as _synth  # noqa: F401
from vois_cli.cli import train as _train  # noqa: F401
from vois_cli.cli.app import app
from vois_cli.errors import InputError

__all__ = ["app", "main"]


def main() -> None:
    """Run the CLI; a user-input error becomes one line on stderr and exit code 2."""
    try:
        app(prog_name="vois")
    except InputError as e:
        console = Console(stderr=True, soft_wrap=True, highlight=False)
        console.print(f"vois: error: {e}", markup=False)
        sys.exit(2)
