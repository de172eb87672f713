"""DualPathSwin: shapes for every preset and ablation, any input size, the window-size trap."""

import param_counts
import pytest
import torch
from torchvision.models.video.swin_transformer import ShiftedWindowAttention3d

from vois_cli.config import preset
from vois_cli.models.backbone import DualPathSwin, padded_side, stage_sizes


def _shapes(out):
    return [tuple(f.shape) for f in out["features"]] + [tuple(out["memory"].shape)]


@pytest.mark.parametrize("name", ["tiny", "small", "paper"])
def test_every_preset_gives_the_documented_shapes(name):
    torch.manual_seed(0)
    cfg = preset(name).model
    model = DualPathSwin(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 2, 3, 64, 96), torch.randn(1, 3, 64, 64))
    c = cfg.embed_dim
    assert _shapes(out) == [
        (1, 2, 16, 24, c),
        (1, 2, 8, 12, 2 * c),
        (1, 2, 4, 6, 4 * c),
        (1, 2, 2, 3, 8 * c),
    ]
    assert model.feature_channels == (c, 2 * c, 4 * c) and model.memory_channels == 8 * c
    assert sorted(model.cross_blocks) == ["3", "4"]
    assert len(model.image_path.layers) == 4


@pytest.mark.parametrize(
    ("overrides", "cross", "image_stages"),
    [
        ({"use_target": False}, [], 0),
        ({"cross_stages": ()}, [], 0),
        ({"cross_stages": (3,)}, ["3"], 3),
        ({"cross_stages": (4,)}, ["4"], 4),
        ({"cross_stages": (1, 2, 3, 4)}, ["1", "2", "3", "4"], 4),
        ({"cross_stages": (1,)}, ["1"], 1),
        ({"cross_stages": (1,), "similarity_stages": (2, 3)}, ["1"], 3),
        ({"use_target": False, "similarity_stages": (2, 3)}, [], 0),
    ],
)
def test_ablations_build_only_what_they_use(overrides, cross, image_stages):
    """The image path runs up to the last stage a cross block or a similarity map reads."""
    cfg = preset("tiny", model={"similarity_stages": (), **overrides}).model
    model = DualPathSwin(cfg).train()
    assert sorted(model.cross_blocks) == cross
    assert sorted(model.image_norms) == cross
    if image_stages:
        assert len(model.image_path.layers) == image_stages
    else:
        assert model.image_path is None
    for s in cross:
        block = model.cross_blocks[s]
        assert block.attn.embed_dim == cfg.embed_dim * 2 ** (int(s) - 1)
        assert block.attn.num_heads == cfg.num_heads[int(s) - 1]
    out = model(torch.randn(1, 2, 3, 40, 56), torch.randn(1, 3, 36, 44))
    assert _shapes(out)[-1] == (1, 2, 2, 2, 8 * cfg.embed_dim)
    # every parameter is used (DDP without find_unused_parameters)
    maps = list(out["similarity"].values())
    loss = sum(f.sum() for f in out["features"] + maps) + out["memory"].sum()
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


@pytest.mark.parametrize(("t", "h", "w"), [(1, 50, 70), (5, 33, 129), (3, 100, 31)])
def test_any_size_is_cropped_back_to_ceil_of_the_stride(t, h, w):
    torch.manual_seed(0)
    model = DualPathSwin(preset("tiny").model).eval()
    with torch.no_grad():
        out = model(torch.randn(1, t, 3, h, w), torch.randn(1, 3, 53, 27))
    expected = [(1, t, -(-h // 2**k), -(-w // 2**k)) for k in (2, 3, 4, 5)]
    assert [s[:4] for s in _shapes(out)] == expected


def test_padded_side_keeps_every_map_at_least_the_window():
    assert padded_side(64, 3, 4) == 68  # 68 -> 17, 9, 5, 3
    assert padded_side(224, 7, 4) == 224 and padded_side(150, 7, 4) == 196
    assert padded_side(301, 3, 2) == 304  # divisible by the patch
    assert stage_sizes(68, 196, 4) == [(17, 49), (9, 25), (5, 13), (3, 7)]


def _bias_reference(attn: ShiftedWindowAttention3d, window: list[int]) -> torch.Tensor:
    """The relative-position bias a window of `window` tokens should get: the table entry of
    each pair's (dt, dy, dx) offset, indexed with the module's full window."""
    full = attn.window_size
    grid = torch.stack(torch.meshgrid(*[torch.arange(n) for n in window], indexing="ij")).flatten(1)
    rel = grid[:, :, None] - grid[:, None, :] + torch.tensor(full)[:, None, None] - 1
    index = (rel[0] * (2 * full[1] - 1) + rel[1]) * (2 * full[2] - 1) + rel[2]
    return attn.relative_position_bias_table[index].permute(2, 0, 1)


def test_torchvision_bias_is_right_only_when_the_window_shrinks_along_time():
    torch.manual_seed(0)
    attn = ShiftedWindowAttention3d(8, window_size=[4, 3, 3], shift_size=[0, 0, 0], num_heads=2)
    for window, right in [([4, 3, 3], True), ([1, 3, 3], True), ([4, 2, 3], False)]:
        got = attn.get_relative_position_bias(window)[0]
        assert torch.equal(got, _bias_reference(attn, window)) is right, window


def test_the_backbone_never_feeds_a_map_smaller_than_the_window():
    """64 x 96 would give 2 x 3 stage-4 maps, under tiny's 3 x 3 window: the trap."""
    torch.manual_seed(0)
    cfg = preset("tiny").model
    model = DualPathSwin(cfg).eval()
    seen = []
    for m in model.video_path.modules():
        if isinstance(m, ShiftedWindowAttention3d):
            m.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape[1:4])))
    with torch.no_grad():
        model(torch.randn(1, 2, 3, 64, 96), torch.randn(1, 3, 64, 64))
    assert len(seen) == sum(cfg.depths)
    assert seen[-1] == (2, 3, 3)  # stage 4 saw 3 x 3 (padded), not 2 x 3
    _, wh, ww = cfg.video_window
    assert all(h >= wh and w >= ww for _, h, w in seen)


def test_padding_only_adds_context_below_and_right():
    """A map that needs no padding is computed exactly as torchvision computes it alone."""
    torch.manual_seed(0)
    model = DualPathSwin(preset("tiny", model={"use_target": False}).model).eval()
    video = torch.randn(1, 2, 3, 96, 128)  # 96 and 128 already satisfy every rule
    with torch.no_grad():
        out = model(video, None)
        vp = model.video_path
        x = vp.patch_embed(video.transpose(1, 2))
        for layer in vp.features:
            x = layer(x)
        torch.testing.assert_close(out["memory"], model.video_norms[3](x))


def test_activation_checkpointing_gives_the_same_values_and_gradients():
    torch.manual_seed(0)
    cfg = preset("tiny").model
    plain = DualPathSwin(cfg).train()
    ckpt = DualPathSwin(preset("tiny", model={"activation_checkpointing": True}).model).train()
    ckpt.load_state_dict(plain.state_dict())
    video, target = torch.randn(1, 2, 3, 40, 48), torch.randn(1, 3, 40, 40)
    grads = []
    for model in (plain, ckpt):
        v = video.clone().requires_grad_()
        out = model(v, target)
        (out["memory"].square().sum() + out["features"][0].sum()).backward()
        grads.append((out["memory"].detach(), v.grad))
    torch.testing.assert_close(grads[0], grads[1])


def test_lr_backbone_parameters_are_both_paths_and_optionally_the_cross_blocks():
    model = DualPathSwin(preset("tiny").model)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    cross = ids(model.cross_blocks.parameters())
    with_cross = ids(model.lr_backbone_parameters(cross_in_backbone=True))
    without = ids(model.lr_backbone_parameters(cross_in_backbone=False))
    # the similarity projections are new heads: they train at the rest group's rate
    assert with_cross == ids(model.parameters()) - ids(model.similarity.parameters())
    assert without == with_cross - cross and cross and len(model.similarity) == 3
    assert ids(model.image_path.parameters()) <= without
    assert ids(model.video_path.parameters()) <= without


def test_paper_part_counts_match_swin_t():
    """Swin-T has 28,288,354 parameters; the image path drops its final norm and 1000-way head;
    the video path adds, per block, the temporal rows of its (15 x 13 x 13, heads) bias table."""
    parts = param_counts.count_parts("paper")
    image = 28_288_354 - (768 * 1000 + 1000) - 2 * 768
    assert parts["backbone.image_path"] == image
    extra_rows = 15 * 13 * 13 - 13 * 13
    heads = sum(d * h for d, h in zip((2, 2, 6, 2), (3, 6, 12, 24), strict=True))
    assert parts["backbone.video_path"] == image + extra_rows * heads
    assert parts["backbone.cross_blocks"] == sum(12 * d * d + 15 * d for d in (384, 768))
    assert 16e6 < parts["decoder"] < 17.5e6  # 6 DETR layers at d=384, FFN 2048
    assert 80e6 < parts["total"] < 90e6
