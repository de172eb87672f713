"""Every stage declares the library modules it imports, so a code change re-runs it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

# Import the stage's vois_cli modules and print every vois_cli source file that got loaded.
PROBE = """
import ast, importlib, pathlib, sys
for node in ast.walk(ast.parse(pathlib.Path(sys.argv[1]).read_text())):
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vois_cli"):
        importlib.import_module(node.module)
for name, module in sorted(sys.modules.items()):
    if name.startswith("vois_cli") and not module.__file__.endswith("__init__.py"):
        print(pathlib.Path(module.__file__).resolve().relative_to(pathlib.Path.cwd()).as_posix())
"""


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_every_library_module_it_imports(stage):
    deps = [d for d in STAGES[stage]["deps"] if not d.startswith("${")]
    script = next(d for d in deps if d.startswith("stages/"))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, script], cwd=REPO, capture_output=True, text=True, check=True
    )
    imported = run.stdout.split()
    assert imported, "the probe saw no vois_cli import"
    undeclared = [f for f in imported if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert undeclared == []


def test_pretrain_reads_every_train_param_but_the_fine_tunings_own(stage_params):
    """`train.epochs` and the keys of `FINE_TUNING_ONLY` (the seed, the clips, the rates and
    their schedule) are the fine-tuning's own (the pretrain stage has `pretrain.seed`,
    `pretrain.clips_per_video` and `pretrain.epochs`, and the preset's rates), so a seed sweep
    or another fine-tuning reuses one pretrained model; every other `train` key reaches the
    pretrain config and must re-run it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    declared = STAGES["pretrain"]["params"]
    assert "train" not in declared
    train_keys = {p.split(".", 1)[1] for p in declared if p.startswith("train.")}
    own = {"epochs", *stage_params.FINE_TUNING_ONLY}
    assert train_keys == set(params["train"]) - own
