"""The vistr_r50 baseline backbone honours DualPathSwin's output contract."""

import pytest
import torch

from vois_cli.config import preset
from vois_cli.models.baselines import EncoderLayer, VisTRR50Backbone


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VisTRR50Backbone(preset("tiny", model={"arch": "vistr_r50"}).model).eval()


@pytest.fixture(scope="module")
def outputs(model):
    torch.manual_seed(1)
    video = torch.randn(1, 2, 3, 40, 72)
    with torch.no_grad():
        a = model(video, torch.randn(1, 3, 48, 48))
        b = model(video, torch.randn(1, 3, 48, 48))
    return a, b


def test_output_shapes_follow_the_resnet_strides(model, outputs):
    out, _ = outputs
    assert [tuple(f.shape) for f in out["features"]] == [
        (1, 2, 10, 18, 256),
        (1, 2, 5, 9, 512),
        (1, 2, 3, 5, 1024),
    ]
    assert tuple(out["memory"].shape) == (1, 2, 2, 3, 64)
    assert model.feature_channels == (256, 512, 1024) and model.memory_channels == 64


def test_one_cross_block_after_each_encoder_layer(model):
    cfg = preset("tiny").model
    assert len(model.encoder) == len(model.cross_blocks) == cfg.enc_layers
    assert all(b.attn.embed_dim == cfg.hidden_dim for b in model.cross_blocks)


def test_target_reaches_the_memory_but_not_the_resnet_features(outputs):
    a, b = outputs
    for fa, fb in zip(a["features"], b["features"], strict=True):
        torch.testing.assert_close(fa, fb, rtol=0, atol=0)
    assert (a["memory"] - b["memory"]).abs().max() > 1e-3


def test_lr_backbone_parameters_are_the_two_resnets(model):
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    expected = ids(model.video_resnet.parameters()) | ids(model.image_resnet.parameters())
    for cross in (True, False):
        assert ids(model.lr_backbone_parameters(cross)) == expected
    assert not ids(model.cross_blocks.parameters()) & expected


def test_encoder_layer_is_post_norm_with_position_on_queries_and_keys_only():
    torch.manual_seed(0)
    layer = EncoderLayer(dim=12, heads=3, dim_feedforward=24, dropout=0.0).eval()
    x, pos = torch.randn(2, 5, 12), torch.randn(5, 12)
    out = layer(x, pos)
    # default LayerNorm affine: each output token has zero mean and unit variance
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)
    assert (out - layer(x, torch.zeros(5, 12))).abs().max() > 1e-3
    # values carry no position: with uniform attention (zero q/k weights) pos has no effect
    with torch.no_grad():
        layer.attn.in_proj_weight[:24].zero_()
        layer.attn.in_proj_bias[:24].zero_()
    torch.testing.assert_close(layer(x, pos), layer(x, torch.zeros(5, 12)))
