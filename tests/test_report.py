"""benchmarks/report.py: the results table groups DVC runs by variant, one value per seed."""

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "report", Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"
)
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)


def _run(seed, ap, **model):
    params = {
        "synth": {"preset": "default"},
        "model": {"preset": "tiny", "arch": "vois", "use_target": True, "cross_stages": [3, 4]},
        "train": {"seed": seed},
    }
    params["model"].update(model)
    metrics = dict.fromkeys(report.COLUMNS, ap)
    return params, metrics


def test_rows_are_variants_with_mean_and_std_over_seeds():
    runs = [
        _run(0, 0.5),
        _run(1, 0.7),
        _run(1, 0.7),  # the workspace and its experiment: one run per seed
        _run(0, 0.2, use_target=False),
        _run(0, 0.4, cross_stages=[3]),
        _run(0, 0.3, arch="vistr_r50"),
        _run(0, 0.1, two_stage=True),  # a deviation: a row of its own, no paper figures
    ]
    header, rule, *rows = report.results_table(runs)
    assert header.startswith("| benchmark | preset | variant | seeds | AP |")
    cells = {row.split(" | ")[2]: row.split(" | ")[3:5] for row in rows}
    assert cells == {
        "full model (cross 3+4)": ["2", "60.0 ± 14.1"],
        "no target (Table 3)": ["1", "20.0"],
        "cross stage 3 only (Table 4)": ["1", "40.0"],
        "vistr_r50 baseline (Table 2)": ["1", "30.0"],
        "full model (cross 3+4) + two-stage queries": ["1", "10.0"],
    }
    assert rows[[r.split(" | ")[2] for r in rows].index("no target (Table 3)")].endswith(
        "| 26.7 / 42.9 / 28.1 / 31.0 / 38.0 |"
    )
