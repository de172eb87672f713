"""benchmarks/unseen_seeds.py: a checkpoint scored on the test splits of other synth seeds."""

import json

import unseen_seeds


def test_each_seed_is_made_once_scored_and_summarised(tiny_checkpoint, tmp_path):
    argv = [str(tiny_checkpoint), "--preset", "tiny", "--seeds", "3", "4"]
    argv += ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out.json")]
    result = unseen_seeds.main(argv)
    assert json.loads((tmp_path / "out.json").read_text())["summary"] == result["summary"]
    assert set(result["seeds"]) == {3, 4}
    targets = 0
    for seed, row in result["seeds"].items():
        test = json.loads((tmp_path / "cache" / f"tiny-{seed}/annotations/test.json").read_text())
        assert row["targets"] == len(test["annotations"])
        assert 0 <= row["tracked"] <= row["targets"] and 0 <= row["best_track"] <= 1
        targets += row["targets"]
    assert result["summary"]["tracked"].endswith(f" of {targets}")
    made = (tmp_path / "cache" / "tiny-3" / "synth.json").stat().st_mtime_ns
    again = unseen_seeds.main([*argv, "--jobs", "2"])  # the benchmarks are reused
    assert (tmp_path / "cache" / "tiny-3" / "synth.json").stat().st_mtime_ns == made
    assert again["seeds"] == result["seeds"]  # two splits at once: the same figures
