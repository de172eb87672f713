"""Write docs/RESULTS.md from the DVC experiments and the benchmark figures.

Every row comes from `dvc exp show --json` (the workspace and every experiment with a
`metrics.json`), grouped by variant (arch, use_target, cross_stages, presets) and aggregated
over `train.seed` as mean ± std; the speed tables come from benchmarks/results/*.json.
Run the ablations first, e.g.

    for s in 0 1 2; do dvc exp run -S train.seed=$s; dvc exp run -S train.seed=$s \
        -S model.use_target=false; done

then `python3 benchmarks/report.py` (`--num N` when they ran from the last N commits: each
commit's own metrics.json counts too, so include only commits of the same code).
The accuracy table is also written into README.md between its `<!-- results -->` and
`<!-- /results -->` markers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results -->", "<!-- /results -->"
COLUMNS = ("AP", "AP50", "AP75", "AR1", "AR10")
PAPER = {  # LiveVideos, paper Tables 2-4 (percent)
    "full model (cross 3+4)": (38.8, 61.6, 41.8, 41.2, 46.6),
    "no target (Table 3)": (26.7, 42.9, 28.1, 31.0, 38.0),
    "cross stage 3 only (Table 4)": (37.5, 60.3, 41.0, 39.9, 44.6),
    "cross stage 4 only (Table 4)": (37.7, 59.8, 41.4, 39.5, 45.5),
    "vistr_r50 baseline (Table 2)": (34.9, 54.1, 37.0, 38.3, 41.8),
}


def variant(params: dict) -> str:
    model = params["model"]
    if model.get("two_stage"):
        return f"{variant({'model': {**model, 'two_stage': False}})} + two-stage queries"
    if model.get("arch") == "vistr_r50":
        return "vistr_r50 baseline (Table 2)"
    if not model.get("use_target", True):
        return "no target (Table 3)"
    stages = tuple(model.get("cross_stages", (3, 4)))
    if stages == (3, 4):
        return "full model (cross 3+4)"
    return f"cross stage {'+'.join(map(str, stages))} only (Table 4)"


def experiments(rev: str, num: int) -> list[tuple[dict, dict]]:
    """(params, metrics) of the workspace, the `num` commits from `rev` back and every
    finished experiment derived from them (a queued or running one shows its baseline's
    metrics, so it is left out)."""
    out = subprocess.run(
        ["dvc", "exp", "show", "--json", "--rev", rev, "--num", str(num)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = []

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data") or {}
            params = data.get("params", {}).get("params.yaml", {}).get("data")
            metrics = data.get("metrics", {}).get("metrics.json", {}).get("data")
            if params and metrics:
                found.append((params, metrics))
            for child in node.get("experiments") or []:
                walk(child)
            if (node.get("executor") or {}).get("state", "success") == "success":
                for child in node.get("revs") or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(out.stdout))
    return found


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def results_table(runs: list[tuple[dict, dict]]) -> list[str]:
    groups: dict[tuple, dict[int, dict]] = {}
    for params, metrics in runs:
        key = (
            params["synth"]["preset"],
            params["model"]["preset"],
            variant(params),
        )
        groups.setdefault(key, {})[params["train"]["seed"]] = metrics  # one run per seed
    lines = [
        f"| benchmark | preset | variant | seeds | {' | '.join(COLUMNS)} | paper (LiveVideos) |",
        "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    for (synth, preset, name), by_seed in sorted(groups.items()):
        cells = [_cell([m[c] for m in by_seed.values()]) for c in COLUMNS]
        paper = " / ".join(f"{v:.1f}" for v in PAPER.get(name, ()))
        lines.append(
            f"| SynthLive {synth} | {preset} | {name} | {len(by_seed)} | "
            + " | ".join(cells)
            + f" | {paper} |"
        )
    return lines


def speed_tables() -> list[str]:
    lines = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        lines += [f"### {path.stem}", "", "```json", path.read_text().strip(), "```", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--rev", default="HEAD", help="the newest commit experiments ran from")
    parser.add_argument("--num", type=int, default=1, help="commits from --rev back to include")
    args = parser.parse_args()
    table = "\n".join(results_table(experiments(args.rev, args.num)))
    text = [
        "# Results",
        "",
        "Generated by `python3 benchmarks/report.py` from `dvc exp show --json` and",
        "benchmarks/results/*.json; do not edit by hand. Metrics are YouTube-VIS AP/AR in",
        "percent, mean ± std over `train.seed`; the paper column is AP / AP50 / AP75 / AR1 /",
        "AR10 on LiveVideos (paper Tables 2–4), for the ordering, not for the level. What the",
        "CPU runs of the `tiny` preset learn and miss: [training-notes.md](training-notes.md).",
        "",
        "## Accuracy",
        "",
        table,
        "",
        "The `vistr_r50` row (paper Table 2) needs a GPU: a training step of it takes ~30 s on",
        "the 2-core CPU, ≈ 19 h per seed. What a perfect model could score at each preset's",
        "input size and feature stride is `mask_ceiling` below.",
        "",
        "## Speed and memory (CPU unless stated)",
        "",
        *speed_tables(),
    ]
    args.out.write_text("\n".join(text) + "\n")
    readme = ROOT / "README.md"
    head, rest = readme.read_text().split(START, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    print(f"wrote {args.out} and the table in {readme}")


if __name__ == "__main__":
    main()
