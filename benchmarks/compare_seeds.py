"""Two sets of training runs compared split by split on the same SynthLive test splits.

`unseen_seeds.py` scores one checkpoint on the test splits of several synth seeds. Runs of
other training seeds are scored on the same splits, so a change is judged by pairing them:
per split, the mean over the runs after the change minus the mean over those before; then,
over the splits, the mean of those differences, its standard error, how many splits went up
and the Wilcoxon signed-rank p-value. Every run's mean over the splits can rise because one
or two splits did; this says so.

    python3 benchmarks/compare_seeds.py --before A0.json A1.json A2.json \
        --after B0.json B1.json B2.json [--out benchmarks/results/seed_comparison.json]

A run scored in two calls (splits 0-7, then 8-11) is its files joined by a comma. Only the
splits every run was scored on count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from provenance import finish, provenance
from scipy.stats import wilcoxon

from vois_cli.atomic import write_json

FIGURES = ("AP", "AP50", "AP75", "AR10", "frame", "oracle_AP", "best_track")


def load_run(files: str) -> dict[str, dict]:
    """{split: figures} of one run, its comma-joined `unseen_seeds.py` outputs merged."""
    splits = {}
    for name in files.split(","):
        splits.update(json.loads(Path(name).read_text())["seeds"])
    return splits


def paired(before: list[dict], after: list[dict]) -> dict:
    """Per figure: the split-by-split differences of the run means and their summary."""
    splits = sorted(set.intersection(*(set(run) for run in before + after)), key=int)
    if len(splits) < 2:
        raise SystemExit(
            "compare_seeds: the runs share fewer than two splits; score them on the same --seeds"
        )
    figures = {}
    for k in FIGURES:
        means = [
            [float(np.mean([run[s][k] for run in runs])) for s in splits]
            for runs in (before, after)
        ]
        diff = np.subtract(means[1], means[0])
        figures[k] = {
            "before": round(float(np.mean(means[0])), 4),
            "after": round(float(np.mean(means[1])), 4),
            "diff": round(float(diff.mean()), 4),
            "se": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4),
            "splits_up": int((diff > 0).sum()),
            "wilcoxon_p": round(float(wilcoxon(diff).pvalue), 4) if diff.any() else 1.0,
            "per_split": [round(float(d), 4) for d in diff],
        }
    return {"splits": [int(s) for s in splits], "figures": figures}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", nargs="+", required=True, help="one unseen_seeds.py output per run"
    )
    parser.add_argument("--after", nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/seed_comparison.json"))
    args = parser.parse_args(argv)
    meta = provenance(vars(args))
    result = paired([load_run(f) for f in args.before], [load_run(f) for f in args.after])
    for k, f in result["figures"].items():
        print(
            f"{k:10s} {f['before']:.4f} -> {f['after']:.4f}  diff {f['diff']:+.4f} ± {f['se']:.4f}"
            f"  up on {f['splits_up']} of {len(result['splits'])} splits  p {f['wilcoxon_p']:.3f}"
        )
    result = {"meta": finish(meta), **result}
    write_json(args.out, result, indent=1)
    return result


if __name__ == "__main__":
    main()
