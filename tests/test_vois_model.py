"""The assembled model: output shapes for every preset and ablation, the builder, the
optimiser groups."""

import pytest
import torch

from vois_cli.config import preset
from vois_cli.models import build_model, parameter_groups
from vois_cli.models.criterion import SetCriterion
from vois_cli.models.postprocess import PostProcess
from vois_cli.models.vois import VOIS

CASES = [  # (preset, overrides, (H, W)); sizes off the 32 grid hit the padding paths
    ("tiny", {}, (52, 76)),
    ("small", {"num_frames": 2}, (64, 96)),
    ("paper", {"num_frames": 2}, (64, 96)),
    ("tiny", {"use_target": False}, (64, 96)),
    ("tiny", {"cross_stages": ()}, (64, 96)),
    ("tiny", {"cross_stages": (3,)}, (64, 96)),
    ("tiny", {"cross_stages": (4,)}, (64, 96)),
    ("tiny", {"cross_stages": (1, 2, 3, 4)}, (64, 96)),
    ("tiny", {"arch": "vistr_r50", "num_frames": 2}, (64, 96)),
    ("tiny", {"two_stage": True}, (52, 76)),
    ("small", {"two_stage": True, "num_frames": 2}, (64, 96)),
]


@pytest.mark.parametrize(("name", "overrides", "size"), CASES)
def test_output_shapes(name, overrides, size):
    cfg = preset(name, model=overrides).model
    torch.manual_seed(0)
    model = build_model(cfg)[0].eval()
    t, n, (h, w) = cfg.num_frames, cfg.num_queries, size
    with torch.no_grad():
        out = model(torch.randn(1, t, 3, h, w), torch.randn(1, 3, 48, 40))
    assert out["pred_logits"].shape == (1, n * t, 2)
    assert out["pred_boxes"].shape == (1, n * t, 4)
    assert out["pred_masks"].shape == (1, n, t, -(-h // 4), -(-w // 4))
    assert ((out["pred_boxes"] > 0) & (out["pred_boxes"] < 1)).all()
    assert len(out["aux_outputs"]) == cfg.dec_layers - 1
    for aux in out["aux_outputs"]:
        assert aux["pred_logits"].shape == (1, n * t, 2)
        assert aux["pred_boxes"].shape == (1, n * t, 4)


def test_builder_accepts_a_name_a_config_or_a_model_config():
    for config in ("tiny", preset("tiny"), preset("tiny").model):
        model, criterion, postprocess = build_model(config)
        assert isinstance(model, VOIS) and isinstance(criterion, SetCriterion)
        assert isinstance(postprocess, PostProcess)
        assert model.query_embed.weight.shape == (10 * 8, 64)
    with pytest.raises(ValueError, match="unknown arch 'r101'"):
        build_model(preset("tiny", model={"arch": "r101"}))
    with pytest.raises(ValueError, match="unknown preset"):
        build_model("huge")


def test_clip_length_must_match_the_queries():
    model = build_model("tiny")[0]
    with pytest.raises(ValueError, match="T=8 frames, got 3"):
        model(torch.randn(1, 3, 3, 32, 32), torch.randn(1, 3, 32, 32))


def test_the_target_matters_only_with_the_target_path():
    video = torch.randn(1, 8, 3, 64, 96)  # a 4x6 memory: tokens for the 10 queries a frame
    targets = torch.randn(2, 1, 3, 32, 32)
    for use_target in (True, False):
        torch.manual_seed(0)
        model = build_model(preset("tiny", model={"use_target": use_target}))[0].eval()
        with torch.no_grad():
            a, b = (model(video, target)["pred_masks"] for target in targets)
        assert torch.equal(a, b) != use_target
    assert torch.equal(model(video, None)["pred_masks"], a)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tiny", {}),
        ("tiny", {"use_target": False}),
        ("tiny", {"cross_stages": (3,)}),
        ("small", {"num_frames": 2}),
        ("tiny", {"arch": "vistr_r50", "num_frames": 2}),
    ],
)
def test_a_target_encoded_once_gives_the_same_outputs(name, overrides):
    """What `vois infer` relies on to read the target image once for all of a video's clips."""
    cfg = preset(name, model=overrides).model
    torch.manual_seed(0)
    model = build_model(cfg)[0].eval()
    target = torch.rand(1, 3, 52, 44) * 4 - 2  # some pixels white: the colour maps' background
    with torch.no_grad():
        encoded = model.encode_target(target)
        for seed in (1, 2):  # two clips, one encoding
            video = torch.randn(1, cfg.num_frames, 3, 52, 76, generator=torch.manual_seed(seed))
            a, b = model(video, target), model(video, encoded)
            for key in ("pred_logits", "pred_boxes", "pred_masks"):
                assert torch.equal(a[key], b[key])


@pytest.mark.parametrize("cross_lr_backbone", [True, False])
def test_parameter_groups_split_backbone_and_rest_once(cross_lr_backbone):
    cfg = preset("tiny", model={"cross_lr_backbone": cross_lr_backbone})
    model = build_model(cfg)[0]
    groups = parameter_groups(model, cfg.model, cfg.train)
    assert [g["name"] for g in groups] == ["backbone", "rest"]
    assert [g["lr"] for g in groups] == [cfg.train.lr_backbone, cfg.train.lr]
    assert {g["weight_decay"] for g in groups} == {cfg.train.weight_decay}
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    cross = {id(p) for p in model.backbone.cross_blocks.parameters()}
    assert cross and cross <= {id(p) for p in groups[0 if cross_lr_backbone else 1]["params"]}
    assert {id(p) for p in model.decoder.parameters()} <= {id(p) for p in groups[1]["params"]}
    optimizer = torch.optim.AdamW(groups)
    assert [g["name"] for g in optimizer.param_groups] == ["backbone", "rest"]
