"""The Cross Transformer block: its formula, and that the target reaches the video through it."""

import pytest
import torch
import torch.nn.functional as F

from vois_cli.config import preset
from vois_cli.models.backbone import DualPathSwin
from vois_cli.models.cross_block import CrossBlock


def _reference(block: CrossBlock, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The paper's formula written out: pre-norm cross-attention, then a pre-norm GELU MLP."""
    b, t, h, w, c = x.shape
    heads = block.attn.num_heads
    q_in = x.reshape(b, t * h * w, c)
    kv = F.layer_norm(g.reshape(b, -1, c), (c,), block.norm_image.weight, block.norm_image.bias)
    qn = F.layer_norm(q_in, (c,), block.norm_query.weight, block.norm_query.bias)
    wq, wk, wv = block.attn.in_proj_weight.chunk(3)
    bq, bk, bv = block.attn.in_proj_bias.chunk(3)
    split = lambda z: z.view(b, -1, heads, c // heads).transpose(1, 2)  # noqa: E731
    q, k, v = split(qn @ wq.T + bq), split(kv @ wk.T + bk), split(kv @ wv.T + bv)
    attn = torch.softmax(q @ k.transpose(-1, -2) / (c // heads) ** 0.5, dim=-1)
    o = (attn @ v).transpose(1, 2).reshape(b, -1, c)
    y = q_in + o @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
    m = F.layer_norm(y, (c,), block.norm_mlp.weight, block.norm_mlp.bias)
    fc1, fc2 = block.mlp[0], block.mlp[2]
    y = y + F.gelu(m @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias
    return y.view(b, t, h, w, c)


@pytest.fixture
def block():
    torch.manual_seed(0)
    blk = CrossBlock(dim=16, heads=4, mlp_ratio=4.0).eval()
    with torch.no_grad():  # non-trivial norms so a swapped norm would show
        for p in (blk.norm_query, blk.norm_image, blk.norm_mlp):
            p.weight.uniform_(0.5, 1.5)
            p.bias.uniform_(-0.5, 0.5)
    return blk


def test_block_matches_the_written_out_formula(block):
    x, g = torch.randn(2, 3, 4, 5, 16), torch.randn(2, 6, 7, 16)
    out = block(x, g)
    assert out.shape == x.shape
    torch.testing.assert_close(out, _reference(block, x, g), rtol=1e-5, atol=1e-5)


def test_block_widths_follow_the_stage(block):
    assert block.attn.num_heads == 4 and block.attn.batch_first
    assert block.mlp[0].out_features == 64 and isinstance(block.mlp[1], torch.nn.GELU)


def test_image_tokens_are_a_set_and_video_tokens_are_independent_queries(block):
    x, g = torch.randn(1, 2, 3, 3, 16), torch.randn(1, 4, 4, 16)
    out = block(x, g)
    shuffled = g.flatten(1, 2)[:, torch.randperm(16)].view(1, 4, 4, 16)
    torch.testing.assert_close(block(x, shuffled), out, rtol=1e-5, atol=1e-6)
    # each video token's output depends only on itself and the image
    torch.testing.assert_close(block(x[:, :1, :2], g), out[:, :1, :2], rtol=1e-5, atol=1e-6)


def test_block_output_changes_with_the_target(block):
    x = torch.randn(1, 2, 3, 3, 16)
    a, b = block(x, torch.randn(1, 4, 4, 16)), block(x, torch.randn(1, 4, 4, 16))
    assert (a - b).abs().max() > 1e-3


def _features(model, video, target):
    with torch.no_grad():
        out = model(video, target)
    return out["features"] + [out["memory"]]


@pytest.mark.parametrize("cross_stages", [(3, 4), (4,)])
def test_backbone_features_follow_the_target_only_from_the_first_cross_stage(cross_stages):
    torch.manual_seed(0)
    model = DualPathSwin(preset("tiny", model={"cross_stages": cross_stages}).model).eval()
    video = torch.randn(1, 2, 3, 48, 64)
    a = _features(model, video, torch.randn(1, 3, 48, 48))
    b = _features(model, video, torch.randn(1, 3, 48, 48))
    first = min(cross_stages)
    for s, (fa, fb) in enumerate(zip(a, b, strict=True), start=1):
        if s < first:
            torch.testing.assert_close(fa, fb, rtol=0, atol=0)
        else:
            assert (fa - fb).abs().max() > 1e-3, f"stage {s} ignores the target"


def test_backbone_without_target_ignores_it():
    torch.manual_seed(0)
    model = DualPathSwin(preset("tiny", model={"use_target": False}).model).eval()
    video = torch.randn(1, 2, 3, 48, 64)
    a = _features(model, video, torch.randn(1, 3, 48, 48))
    b = _features(model, video, None)
    for fa, fb in zip(a, b, strict=True):
        torch.testing.assert_close(fa, fb, rtol=0, atol=0)
