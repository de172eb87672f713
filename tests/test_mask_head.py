"""The VisTR mask head: shapes at every preset width, per-proposal independence, DCN at init,
the mask_dim and mask_deform options."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import DeformConv2d

from vois_cli.config import preset
from vois_cli.models.mask_head import AttentionMaps, MaskHead, box_windows
from vois_cli.models.position_encoding import position_encoding_3d


def _inputs(cfg, b=1, t=2, n=3, hw=(52, 76), seed=0):
    """Random decoder output and channels-last features for an input of size hw."""
    g = torch.Generator().manual_seed(seed)
    c = cfg.embed_dim
    sizes = [(math.ceil(hw[0] / 2**s), math.ceil(hw[1] / 2**s)) for s in (2, 3, 4, 5)]
    feats = [torch.randn(b, t, *sizes[i], c * 2**i, generator=g) for i in range(3)]
    memory = torch.randn(b, t, *sizes[3], cfg.hidden_dim, generator=g)
    pos = position_encoding_3d((t, *sizes[3]), cfg.hidden_dim)[None].expand(b, -1, -1, -1, -1)
    hs = torch.randn(b, t, n, cfg.hidden_dim, generator=g)
    return hs, memory, pos, feats, sizes[0]


@pytest.mark.parametrize("name", ["tiny", "small", "paper"])
def test_logits_per_proposal_and_frame_at_stride_4(name):
    cfg = preset(name, model={"two_stage": False}).model  # VisTR's head without box windows
    torch.manual_seed(0)
    head = MaskHead(cfg, [cfg.embed_dim * 2**i for i in range(3)]).eval()
    hs, memory, pos, feats, (h1, w1) = _inputs(cfg, b=2)
    with torch.no_grad():
        out = head(hs, memory, pos, feats)
    assert out.shape == (2, 3, 2, h1, w1) == (2, 3, 2, 13, 19)
    norms = [m for m in head.modules() if isinstance(m, torch.nn.GroupNorm)]
    d, m = cfg.hidden_dim, cfg.mask_dim
    assert sorted({m.num_channels for m in norms}) == sorted(
        {d + cfg.dec_heads, m // 2, m // 4, m // 8, m // 16, m // 32}
    )


def test_paper_widths_and_groups_are_vistrs():
    cfg = preset("paper").model
    head = MaskHead(cfg, (96, 192, 384))
    norms = [
        (m.num_groups, m.num_channels) for m in head.modules() if isinstance(m, torch.nn.GroupNorm)
    ]
    assert norms == [(8, 392), (8, 192), (8, 96), (8, 48), (8, 24), (4, 12), (4, 12), (4, 12)]
    assert [a.in_channels for a in head.adapters] == [384, 192, 96]
    # dominated by the two stride-32 3×3 convs: 392·392·9 + 392·192·9 ≈ 2.06M
    assert sum(p.numel() for p in head.parameters()) == 2_696_587


def test_each_proposal_depends_only_on_its_own_queries():
    cfg = preset("tiny", model={"two_stage": False}).model
    torch.manual_seed(0)
    head = MaskHead(cfg, [cfg.embed_dim * 2**i for i in range(3)]).eval()
    hs, memory, pos, feats, _ = _inputs(cfg)
    with torch.no_grad():
        out = head(hs, memory, pos, feats)
        changed = hs.clone()
        changed[:, :, 1] += 1.0  # proposal 1 in every frame
        out2 = head(changed, memory, pos, feats)
    assert torch.equal(out[:, [0, 2]], out2[:, [0, 2]])
    assert not torch.allclose(out[:, 1], out2[:, 1])


def test_box_windows_cover_the_cells_inside_the_grown_box():
    # cell centres of an 8-wide grid: 0.0625, 0.1875, ..., 0.9375
    left_half = box_windows(torch.tensor([0.25, 0.5, 0.5, 1.0]), 4, 8)  # grown: x <= 0.55
    assert left_half.shape == (4, 8)
    assert left_half.sum(0).tolist() == [4, 4, 4, 4, 0, 0, 0, 0]
    wider = box_windows(torch.tensor([0.25, 0.5, 0.6, 0.4]), 4, 8)  # x <= 0.61, |y - .5| <= .24
    assert wider.sum(0).tolist() == [2, 2, 2, 2, 2, 0, 0, 0]


def test_two_stage_proposals_boxes_reach_their_own_masks_only():
    cfg = preset("tiny", model={"two_stage": True}).model
    torch.manual_seed(0)
    head = MaskHead(cfg, [cfg.embed_dim * 2**i for i in range(3)]).eval()
    hs, memory, pos, feats, _ = _inputs(cfg)
    boxes = torch.tensor([0.3, 0.3, 0.2, 0.2]).repeat(1, 3, 2, 1)  # (B, n, T, 4)
    with torch.no_grad():
        out = head(hs, memory, pos, feats, boxes)
        moved = boxes.clone()
        moved[:, 1, :, :2] = 0.7
        out2 = head(hs, memory, pos, feats, moved)
    assert torch.equal(out[:, [0, 2]], out2[:, [0, 2]])
    assert not torch.allclose(out[:, 1], out2[:, 1])


def test_deformable_conv_starts_as_a_plain_conv():
    cfg = preset("tiny", model={"mask_deform": True}).model
    head = MaskHead(cfg, [cfg.embed_dim * 2**i for i in range(3)])
    x = torch.randn(2, head.deform.in_channels, 7, 9)
    plain = F.conv2d(x, head.deform.weight, head.deform.bias, padding=1)
    assert torch.allclose(head.deform(x, head.offset(x)), plain, atol=1e-5)


def test_mask_deform_false_swaps_the_deformable_conv_for_a_plain_one():
    cfg = preset("paper", model={"mask_deform": False}).model
    head = MaskHead(cfg, (96, 192, 384))
    assert not any(isinstance(m, DeformConv2d) for m in head.modules())
    assert (head.conv.in_channels, head.conv.out_channels) == (48, 24)
    # the offset conv (48·18·9 + 18 parameters) is gone, the rest is VisTR's head
    assert sum(p.numel() for p in head.parameters()) == 2_696_587 - 48 * 18 * 9 - 18


def test_mask_dim_sets_the_widths_apart_from_the_decoder():
    cfg = preset("tiny", model={"hidden_dim": 64, "mask_dim": 256}).model
    head = MaskHead(cfg, (24, 48, 96))
    channels = [m.num_channels for m in head.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert channels == [64 + cfg.dec_heads, 128, 64, 32, 16, 8, 8, 8]


def test_attention_maps_are_a_distribution_over_heads_and_positions():
    torch.manual_seed(0)
    maps = AttentionMaps(16, 4)(torch.randn(3, 5, 16), torch.randn(3, 6, 7, 16))
    assert maps.shape == (3, 5, 4, 6, 7)
    assert torch.allclose(maps.sum((2, 3, 4)), torch.ones(3, 5))


def test_position_in_the_keys_tells_identical_features_apart():
    torch.manual_seed(0)
    features = torch.randn(1, 1, 1, 16).expand(1, 6, 7, 16)  # one feature everywhere
    pos = position_encoding_3d((1, 6, 7), 16)
    maps = AttentionMaps(16, 4, scaled=True)
    queries = torch.randn(1, 5, 16)
    assert torch.allclose(maps(queries, features), torch.ones(1, 5, 4, 6, 7))
    with_pos = maps(queries, features, pos)
    assert with_pos.flatten(3).std(-1).min() > 1e-4  # every query and head prefers places


def test_scaled_maps_average_one_per_head_and_are_the_default():
    torch.manual_seed(0)
    queries, features = torch.randn(3, 5, 16), torch.randn(3, 6, 7, 16)
    joint = AttentionMaps(16, 4)
    scaled = AttentionMaps(16, 4, scaled=True)
    scaled.load_state_dict(joint.state_dict())
    maps, reference = scaled(queries, features), joint(queries, features)
    assert torch.allclose(maps.mean((3, 4)), torch.ones(3, 5, 4))
    per_head = reference / reference.sum((3, 4), keepdim=True) * 42
    assert torch.allclose(maps, per_head, atol=1e-5)
    cfg = preset("tiny").model
    assert MaskHead(cfg, (24, 48, 96)).attention.scaled
    off = preset("tiny", model={"mask_maps_scaled": False}).model
    assert not MaskHead(off, (24, 48, 96)).attention.scaled


def test_widths_must_follow_the_mask_dim():
    with pytest.raises(AssertionError, match="divisible by 32"):
        MaskHead(preset("tiny", model={"mask_dim": 48}).model, (24, 48, 96))
