"""params.yaml, read once per stage script."""

from pathlib import Path

import yaml

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
