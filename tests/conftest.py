"""Fixtures shared by the inference tests (a real `tiny` model with random weights) and the
pipeline tests (`stages/params.py`), and `benchmarks/` on the import path so that tests import
the benchmark scripts by name."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from vois_cli.checkpoint import save_checkpoint
from vois_cli.config import preset
from vois_cli.models import build_model

REPO = Path(__file__).resolve().parents[1]
# the benchmark scripts import as modules in the tests, as they import their siblings
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture
def stage_params():
    """A fresh copy of `stages/params.py` (a test may replace its PARAMS)."""
    spec = importlib.util.spec_from_file_location("stage_params", REPO / "stages" / "params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of the `tiny` preset's network as built after `torch.manual_seed(0)`."""
    path = tmp_path_factory.mktemp("tiny_checkpoint") / "tiny.pt"
    torch.manual_seed(0)
    config = preset("tiny")
    model, _, _ = build_model(config)
    save_checkpoint(path, config=config.to_dict(), model=model.state_dict())
    return path
