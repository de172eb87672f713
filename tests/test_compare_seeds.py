"""benchmarks/compare_seeds.py: two sets of runs paired split by split."""

import json

import compare_seeds
import pytest


def _run(tmp_path, name, aps, splits=(0, 1, 2)):
    rows = {
        str(s): {k: 0.5 for k in compare_seeds.FIGURES} | {"AP": ap}
        for s, ap in zip(splits, aps, strict=True)
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"meta": {}, "seeds": rows}))
    return str(path)


def test_differences_of_the_run_means_per_split(tmp_path):
    before = [_run(tmp_path, "b0", [0.1, 0.2, 0.3]), _run(tmp_path, "b1", [0.3, 0.2, 0.1])]
    # the second after-run scored in two calls: splits 0-1, then split 2
    after = [
        _run(tmp_path, "a0", [0.3, 0.2, 0.5]),
        _run(tmp_path, "a1", [0.3, 0.4], (0, 1)) + "," + _run(tmp_path, "a1b", [0.5], (2,)),
    ]
    out = tmp_path / "out.json"
    result = compare_seeds.main(["--before", *before, "--after", *after, "--out", str(out)])
    assert json.loads(out.read_text())["figures"] == result["figures"]
    ap = result["figures"]["AP"]  # means 0.2, 0.2, 0.2 -> 0.3, 0.3, 0.5
    assert ap["per_split"] == [0.1, 0.1, 0.3]
    assert (ap["before"], ap["after"], ap["diff"]) == (0.2, 0.3667, 0.1667)
    assert ap["se"] == pytest.approx(0.0667, abs=1e-4)  # std 0.1155 over sqrt(3)
    assert ap["splits_up"] == 3 and ap["wilcoxon_p"] == 0.25  # exact: 2 / 2**3
    assert result["figures"]["frame"] | {"per_split": None} == {
        "before": 0.5, "after": 0.5, "diff": 0.0, "se": 0.0, "splits_up": 0,
        "wilcoxon_p": 1.0, "per_split": None,
    }  # fmt: skip


def test_only_shared_splits_count(tmp_path):
    before = [_run(tmp_path, "b", [0.1, 0.2, 0.3])]
    after = [_run(tmp_path, "a", [0.2, 0.2], (1, 2))]
    assert compare_seeds.paired(*[[compare_seeds.load_run(r)] for r in (before[0], after[0])])[
        "splits"
    ] == [1, 2]
    with pytest.raises(SystemExit, match="fewer than two splits"):
        compare_seeds.main(["--before", *before, "--after", _run(tmp_path, "c", [0.2], (2,))])
