"""Wall time and peak memory of every `dvc repro` stage (goal: the default pipeline ≤ 30 min).

Runs `dvc repro --force --single-item STAGE` for each stage of dvc.yaml in order, in this
workspace with its params.yaml, and records each stage's wall time and the peak resident
memory of its processes; then checks that a plain `dvc repro` has nothing left to do.
Before and after the stages it times a reference workload, a bare `tiny` training step on a
fixed random clip: the same code has run 47 % slower on one day than on the day before, so
stage times from two runs compare only through their reference. Prints the figures and
writes them to benchmarks/results/repro_time.json.

    python3 benchmarks/repro_time.py [--stages synth extract ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
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


def reference_step_s(steps: int = 12) -> float:
    """Median wall seconds of a bare `tiny` training step (forward, loss, backward, AdamW) on
    one fixed random clip at the default run's input size, with torch's default threads.
    Run it in a process of its own (`measure_reference`): a stage forked after it would
    count its memory in the stage's peak RSS."""
    import torch
    from train_speed import WARMUP, bare_steps, random_clip

    from vois_cli.config import preset
    from vois_cli.models import build_model
    from vois_cli.optim import build_optimizer

    config = preset("tiny")
    torch.manual_seed(0)
    model, criterion, _ = build_model(config)
    optimizer = build_optimizer(model, config)
    clips = [random_clip(config, config.model.num_frames, 128, 228)] * (steps + WARMUP)
    cpu, clip = torch.device("cpu"), config.train.clip_max_norm
    times = bare_steps(model.train(), criterion, optimizer, clips, cpu, clip, amp=False)
    return round(statistics.median(wall for wall, _ in times[WARMUP:]), 4)


def measure_reference() -> float:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(reference_step_s)


def main() -> None:
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=stages, choices=stages)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/repro_time.json")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    meta = provenance({"stages": args.stages, "params.yaml": params})
    reference = {"before": measure_reference()}
    print("reference step", reference["before"], "s", flush=True)
    figures = {}
    for stage in args.stages:
        figures[stage] = run_stage(stage)
        print(stage, figures[stage], flush=True)
    reference["after"] = measure_reference()
    status = subprocess.run(
        ["dvc", "status"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {
        "meta": finish(meta),
        "stages": figures,
        "total_min": round(sum(f["wall_s"] for f in figures.values()) / 60, 1),
        "peak_rss_mib": max(f["peak_rss_mib"] for f in figures.values()),
        "reference_step_s": reference,
        "dvc_status_after": status,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"total {result['total_min']} min, peak RSS {result['peak_rss_mib']} MiB, reference step "
        f"{reference['before']} / {reference['after']} s; dvc status: {status or 'clean'}"
    )


if __name__ == "__main__":
    main()
