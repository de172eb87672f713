"""Wall time and peak memory of every `dvc repro` stage (goal: the default pipeline ≤ 30 min).

Runs `dvc repro --force --single-item STAGE` for each stage of dvc.yaml in order, in this
workspace with its params.yaml, and records each stage's wall time and the peak resident
memory of its processes; then checks that a plain `dvc repro` has nothing left to do.
Prints the figures and writes them to benchmarks/results/repro_time.json.

    python3 benchmarks/repro_time.py [--stages synth extract ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import yaml
from provenance import finish, provenance

ROOT = Path(__file__).resolve().parents[1]


def run_stage(stage: str) -> dict:
    """Run one stage in a child process; its peak RSS is the child's ru_maxrss (KiB on Linux)."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvp("dvc", ["dvc", "repro", "--force", "--single-item", stage])
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dvc repro of stage {stage} failed")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mib": usage.ru_maxrss // 1024,
    }


def main() -> None:
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=stages, choices=stages)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/repro_time.json")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    meta = provenance({"stages": args.stages, "params.yaml": params})
    figures = {}
    for stage in args.stages:
        figures[stage] = run_stage(stage)
        print(stage, figures[stage], flush=True)
    status = subprocess.run(
        ["dvc", "status"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {
        "meta": finish(meta),
        "stages": figures,
        "total_min": round(sum(f["wall_s"] for f in figures.values()) / 60, 1),
        "peak_rss_mib": max(f["peak_rss_mib"] for f in figures.values()),
        "dvc_status_after": status,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"total {result['total_min']} min, peak RSS {result['peak_rss_mib']} MiB; dvc status: "
        f"{status or 'clean'}"
    )


if __name__ == "__main__":
    main()
