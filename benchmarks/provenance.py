"""Where a results file's figures come from: commit, command, machine, load and inputs.

Every file under benchmarks/results/ carries a `meta` block, started by `provenance()` before
a measurement and completed by `finish()` after it:

    "meta": {"commit": "<sha>", "dirty": ["vois_cli/engine.py"],
             "command": "python3 benchmarks/train_speed.py --repeats 3",
             "date": "2025-01-31T12:00:00Z", "inputs": {...the script's arguments...},
             "machine": {"platform": "x86_64 Linux", "cores": 2, "cpu": "AMD EPYC, AVX2",
                         "torch": "2.14.1",
                         "torch_threads": 1, "load_before": [1.1, 0.9, 0.5],
                         "load_after": [1.0, 1.0, 0.6], "other_cpu": 0.42},
             "wall_s": 123.4}

`dirty` lists the tracked library and benchmark code files that differed from the commit.
`other_cpu` is the share of the machine's CPU time that other processes used while the
figures were measured (Linux /proc/stat minus this process and its children): 0 is a quiet
machine; 0.5 means other jobs kept half of the cores busy, so times may be inflated.
benchmarks/report.py prints it beside each file's figures.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return run.stdout.rstrip("\n") if run.returncode == 0 else ""


def _busy_cpu_s() -> float | None:
    """Seconds of CPU time the whole machine spent busy since boot (None off Linux)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def commit() -> tuple[str, list[str]]:
    """HEAD's sha and the tracked library and benchmark code files that differ from it."""
    changed = _git("status", "--porcelain", "--untracked-files=no", "vois_cli", "benchmarks/*.py")
    return _git("rev-parse", "HEAD") or "unknown", sorted(line[3:] for line in changed.splitlines())


def command(argv: list[str]) -> str:
    """`python3 SCRIPT ARGS` with SCRIPT relative to the repository when it lies in it."""
    script = Path(argv[0]).resolve()
    name = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else argv[0]
    return shlex.join(["python3", name, *argv[1:]])


def provenance(inputs: dict, torch_threads: int | None = None) -> dict:
    """The `meta` block of a measurement about to start; pass it to `finish()` at the end."""
    sha, dirty = commit()
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = {
        "platform": f"{platform.machine()} {platform.system()}",
        "cores": os.cpu_count(),
        "cpu": _cpu(),
        "torch": _torch_version(),
        "torch_threads": torch_threads,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    return {
        "commit": sha,
        "dirty": dirty,
        "command": command(sys.argv),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {k: str(v) if isinstance(v, Path) else v for k, v in inputs.items()},
        "machine": machine,
        "_start": (time.perf_counter(), _busy_cpu_s(), _own_cpu_s()),
    }


def finish(meta: dict) -> dict:
    """`meta` completed with the load after the run, the others' CPU share and the wall time."""
    meta = dict(meta)
    start, busy, own = meta.pop("_start")
    wall = time.perf_counter() - start
    busy_now = _busy_cpu_s()
    others = None
    if busy is not None and busy_now is not None and wall > 0:
        spare = (busy_now - busy) - (_own_cpu_s() - own)
        others = round(min(1.0, max(0.0, spare / (wall * (os.cpu_count() or 1)))), 2)
    meta["machine"] = meta["machine"] | {
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "other_cpu": others,
    }
    meta["wall_s"] = round(wall, 1)
    return meta


def _cpu() -> str | None:
    """The CPU's model and its widest vector unit (None off Linux): torch picks its kernels by
    that unit, so a one-thread training run is bit-exact only on CPUs that share it."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    first = info.split("\n\n")[0].splitlines()
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first)}
    flags = fields.get("flags", "").split()
    unit = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', '?')}, {unit}"


def _torch_version() -> str | None:
    """The installed torch's version, without importing it."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
