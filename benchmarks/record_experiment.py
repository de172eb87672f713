"""Record one finished accuracy run as benchmarks/results/experiments/<name>.json.

Run it right after the run, from the workspace that holds its params.yaml and metrics.json
(after `dvc exp run ...`, or `dvc exp apply NAME` for a queued experiment), then commit the
file and regenerate the tables with `python3 benchmarks/report.py`:

    dvc exp run -S train.seed=1 -S model.use_target=false
    python3 benchmarks/record_experiment.py --command "dvc exp run -S train.seed=1 \\
        -S model.use_target=false" --train-minutes 16.2 --other-jobs "none"

The file (one per run; the report averages the runs of a row over their seeds):

    {"benchmark": "SynthLive default",   # --benchmark, else from params synth.preset
     "preset": "tiny",                   # params model.preset
     "variant": "no_target+extra144",    # --variant, else derived from params.model
     "seed": 1,                          # params train.seed
     "params": {...},                    # params.yaml with the --set overrides applied
     "metrics": {"AP": 0.0, ...},        # metrics.json as `vois eval` writes it, in [0, 1]
     "train_minutes": 16.2,              # --train-minutes (null when not given)
     "meta": {"commit": ..., "dirty": [...], "command": "dvc exp run ...",
              "recorded_by": "python3 benchmarks/record_experiment.py ...", "date": ...,
              "inputs": {"params": "params.yaml", "metrics": "metrics.json"},
              "machine": {"platform", "cores", "cpu", "torch", "device", "threads", "other_jobs"}}}

Variants derived from params.model: `full` (cross stages 3 and 4), `no_target`
(use_target false), `cross3`, `cross4`, `cross<...>`, `vistr_r50` (arch), then the tag of the
preset's current version where benchmarks/report.py's `TODAY` names one (`tiny`: e.g.
`no_target+extra144`), with `+two_stage` appended when two_stage is on. Any other change (an
option, more epochs) needs a name of its own that starts the same way, e.g. `--variant
full+extra144+12ep`: runs that share a row must differ only in the seed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import yaml
from provenance import ROOT, command, provenance
from report import TODAY, Impossible, check

OUT = ROOT / "benchmarks" / "results" / "experiments"


def derived_variant(model: dict) -> str:
    """The paper variant that params.model describes (see the module docstring)."""
    if model.get("arch", "vois") == "vistr_r50":
        base = "vistr_r50"
    elif not model.get("use_target", True):
        base = "no_target"
    else:
        stages = tuple(model.get("cross_stages", (3, 4)))
        base = "full" if stages == (3, 4) else "cross" + "".join(map(str, stages))
    tags = [TODAY.get(model.get("preset")), "two_stage" if model.get("two_stage") else None]
    return "+".join([base, *filter(None, tags)])


def apply_sets(params: dict, sets: list[str]) -> dict:
    """params with `section.key=value` overrides (values parsed as YAML, like `dvc exp -S`)."""
    params = json.loads(json.dumps(params))
    for item in sets:
        name, sep, value = item.partition("=")
        section, dot, key = name.partition(".")
        if not sep or not dot:
            raise SystemExit(f"record_experiment: --set {item!r}: write section.key=value")
        params.setdefault(section, {})[key] = yaml.safe_load(value)
    return params


def record(args: argparse.Namespace) -> tuple[Path, dict]:
    """The experiment file's path and content for the parsed command line."""
    params = apply_sets(yaml.safe_load(args.params.read_text()), args.set)
    metrics = json.loads(args.metrics.read_text())
    derived = derived_variant(params.get("model", {}))
    variant = args.variant or derived
    head = derived.removesuffix("+two_stage").split("+")  # the base and the version's tag
    if variant.split("+")[: len(head)] != head:
        raise SystemExit(
            f"record_experiment: params.yaml describes {derived}: name the run "
            f"{'+'.join(head)}[+...], not {variant}"
        )
    synth = params.get("synth", {}).get("preset")
    benchmark = args.benchmark or (f"SynthLive {synth}" if synth else None)
    if benchmark is None:
        raise SystemExit("record_experiment: no synth.preset in params: pass --benchmark")
    meta = provenance({"params": args.params, "metrics": args.metrics, "set": args.set})
    del meta["_start"]
    if args.commit:  # what differed from it then is not known now
        meta["commit"], meta["dirty"] = args.commit, None
    meta["recorded_by"] = command([__file__, *args.argv])
    meta["command"] = args.command
    meta["machine"] = {
        **{k: meta["machine"][k] for k in ("platform", "cores", "cpu", "torch")},
        "device": args.device or params.get("train", {}).get("device"),
        "threads": args.threads or os.environ.get("OMP_NUM_THREADS"),
        "other_jobs": args.other_jobs,
    }
    seed = params.get("train", {}).get("seed", 0)
    run = {
        "benchmark": benchmark,
        "preset": params.get("model", {}).get("preset"),
        "variant": variant,
        "seed": seed,
        "params": params,
        "metrics": metrics,
        "train_minutes": args.train_minutes,
        "meta": meta,
    }
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "-", f"{benchmark}-{run['preset']}-{variant}")
    try:
        check("experiment", run)
    except Impossible as e:
        raise SystemExit(f"record_experiment: {args.metrics}: {e}") from e
    return args.out / f"{slug.lower()}-seed{seed}-{meta['commit'][:7]}.json", run


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", required=True, help="the command that ran the experiment")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--metrics", type=Path, default=ROOT / "metrics.json")
    parser.add_argument("--set", action="append", default=[], help="section.key=value")
    parser.add_argument("--variant", help="row name (default: derived from params.model)")
    parser.add_argument("--benchmark", help="default: SynthLive <synth.preset>")
    parser.add_argument("--commit", help="the commit it ran from (default: HEAD)")
    parser.add_argument("--train-minutes", type=float)
    parser.add_argument("--device", help="default: params train.device")
    parser.add_argument("--threads", type=int, help="torch threads (default: $OMP_NUM_THREADS)")
    parser.add_argument("--other-jobs", default="unknown", help="what else ran on the machine")
    parser.add_argument("--out", type=Path, default=OUT, help="folder")
    parser.add_argument("--force", action="store_true", help="replace an existing record")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    path, run = record(args)
    if path.exists() and not args.force:
        raise SystemExit(f"record_experiment: {path} exists: pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
