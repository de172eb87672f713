"""The one exception type for bad user input; the CLI turns it into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A user-facing input problem: which file, what is wrong with it, and what to do.

    Raised at the library's boundary (file loading and validation). Bugs stay ordinary
    exceptions so that they keep their traceback.
    """

    def __init__(self, path: str | Path | None, problem: str, fix: str):
        self.path, self.problem, self.fix = path, problem, fix
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{problem}; {fix}")
