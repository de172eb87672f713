"""Write docs/RESULTS.md and README's results table from the committed results files only.

    python3 benchmarks/report.py                     # regenerate both from the work tree
    python3 benchmarks/report.py --rev HEAD          # ... from the files committed at HEAD
    python3 benchmarks/report.py --check --rev HEAD  # exit 1 unless HEAD's two are what its
                                                     # results files give (tests run this)

Accuracy: benchmarks/results/experiments/*.json, one run each (record_experiment.py writes
them and documents the format). Rows group the runs by (benchmark, preset, variant) and
give mean ± std over their seeds of AP, AP50, AP75, AR1 and AR10 in percent and the commits
the runs were made at (the code they measured). docs/RESULTS.md holds every row; README,
between its `<!-- results -->` markers, the rows of each preset's current version (`TODAY`),
named after the paper's variants and beside the paper's LiveVideos figures.

Everything else: every other benchmarks/results/*.json is a section of its own: its `meta`
block (benchmarks/provenance.py) on one line, then its records as tables: each dict's
scalar fields are a record, records with the same fields share a table (a list of records,
like `{"rows": [{"stage": ..., "part": ..., "seconds": ..., "share": ...}]}`, is one table).

Nothing impossible is published: the report stops (exit 1, one line naming the file and
the value) on an AP/AR metric outside [0, 1] (-1, undefined, is allowed), a negative
`*overhead*`, a `<whole>_over_<part>` ratio below 1 (the whole faster than its part),
negative seconds (a `s`/`seconds` key), a `share` outside [0, 1] or shares of one stage
summing over 1, two runs of one seed in a row, or runs of one row whose params differ in
more than the seed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results -->", "<!-- /results -->"
COLUMNS = ("AP", "AP50", "AP75", "AR1", "AR10")
# A variant is `base[+tag...]`, base one of LABELS (record_experiment.py). A preset named here
# has changed since its first runs: its current version's runs carry this first tag (which
# record_experiment.py adds), and only they reach the README (earlier versions' rows stay in
# docs/RESULTS.md); any other preset's untagged runs do. A new version gets a new tag here.
TODAY = {"tiny": "extra144"}
LABELS = {
    "full": "full model (cross 3+4)",
    "no_target": "no target (Table 3)",
    "cross3": "cross stage 3 only (Table 4)",
    "cross4": "cross stage 4 only (Table 4)",
    "vistr_r50": "vistr_r50 baseline (Table 2)",
}
PAPER = {  # LiveVideos, paper Tables 2-4 (percent), in COLUMNS order
    "full": (38.8, 61.6, 41.8, 41.2, 46.6),
    "no_target": (26.7, 42.9, 28.1, 31.0, 38.0),
    "cross3": (37.5, 60.3, 41.0, 39.9, 44.6),
    "cross4": (37.7, 59.8, 41.4, 39.5, 45.5),
    "vistr_r50": (34.9, 54.1, 37.0, 38.3, 41.8),
}
METRIC = re.compile(r"^A[PR](\d+|s|m|l)?$")
OVER = re.compile(r"^\w+_over_\w+$")
SECONDS = re.compile(r"(^|_)(s|seconds)(_|$)")
NONE_YET = (
    "No accuracy experiment is recorded yet: record each finished run with "
    "`python3 benchmarks/record_experiment.py` (benchmarks/results/experiments/)."
)
# the files benchmarks/gpu_figures.sh writes
GPU_RESULTS = (
    "train_speed_gpu",
    "model_speed_gpu",
    "infer_speed_paper_gpu",
    "infer_speed_tiny_gpu",
    "cli_gpu_metrics",
)


class Impossible(ValueError):
    """A results file holds a value that cannot be true (or rows that cannot be averaged)."""


def check(name: str, obj, path: tuple[str, ...] = ()) -> None:
    """Raise Impossible for the first value of `obj` (file `name`) that cannot be true."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            check(name, value, (*path, str(key)))
        _check_shares(name, obj, path)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            check(name, value, (*path, str(i)))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and path:
        key, where = path[-1], ".".join(path)
        if METRIC.match(key) and obj != -1 and not 0 <= obj <= 1:
            raise Impossible(f"{name}: {where} = {obj} is outside [0, 1]")
        if "overhead" in key and obj < 0:
            raise Impossible(f"{name}: {where} = {obj} is a negative overhead")
        if OVER.match(key) and obj < 1:
            raise Impossible(f"{name}: {where} = {obj} < 1: the whole is faster than its part")
        if any(SECONDS.search(p) for p in path) and obj < 0:
            raise Impossible(f"{name}: {where} = {obj} is negative seconds")
        if key in ("share", "other_cpu") and not 0 <= obj <= 1:
            raise Impossible(f"{name}: {where} = {obj} is outside [0, 1]")


def _check_shares(name: str, obj: dict, path: tuple[str, ...]) -> None:
    """Shares of the rows of one stage (or of all rows) add up to at most 1."""
    for key, rows in obj.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            continue
        sums: dict = {}
        for row in rows:
            if isinstance(row.get("share"), (int, float)):
                sums[row.get("stage")] = sums.get(row.get("stage"), 0) + row["share"]
        for stage, total in sums.items():
            if total > 1 + 1e-3:
                where = ".".join((*path, key)) + (f" (stage {stage})" if stage else "")
                raise Impossible(f"{name}: shares of {where} sum to {total:.3f} > 1")


class Files:
    """The repository's files as in the work tree, or as committed at `rev`."""

    def __init__(self, rev: str | None = None):
        self.rev = rev

    def _git(self, *args: str) -> str | None:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return run.stdout if run.returncode == 0 else None

    def json_files(self, folder: Path) -> list[Path]:
        """The *.json files directly in `folder` (none where it is missing), sorted."""
        if self.rev is None:
            return sorted(folder.glob("*.json"))
        listed = self._git("ls-tree", "--name-only", f"{self.rev}:{folder.relative_to(ROOT)}")
        return sorted(folder / name for name in (listed or "").split() if name.endswith(".json"))

    def text(self, path: Path) -> str | None:
        """The file's text; None where it is missing."""
        if self.rev is None:
            return path.read_text() if path.is_file() else None
        return self._git("show", f"{self.rev}:{path.resolve().relative_to(ROOT)}")


def load_results(folder: Path = RESULTS, files: Files | None = None) -> dict[str, dict]:
    """{file name: content} of the results files directly in `folder`, checked."""
    files, results = files or Files(), {}
    for path in files.json_files(folder):
        results[path.name] = json.loads(files.text(path))
        check(path.name, results[path.name])
    return results


def load_experiments(folder: Path = RESULTS / "experiments", files: Files | None = None) -> list:
    """The recorded accuracy runs (each with its `file` name added), checked."""
    files, runs = files or Files(), []
    for path in files.json_files(folder):
        run = json.loads(files.text(path))
        missing = {"benchmark", "preset", "variant", "seed", "params", "metrics", "meta"} - set(run)
        missing |= {f"metrics.{c}" for c in COLUMNS if c not in run.get("metrics", {})}
        if missing:
            raise Impossible(f"experiments/{path.name}: no {', '.join(sorted(missing))}")
        check(f"experiments/{path.name}", run)
        runs.append(run | {"file": path.name})
    return runs


def _without_seed(params: dict) -> dict:
    return {k: {**v, "seed": None} if k == "train" else v for k, v in params.items()}


def group(runs: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """Runs by (benchmark, preset, variant), sorted by seed; one run per seed, same params."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["benchmark"], run["preset"], run["variant"]), []).append(run)
    for key, members in groups.items():
        members.sort(key=lambda r: r["seed"])
        row = " / ".join(key)
        for a, b in zip(members, members[1:], strict=False):
            if a["seed"] == b["seed"]:
                raise Impossible(
                    f"experiments: {row} has two runs of seed {a['seed']} ({a['file']}, "
                    f"{b['file']}): delete the stale one"
                )
        first = _without_seed(members[0]["params"])
        for other in members[1:]:
            if _without_seed(other["params"]) != first:
                raise Impossible(
                    f"experiments: {row}: {other['file']} differs from {members[0]['file']} "
                    "in params other than the seed: record it under another --variant"
                )
    return dict(sorted(groups.items()))


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def current(preset: str, variant: str) -> tuple[str, str] | None:
    """(base, further tags) of a run of `preset`'s current version (`TODAY`), else None."""
    base, *tags = variant.split("+")
    if preset in TODAY:
        if tags[:1] != [TODAY[preset]]:
            return None
        tags = tags[1:]
    return base, "+".join(tags)


def accuracy_table(runs: list[dict], today: bool = False) -> list[str]:
    """A row per (benchmark, preset, variant), or a line saying none yet. `today`: the README's
    rows only (`current`), in the paper's order, named after the paper's variants."""
    if not runs:
        return [NONE_YET]
    lines = [
        f"| benchmark | preset | variant | seeds | {' | '.join(COLUMNS)} | paper (LiveVideos) "
        "| commits |",
        "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|---|",
    ]
    rows = []
    for (benchmark, preset, variant), members in group(runs).items():
        base, tags = current(preset, variant) or (None, None)
        if today and base is None:
            continue
        label, order = variant, ()
        if today:
            label = LABELS.get(base, base) + (f", +{tags}" if tags else "")
            order = (benchmark, preset, [*LABELS, base].index(base), tags)
        paper = PAPER.get(base, ()) if tags == "" else ()
        cells = [_cell([r["metrics"][c] for r in members]) for c in COLUMNS]
        commits = ", ".join(sorted({r["meta"]["commit"][:7] for r in members}))
        row = [benchmark, preset, label, str(len(members)), *cells]
        row += [" / ".join(f"{v:.1f}" for v in paper), commits]
        rows.append((order, "| " + " | ".join(row) + " |"))
    return lines + [row for _, row in sorted(rows, key=lambda r: r[0])]


def runs_table(runs: list[dict]) -> list[str]:
    """One row per recorded run: where its numbers come from."""
    lines = [
        "| file | variant | seed | commit | command | train min | machine | other jobs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["benchmark"], r["preset"], r["variant"], r["seed"])):
        meta, machine = r["meta"], r["meta"].get("machine", {})
        where = f"{machine.get('cores', '?')} cores, {machine.get('device', '?')}"
        lines.append(
            f"| {r['file']} | {r['variant']} | {r['seed']} | {meta['commit'][:9]} | "
            f"`{_escape(meta['command'])}` | {_value(r.get('train_minutes'))} | {where} | "
            f"{_escape(str(machine.get('other_jobs', 'unknown')))} |"
        )
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,}"
    if isinstance(v, list):
        return ", ".join(map(_value, v))
    return _escape(str(v))


def _scalar(v) -> bool:
    return not isinstance(v, (dict, list)) or (
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)
    )


def records(obj, path: tuple[str, ...] = ()):
    """(label, {field: scalar}) for every dict in `obj` with scalar fields; list items share
    their list's label."""
    if isinstance(obj, dict):
        fields = {k: v for k, v in obj.items() if _scalar(v)}
        if fields:
            yield ".".join(path), fields
        for k, v in obj.items():
            if not _scalar(v):
                yield from records(v, (*path, str(k)))
    elif isinstance(obj, list):
        for item in obj:
            yield from records(item, path)


def tables(obj) -> list[str]:
    """Markdown tables of `obj`'s records: the lone records as one field | value table, then
    a table per set of fields shared by several records (transposed when wider than long)."""
    by_fields: dict[tuple[str, ...], list[tuple[str, dict]]] = {}
    for label, fields in records(obj):
        by_fields.setdefault(tuple(fields), []).append((label, fields))
    lone = [rows[0] for rows in by_fields.values() if len(rows) == 1]
    lines = []
    if lone:
        lines += ["| field | value |", "|---|---|"]
        for label, fields in lone:
            prefix = f"{label}." if label else ""
            lines += [f"| {prefix}{k} | {_value(v)} |" for k, v in fields.items()]
        lines.append("")
    for keys, rows in by_fields.items():
        if len(rows) == 1:
            continue
        labels = [label for label, _ in rows]
        grid = [[_value(fields[k]) for k in keys] for _, fields in rows]
        head = list(keys)  # the items of one list share its label
        if len(set(labels)) > 1 and len(keys) > len(rows):  # wider than long: transposed
            head, grid = ["", *labels], [[k, *col] for k, *col in zip(keys, *grid, strict=True)]
        elif len(set(labels)) > 1:
            head, grid = ["", *keys], [[lab, *row] for lab, row in zip(labels, grid, strict=True)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in grid]
        lines.append("")
    return lines


def provenance_line(meta: dict | None) -> str:
    """One sentence: commit, command, machine and how busy it was."""
    if not meta:
        return "Provenance not recorded (measured before results files carried a `meta` block)."
    m = meta.get("machine", {})
    dirty = f" with uncommitted changes to {', '.join(meta['dirty'])}" if meta.get("dirty") else ""
    threads = m.get("torch_threads") or m.get("OMP_NUM_THREADS") or "?"
    threads = f"{threads} torch thread{'' if str(threads) == '1' else 's'}"
    others = m.get("other_cpu")
    busy = (
        "other processes' share of the CPU not measured"
        if others is None
        else f"other processes used {100 * others:.0f} % of the CPU meanwhile"
    )
    inputs = ", ".join(f"{k}={_value(v)}" for k, v in meta.get("inputs", {}).items())
    return (
        f"Measured at commit `{meta.get('commit', '?')[:9]}`{dirty} on {meta.get('date', '?')} "
        f"by `{meta.get('command', '?')}` on {m.get('platform', '?')} with {m.get('cores', '?')} "
        f"cores and {threads}; {busy} (load average "
        f"{_value(m.get('load_before'))} before, {_value(m.get('load_after'))} after)"
        + (f"; inputs: {inputs}." if inputs else ".")
    )


def results_md(results: dict[str, dict], runs: list[dict]) -> str:
    text = [
        "# Results",
        "",
        "Generated by `python3 benchmarks/report.py` from the committed files in",
        "benchmarks/results/; do not edit by hand. Accuracy is YouTube-VIS AP/AR in percent,",
        "mean ± std over seeds (benchmarks/results/experiments/, one file per run), every",
        "version of every preset; the paper column is AP / AP50 / AP75 / AR1 / AR10 on",
        "LiveVideos (paper Tables 2–4), for the ordering, not for the level, beside the rows",
        "of each preset's current version, which the README shows (for `tiny` the variants",
        f"tagged `+{TODAY['tiny']}`). What the CPU runs of the `tiny` preset learn and miss:",
        "[training-notes.md](training-notes.md).",
        "",
        "## Accuracy",
        "",
        *accuracy_table(runs),
        "",
    ]
    if runs:
        text += ["Runs:", "", *runs_table(runs), ""]
    text += [
        "A `vistr_r50` row (paper Table 2) needs a GPU: a training step of it takes ~30 s on",
        "the 2-core CPU, ≈ 19 h per seed. What a perfect model could score at each preset's",
        "input size and feature stride is `mask_ceiling` below.",
        "",
        "## Speed, memory and other measurements (CPU unless stated)",
        "",
        "Each section is one file of benchmarks/results/, written by the script of its name.",
        "",
    ]
    missing = [name for name in GPU_RESULTS if f"{name}.json" not in results]
    if missing:
        text += [
            "Not measured yet, as they need a GPU (`bash benchmarks/gpu_figures.sh` writes them):",
            ", ".join(f"`{name}`" for name in missing) + ".",
            "",
        ]
    for name, obj in results.items():
        body = {k: v for k, v in obj.items() if k != "meta"} if isinstance(obj, dict) else obj
        meta = obj.get("meta") if isinstance(obj, dict) else None
        text += [f"### {Path(name).stem}", "", provenance_line(meta), "", *tables(body)]
    return "\n".join(text).rstrip("\n") + "\n"


def readme_with_table(readme: str | None, runs: list[dict]) -> str:
    """README text with the accuracy table between the results markers."""
    if not readme or START not in readme or END not in readme:
        raise Impossible(f"README.md: no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    table = "\n".join(accuracy_table(runs, today=True))
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--rev", help="read the files committed at this revision")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    files = Files(args.rev)
    try:
        runs = load_experiments(args.results / "experiments", files)
        readme = (files if args.check else Files()).text(args.readme)  # keep others' edits
        written = {
            args.out: results_md(load_results(args.results, files), runs),
            args.readme: readme_with_table(readme, runs),
        }
    except Impossible as e:
        sys.exit(f"report: {e}")
    for path, text in written.items():
        if args.check:
            if files.text(path) != text:
                sys.exit(f"report: {path} is stale: run python3 benchmarks/report.py")
        else:
            path.write_text(text)
    print(("up to date: " if args.check else "wrote ") + " and ".join(map(str, written)))


if __name__ == "__main__":
    main()
