"""A checkpoint on SynthLive benchmarks it has not seen: AP and tracks per synth seed.

One SynthLive `default` test split holds 12 videos and about 22 target instances, so at
today's level one target more or less tracked halves or doubles AP: the same model scores
0.8-2.1 % on the test splits of four synth seeds. A change judged on one split is judged on
noise. This generates the benchmarks of `--seeds` (each once, under `--cache`), predicts each
test split with `vois infer`'s code and scores it as the `evaluate` stage does, then adds
`ap_breakdown.py`'s track figures (frame IoU, best track per target, perfect-linking AP):

    python3 benchmarks/unseen_seeds.py runs/train/last.pt [--seeds 1 2 3] [--rescore] [--jobs 2]

`--rescore` predicts with today's inference fields of the checkpoint's preset (as
`rescore.py`); without it, with those the checkpoint was trained with. Per seed and as the
mean and standard deviation over seeds, plus the best track pooled over every target, to
benchmarks/results/unseen_seeds.json (`--out`). Each split is scored with one torch thread;
`--jobs` scores that many splits at once, in processes of their own (the figures are the same).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from ap_breakdown import tracks
from provenance import finish, provenance
from rescore import rescored_config

from vois_cli.atomic import write_json
from vois_cli.checkpoint import load_checkpoint, save_checkpoint
from vois_cli.data.synth import write_benchmark
from vois_cli.evaluation import score_files
from vois_cli.infer_files import infer_split

HEADLINE = ("AP", "AP50", "AP75", "AR10")


def benchmark(cache: Path, preset: str, seed: int) -> Path:
    """The SynthLive benchmark of `preset` and `seed` under `cache`, generated if missing."""
    root = cache / f"{preset}-{seed}"
    if not (root / "synth.json").is_file():
        write_benchmark(root, preset, seed, workers=2)
    return root


def seed_figures(checkpoint: Path, root: Path, out: Path) -> dict:
    """Predict and score `root`'s test split into `out`; headline metrics and track figures."""
    torch.set_num_threads(1)
    out.mkdir(exist_ok=True)
    predictions = out / "predictions.json"
    infer_split(root, "test", checkpoint, predictions, "cpu")
    metrics = score_files(
        root / "annotations" / "test.json", predictions, out / "metrics.json"
    ).metrics
    figures = tracks(root, "test", predictions)
    return {
        **{k: metrics[k] for k in HEADLINE},
        "frame": figures["frame"]["mean"],
        "best_track": figures["best_track"]["mean"],
        "targets": figures["best_track"]["n"],
        "tracked": round(figures["best_track"]["at_0.5"] * figures["best_track"]["n"]),
        "oracle_AP": figures["oracle_metrics"]["AP"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--preset", default="default", help="SynthLive preset")
    parser.add_argument("--rescore", action="store_true", help="today's inference fields")
    parser.add_argument("--cache", type=Path, default=Path("data/unseen"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/unseen_seeds.json"))
    parser.add_argument("--jobs", type=int, default=1, help="splits scored at once")
    args = parser.parse_args(argv)
    meta = provenance(vars(args), torch_threads=1)  # each split's, in its own process
    trained = load_checkpoint(args.checkpoint)
    config = rescored_config(trained["config"]) if args.rescore else trained["config"]
    # one folder per checkpoint file, named after its path: two checkpoints of one folder,
    # scored at once, must not write each other's predictions
    name = "-".join(args.checkpoint.resolve().with_suffix("").parts[1:])
    work = args.cache / "predictions" / name
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "last.pt"
    save_checkpoint(copy, config=config, model=trained["model"])
    roots = [benchmark(args.cache, args.preset, seed) for seed in args.seeds]
    outs = [work / str(seed) for seed in args.seeds]
    per_seed = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        figures = pool.map(seed_figures, [copy] * len(roots), roots, outs)
        for seed, seed_result in zip(args.seeds, figures, strict=True):
            per_seed[seed] = seed_result
            print(seed, json.dumps({k: round(v, 4) for k, v in seed_result.items()}))
    rows = list(per_seed.values())
    summary = {}
    for k in (*HEADLINE, "frame", "best_track"):
        values = [r[k] for r in rows]
        summary[k] = {
            "mean": round(float(np.mean(values)), 4),
            "std": round(float(np.std(values)), 4),
        }
    total = sum(r["targets"] for r in rows)
    summary["best_track_pooled"] = round(
        sum(r["best_track"] * r["targets"] for r in rows) / total, 4
    )
    summary["tracked"] = f"{sum(r['tracked'] for r in rows)} of {total}"
    print(json.dumps(summary))
    result = {"meta": finish(meta), "seeds": per_seed, "summary": summary}
    write_json(args.out, result, indent=1)
    return result


if __name__ == "__main__":
    main()
