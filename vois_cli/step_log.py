"""The per-step training log, `train_log.csv`: one row per optimizer step, for `dvc plots`."""

from __future__ import annotations

import csv
from pathlib import Path

from vois_cli.atomic import atomic_path


class StepLog:
    """`train_log.csv`, appended per step; rows past `keep_until` (a resumed step) are dropped."""

    def __init__(self, path: Path, keep_until: int):
        self.path = path
        if keep_until == 0 or not path.exists():
            self.path.unlink(missing_ok=True)
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) <= keep_until]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict[str, float]) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
