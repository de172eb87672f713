"""Config overrides (`--set`, params.yaml) are checked against each field's type."""

import pytest
import yaml

from vois_cli.cli.train import parse_overrides
from vois_cli.config import preset


def test_a_learning_rate_written_without_a_dot_is_a_number():
    # YAML 1.1 (PyYAML) reads 6e-4 as a string; torch's AdamW then failed with a traceback
    fields = parse_overrides(["train.lr=6e-4", "train.lr_backbone=1.0e-5", "model.slot_gate=1"])
    assert fields["train"]["lr"] == "6e-4"
    config = preset("tiny", **fields)
    assert config.train.lr == 6e-4 and config.train.lr_backbone == 1e-5
    assert config.model.slot_gate == 1.0 and isinstance(config.model.slot_gate, float)


def test_params_yaml_values_become_the_fields_types():
    params = yaml.safe_load("model: {cross_stages: [3], similarity_stages: []}\ntrain: {lr: 3e-4}")
    config = preset("tiny", **params)
    assert config.model.cross_stages == (3,) and config.model.similarity_stages == ()
    assert config.train.lr == 3e-4


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.lr", "fast", "a number"),
        ("model.use_target", "yes", "true or false"),
        ("model.num_queries", 10.5, "an integer"),
        ("model.num_queries", True, "an integer"),
        ("model.cross_stages", [3.5], "a list of ints"),
        ("model.cross_stages", 3, "a list of ints"),
        ("model.video_window", [4, 3], "a list of 3 ints"),
        ("model.mask_head", 3, "a string"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field(key, value, expected):
    section, field = key.split(".")
    with pytest.raises(ValueError) as error:
        preset("tiny", **{section: {field: value}})
    kind = {"model": "ModelConfig", "train": "TrainConfig"}[section]
    assert str(error.value) == f"{kind}.{field} = {value!r} is not {expected}"
