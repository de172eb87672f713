"""Parameter counts of every preset, and the published param_counts.json is today's.

After a deliberate change of a preset: rerun `python3 benchmarks/param_counts.py` (it rewrites
benchmarks/results/param_counts.json) and set its totals in EXPECTED.
"""

import json
from pathlib import Path

import param_counts
import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {  # total parameters per variant of benchmarks/param_counts.py
    "tiny": 2_498_485,
    "small": 6_924_389,
    "paper": 84_222_769,
    "paper_vistr_r50": 92_254_865,
}


@pytest.fixture(scope="module")
def counts():
    return {v: param_counts.count_parts(n, **o) for v, (n, o) in param_counts.VARIANTS.items()}


def test_every_preset_has_its_expected_parameter_count(counts):
    assert {variant: parts["total"] for variant, parts in counts.items()} == EXPECTED


def test_the_published_counts_are_those_of_the_code(counts):
    published = json.loads((ROOT / "benchmarks/results/param_counts.json").read_text())
    assert {k: v for k, v in published.items() if k != "meta"} == counts, (
        "stale: rerun python3 benchmarks/param_counts.py"
    )
    for parts in counts.values():
        assert sum(n for part, n in parts.items() if part != "total") == parts["total"]
