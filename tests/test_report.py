"""benchmarks/report.py and record_experiment.py: tables only from committed results files,
rows per variant with mean ± std over seeds, and impossible values refused."""

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import record_experiment
import report

ROOT = Path(__file__).resolve().parents[1]

PARAMS = """\
synth: {preset: default, seed: 0}
model: {preset: tiny, arch: vois, use_target: true, cross_stages: [3, 4]}
train: {epochs: 12, seed: 0, device: auto}
"""


def _record(tmp_path, ap, *options):
    """Record a run whose metrics are all `ap` through the helper's command line."""
    (tmp_path / "params.yaml").write_text(PARAMS)
    metrics = dict.fromkeys(report.COLUMNS, ap) | {"APm": -1.0, "num_videos": 12}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    args = ["--command", "dvc exp run", "--params", str(tmp_path / "params.yaml")]
    args += ["--metrics", str(tmp_path / "metrics.json"), "--out", str(tmp_path / "exp")]
    return record_experiment.main([*args, *options])


def _table_cells(lines):
    header, rule, *rows = lines
    assert header.startswith("| benchmark | preset | variant | seeds | AP | AP50 |")
    return {row.split(" | ")[2]: row.split(" | ")[3:5] for row in rows}


def test_rows_are_variants_with_mean_and_std_over_seeds(tmp_path):
    tag = report.TODAY["tiny"]
    _record(tmp_path, 0.5)
    _record(tmp_path, 0.7, "--set", "train.seed=1")
    _record(tmp_path, 0.2, "--set", "model.use_target=false")
    _record(tmp_path, 0.4, "--set", "model.cross_stages=[3]")
    _record(tmp_path, 0.3, "--set", "model.arch=vistr_r50")
    _record(tmp_path, 0.1, "--set", "model.two_stage=true")  # a deviation: its own row
    _record(tmp_path, 0.6, "--set", "train.epochs=36", "--variant", f"full+{tag}+36ep")
    runs = report.load_experiments(tmp_path / "exp")
    assert _table_cells(report.accuracy_table(runs)) == {
        f"full+{tag}": ["2", "60.0 ± 14.1"],
        f"no_target+{tag}": ["1", "20.0"],
        f"cross3+{tag}": ["1", "40.0"],
        f"vistr_r50+{tag}": ["1", "30.0"],
        f"full+{tag}+two_stage": ["1", "10.0"],
        f"full+{tag}+36ep": ["1", "60.0"],
    }
    assert {r["meta"]["command"] for r in runs} == {"dvc exp run"}


def test_the_readme_shows_each_presets_current_version_beside_the_paper(tmp_path, monkeypatch):
    tag = report.TODAY["tiny"]
    with monkeypatch.context() as earlier:
        earlier.setitem(report.TODAY, "tiny", "v1")
        _record(tmp_path, 0.1)  # a run of an earlier `tiny`: full+v1
    _record(tmp_path, 0.5)
    _record(tmp_path, 0.7, "--set", "train.seed=1")
    _record(tmp_path, 0.6, "--set", "train.epochs=36", "--variant", f"full+{tag}+36ep")
    _record(tmp_path, 0.2, "--set", "model.use_target=false")
    _record(tmp_path, 0.3, "--set", "model.preset=paper")  # a preset without versions: full
    runs = report.load_experiments(tmp_path / "exp")
    lines = report.accuracy_table(runs, today=True)
    assert [row.split(" | ")[1:5] for row in lines[2:]] == [
        ["paper", "full model (cross 3+4)", "1", "30.0"],
        ["tiny", "full model (cross 3+4)", "2", "60.0 ± 14.1"],
        ["tiny", "full model (cross 3+4), +36ep", "1", "60.0"],
        ["tiny", "no target (Table 3)", "1", "20.0"],
    ]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    full, no_target = "38.8 / 61.6 / 41.8 / 41.2 / 46.6", "26.7 / 42.9 / 28.1 / 31.0 / 38.0"
    ends = [f"| {paper} | {head.stdout[:7]} |" for paper in (full, full, "", no_target)]
    assert [row[-len(end) :] for row, end in zip(lines[2:], ends, strict=True)] == ends
    everything = report.results_md({}, runs)  # docs/RESULTS.md: every run, by its name
    assert "| full+v1 | 1 | 10.0 |" in everything and f"| full+{tag} | 2 |" in everything


def test_a_recorded_run_says_where_it_came_from(tmp_path):
    path = _record(tmp_path, 0.5, "--train-minutes", "16.5", "--other-jobs", "a queue run")
    run = json.loads(path.read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert run["meta"]["commit"] == head.stdout.strip()  # (unless someone committed meanwhile)
    tag = report.TODAY["tiny"]
    assert path.name == f"synthlive-default-tiny-full+{tag}-seed0-{head.stdout[:7]}.json"
    assert run["meta"]["recorded_by"].startswith("python3 benchmarks/record_experiment.py --")
    assert run["meta"]["machine"]["other_jobs"] == "a queue run"
    assert run["meta"]["machine"]["torch"] == importlib.metadata.version("torch")
    # the kernels' vector unit: one-thread training is bit-exact only where it is the same
    assert re.fullmatch(r".+, (AVX-512|AVX2|no AVX2)", run["meta"]["machine"]["cpu"])
    assert (run["train_minutes"], run["seed"], run["params"]["train"]["epochs"]) == (16.5, 0, 12)
    with pytest.raises(SystemExit, match="exists"):  # a second record of it is refused
        _record(tmp_path, 0.5)
    for wrong in ("no_target", "full", "full+36ep"):  # the base and the version's tag first
        expected = f"describes full+{tag}: name the run full+{tag}[+...], not {wrong}"
        with pytest.raises(SystemExit, match=re.escape(expected)):
            _record(tmp_path, 0.5, "--variant", wrong, "--force")
    with pytest.raises(SystemExit, match=r"AP = 1.5 is outside \[0, 1\]"):
        _record(tmp_path, 1.5, "--force")


def test_provenance_names_torch_in_a_process_that_never_imported_it():
    code = "import provenance, sys; print(provenance.provenance({})['machine']['torch'])"
    code += "; print('torch' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "benchmarks", capture_output=True, text=True
    )
    assert run.stdout.split() == [importlib.metadata.version("torch"), "False"], run.stderr


def test_runs_that_cannot_share_a_row_stop_the_report(tmp_path):
    first = _record(tmp_path, 0.5)
    shutil.copy(first, tmp_path / "exp" / "again.json")
    with pytest.raises(report.Impossible, match="two runs of seed 0"):
        report.group(report.load_experiments(tmp_path / "exp"))
    (tmp_path / "exp" / "again.json").unlink()
    _record(tmp_path, 0.5, "--set", "train.seed=1", "--set", "train.epochs=36")
    with pytest.raises(report.Impossible, match="params other than the seed"):
        report.group(report.load_experiments(tmp_path / "exp"))


@pytest.mark.parametrize(
    "content, problem",
    [
        ({"overhead": -0.853}, "overhead = -0.853 is a negative overhead"),
        ({"rows": [{"overhead_pct": -23.2}]}, "rows.0.overhead_pct = -23.2 is a negative"),
        ({"tiny": {"forward_over_video_swin": 0.52}}, "0.52 < 1: the whole is faster"),
        ({"metrics": {"AP50": 1.2}}, "metrics.AP50 = 1.2 is outside [0, 1]"),
        ({"AR10": -0.5}, "AR10 = -0.5 is outside [0, 1]"),
        ({"median_s": {"cli": -1.0}}, "median_s.cli = -1.0 is negative seconds"),
        ({"rows": [{"stage": "a", "share": 0.7}, {"stage": "a", "share": 0.6}]}, "sum to 1.300"),
        ({"meta": {"machine": {"other_cpu": 1.5}}}, "other_cpu = 1.5 is outside"),
    ],
)
def test_impossible_values_stop_the_report(tmp_path, content, problem):
    (tmp_path / "x.json").write_text(json.dumps(content))
    with pytest.raises(report.Impossible) as stopped:
        report.load_results(tmp_path)
    assert str(stopped.value).startswith("x.json: ") and problem in str(stopped.value)


def test_the_report_stops_with_one_line_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "infer_speed.json").write_text(json.dumps({"overhead": -0.853}))
    (tmp_path / "README.md").write_text(f"a\n{report.START}\nold\n{report.END}\nb\n")
    run = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "report.py", "--results", results,
         "--out", tmp_path / "RESULTS.md", "--readme", tmp_path / "README.md"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr == "report: infer_speed.json: overhead = -0.853 is a negative overhead\n"
    assert not (tmp_path / "RESULTS.md").exists() and "old" in (tmp_path / "README.md").read_text()


def test_possible_values_pass():
    report.check("x.json", {"APm": -1.0, "AP": 0.0, "ratio": 0.6, "a_over_b": 1.0, "share": 1})
    report.check("x.json", {"rows": [{"stage": "a", "share": 0.6}, {"stage": "b", "share": 0.6}]})


def test_without_experiments_the_table_says_none_is_recorded_yet(tmp_path):
    readme = f"# x\n{report.START}\n| old | table |\n{report.END}\nrest\n"
    written = report.readme_with_table(readme, [])
    assert written == f"# x\n{report.START}\n{report.NONE_YET}\n{report.END}\nrest\n"
    assert "| old |" not in report.results_md({}, [])


def test_any_results_file_becomes_a_section_with_its_provenance_and_rows():
    profile = {
        "meta": {"commit": "0123456789abc", "command": "python3 benchmarks/infer_profile.py",
                 "machine": {"cores": 2, "torch_threads": 1, "other_cpu": 0.25}},
        "rows": [{"stage": "before", "part": "decode", "seconds": 1.5, "share": 0.25},
                 {"stage": "after", "part": "decode", "seconds": 0.5, "share": 0.1}],
    }  # fmt: skip
    text = report.results_md({"infer_profile.json": profile, "old.json": {"x": {"y": 1}}}, [])
    section = text.split("### infer_profile\n\n", 1)[1].split("###", 1)[0]
    assert "`0123456789`" not in section and "`012345678`" in section
    assert "python3 benchmarks/infer_profile.py" in section and "used 25 % of the CPU" in section
    assert "| stage | part | seconds | share |\n|---|---|---|---|\n" in section
    assert "| before | decode | 1.5 | 0.25 |\n| after | decode | 0.5 | 0.1 |" in section
    old = text.split("### old\n\n", 1)[1]
    assert old.startswith("Provenance not recorded") and "| x.y | 1 |" in old


def test_committed_results_md_and_readme_table_are_what_the_report_writes():
    """A clean clone regenerates both from the committed files (and no impossible value)."""
    run = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "report.py", "--check", "--rev", "HEAD"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
