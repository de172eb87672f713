"""Target-similarity maps, the stride-16 memory and the dense target-map loss: shapes,
hand-computed values, and every option's off position building the paper's model."""

import pytest
import torch
import torch.nn.functional as F

from vois_cli.config import preset
from vois_cli.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vois_cli.models import build_model
from vois_cli.models.criterion import SetCriterion, token_coverage
from vois_cli.models.mask_head import box_windows
from vois_cli.models.similarity import (
    MIX_WINDOW,
    TargetSimilarity,
    _window_mean,
    colour_backprojection,
    colour_mix,
    photo_background,
)

TINY_PLAIN = {"similarity_stages": (), "memory_stride": 32, "loss_target_map": 0.0}


def test_similarity_is_the_best_and_top_k_cosine_over_target_tokens():
    sim = TargetSimilarity(channels=3, dim=3)
    with torch.no_grad():
        for layer in (sim.video, sim.image):
            layer.weight.copy_(torch.eye(3))
            layer.bias.zero_()
    x = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).view(1, 1, 1, 2, 3)  # (B, T, h, w, C)
    # 16 target tokens: 2 equal to e0 and 14 to (e0 + e1) / √2; top-k averages the best 2
    g = torch.cat([torch.tensor([[1.0, 0, 0]] * 2), torch.tensor([[1.0, 1, 0]] * 14)])
    out = sim(x, g.view(1, 4, 4, 3))
    assert out.shape == (1, 1, 1, 2, 2)
    r = 2**-0.5
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor([1.0, 1.0]))
    assert torch.allclose(out[0, 0, 0, 1], torch.tensor([r, r]))


def test_with_shared_projections_a_copy_of_a_target_token_scores_one():
    torch.manual_seed(0)
    sim = TargetSimilarity(channels=8, dim=8)
    sim.image.load_state_dict(sim.video.state_dict())
    g = torch.randn(1, 3, 3, 8)
    x = torch.stack([g[0, 1, 1], -g[0, 1, 1]]).view(1, 1, 1, 2, 8)
    with torch.no_grad():
        out = sim(x, g)
    assert out[0, 0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert out[0, 0, 0, 1, 0] < 0.9


def test_large_target_maps_are_pooled_before_the_comparison():
    torch.manual_seed(0)
    sim = TargetSimilarity(channels=4, dim=4)
    x, g = torch.randn(1, 2, 3, 5, 4), torch.randn(1, 32, 32, 4)
    pooled = F.avg_pool2d(g.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)  # 16 x 16
    with torch.no_grad():
        assert torch.allclose(sim(x, g), sim(x, pooled), atol=1e-6)


@pytest.mark.parametrize(
    "colour, mix, maps", [(False, False, 2), (True, False, 3), (True, True, 4)]
)
def test_mask_similarity_gives_each_stages_map_to_the_mask_head(colour, mix, maps):
    model = {
        "similarity_stages": (1, 2, 3),
        "mask_similarity": True,
        "colour_similarity": colour,
        "colour_mix": mix,
    }
    cfg = preset("tiny", model=model).model
    torch.manual_seed(0)
    net = build_model(cfg)[0].eval()
    c = cfg.embed_dim
    # the FPN's laterals read E, then f3, f2, f1, each with its stage's similarity channels
    widths = [lateral.in_channels for lateral in net.mask_head.lateral]
    assert widths == [cfg.hidden_dim, 4 * c + maps, 2 * c + maps, c + maps]
    t = cfg.num_frames
    video, target = torch.randn(1, t, 3, 64, 96), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        masks = net(video, target)["pred_masks"]
        # the stride-4 map alone changes the masks
        hook = net.backbone.similarity["1"].register_forward_hook(lambda m, i, o: -o)
        flipped = net(video, target)["pred_masks"]
        hook.remove()
    assert masks.shape == flipped.shape == (1, cfg.num_queries, t, 16, 24)
    assert not torch.allclose(masks, flipped)
    off = build_model(preset("tiny", model={**model, "mask_similarity": False}).model)[0]
    assert [lateral.in_channels for lateral in off.mask_head.lateral][1:] == [4 * c, 2 * c, c]


def _normalised(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in 0-255 -> ImageNet-normalised, as the model's inputs."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255
    return (rgb - mean) / (torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255)


def _painted(height: int, width: int, *regions: tuple[slice, tuple[int, int, int]]) -> torch.Tensor:
    """A white (3, H, W) image with each (column slice, colour) region painted."""
    image = torch.full((3, height, width), 255.0)
    for columns, colour in regions:
        image[:, :, columns] = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)
    return image


def test_colour_backprojection_is_each_pixels_colour_share_of_the_target_product():
    red, dark_red, blue, cream = (205, 35, 45), (200, 40, 40), (35, 75, 200), (250, 245, 235)
    # a product of 3 red columns and 1 blue on a white photo (white and cream are not counted)
    target = _painted(4, 8, (slice(0, 3), red), (slice(3, 4), blue), (slice(7, 8), cream))
    video = _painted(2, 5, (slice(0, 1), dark_red), (slice(1, 2), blue), (slice(2, 3), cream))
    video[:, :, 3] = torch.tensor((35, 150, 60), dtype=torch.float32).view(3, 1)  # green
    out = colour_backprojection(_normalised(video)[None, None], _normalised(target)[None])
    assert out.shape == (1, 1, 2, 5)
    # red's bin holds the most product pixels (1), blue a third of that; the rest none
    expected = torch.tensor([1.0, 1 / 3, 0.0, 0.0, 0.0])
    assert torch.allclose(out[0, 0], expected.expand(2, 5))
    blank = colour_backprojection(
        _normalised(video)[None, None], _normalised(target * 0 + 255)[None]
    )
    assert not blank.any()  # an all-white target matches nothing


def test_the_photos_background_is_the_white_connected_to_its_border():
    image = _painted(6, 8, (slice(2, 6), (205, 35, 45)))
    image[:, 2:4, 3:5] = torch.tensor((250.0, 245, 235)).view(3, 1, 1)  # a cream patch inside
    background = photo_background(image[None])[0]
    assert background[:, :2].all() and background[:, 6:].all()
    assert not background[:, 2:6].any()  # the cream patch belongs to the product


def test_the_photos_background_reaches_through_corners_and_each_image_is_its_own():
    ring = torch.zeros(3, 7, 7)  # a black ring around a white core, open at one corner only
    ring[:, 2:5, 2:5] = 255
    ring[:, 0, 0] = ring[:, 1, 1] = 255  # the border's white pixel touches the core diagonally
    closed = ring.clone()
    closed[:, 1, 1] = 0
    background = photo_background(torch.stack([ring, closed]))
    assert background[0, 3, 3] and background[0, 0, 0]  # 8-connected to the border
    assert not background[1, 2:5, 2:5].any()  # the same core, enclosed: the product's
    assert background.shape == (2, 7, 7) and background.dtype == torch.bool


def test_colour_mix_is_the_histogram_intersection_over_each_window():
    red, blue, green = (205, 35, 45), (35, 75, 200), (35, 150, 60)
    # the product is half red, half blue; a 20-px video is one window around its centre cell
    target = _normalised(_painted(8, 12, (slice(2, 6), red), (slice(6, 10), blue)))[None]
    halves = _painted(20, 20, (slice(0, 10), red), (slice(10, 20), blue))
    for video, expected in ((halves, 1.0), (_painted(20, 20, (slice(0, 20), red)), 0.5)):
        out = colour_mix(_normalised(video)[None, None], target)
        assert out.shape == (1, 1, 5, 5)
        assert out[0, 0, 2, 2].item() == pytest.approx(expected)
    green_video = _normalised(_painted(20, 20, (slice(0, 20), green)))[None, None]
    assert not colour_mix(green_video, target).any()


@pytest.mark.parametrize("shape", [(8, 64, 32, 57), (2, 64, 3, 4), (1, 64, 1, 9), (3, 64, 56, 100)])
def test_colour_mix_windows_equal_avg_pooling_to_the_last_bit(shape):
    # whole-number counts, as the histogram of each cell's 4 x 4 pixels gives
    counts = torch.randint(0, 17, shape, generator=torch.Generator().manual_seed(0)).float()
    pooled = F.avg_pool2d(counts, MIX_WINDOW, 1, MIX_WINDOW // 2, count_include_pad=False)
    assert torch.equal(_window_mean(counts), pooled)


def test_colour_channels_add_the_token_averaged_maps_to_every_map():
    torch.manual_seed(0)
    cfg = preset("tiny", model={"colour_similarity": True, "colour_mix": True}).model
    net = build_model(cfg)[0].eval()
    video = _normalised(torch.rand(1, 8, 3, 64, 96) * 255)
    target = _normalised(_painted(64, 64, (slice(10, 40), (205, 35, 45))))[None]
    with torch.no_grad():
        maps = net.backbone(video, target)["similarity"]
    assert {s: m.shape[-1] for s, m in maps.items()} == {1: 4, 2: 4, 3: 4}
    pixels = colour_backprojection(video, target)
    assert torch.allclose(maps[3][..., 2], F.adaptive_avg_pool2d(pixels, (4, 6)))
    assert torch.allclose(maps[1][..., 3], colour_mix(video, target))


def test_token_coverage_is_the_covered_fraction_of_each_token():
    masks = torch.zeros(2, 1, 4, 6, dtype=torch.bool)  # (K, T, H, W), tokens of 2 × 2 pixels
    masks[0, 0, 0, 0] = True  # one pixel of token (0, 0)
    masks[1, 0, 2:4, 4:6] = True  # all of token (1, 2)
    masks[1, 0, 0, 0] = True  # overlaps object 0: the union counts it once
    cov = token_coverage(masks, (2, 3))
    assert torch.equal(cov, torch.tensor([[[0.25, 0, 0], [0, 0, 1.0]]]))
    # a grid that does not tile the image: the last tokens are padded with zeros
    assert torch.equal(
        token_coverage(masks[:, :, :3, :5], (2, 3))[0, 1], torch.tensor([0, 0, 0.25])
    )


def test_target_map_loss_is_bce_against_coverage():
    cfg = preset("tiny", model={"loss_target_map": 2.0}).model
    logits = torch.tensor([[[[0.0, 2.0]]]])  # (B, T, h, w)
    masks = torch.zeros(1, 1, 2, 4, dtype=torch.bool)
    masks[0, 0, :, 2:] = True
    loss = SetCriterion(cfg)._target_map_loss(logits, [{"masks": masks}])
    expected = F.binary_cross_entropy_with_logits(logits, torch.tensor([[[[0.0, 1.0]]]]))
    assert loss == pytest.approx(expected.item())


@pytest.mark.parametrize("stride", [16, 32])
def test_memory_grid_follows_memory_stride(stride):
    cfg = preset("tiny", model={"memory_stride": stride, "similarity_stages": (2, 3),
                                "loss_target_map": 1.0}).model  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg)[0].eval()
    t, h, w = cfg.num_frames, 96, 160
    with torch.no_grad():
        out = model(torch.randn(1, t, 3, h, w), torch.randn(1, 3, 64, 64))
    assert out["target_logits"].shape == (1, t, -(-h // stride), -(-w // stride))
    assert out["pred_masks"].shape == (1, cfg.num_queries, t, h // 4, w // 4)


def test_the_target_changes_the_similarity_and_the_memory():
    model = {"memory_stride": 16, "similarity_stages": (2, 3), "colour_similarity": False,
             "colour_mix": False}  # fmt: skip
    cfg = preset("tiny", model=model).model
    torch.manual_seed(0)
    model = build_model(cfg)[0].eval()
    video = torch.randn(1, 8, 3, 64, 96)
    with torch.no_grad():
        a = model.backbone(video, torch.randn(1, 3, 64, 64))
        b = model.backbone(video, torch.randn(1, 3, 64, 64))
    assert {s: m.shape for s, m in a["similarity"].items()} == {
        2: (1, 8, 8, 12, 2),
        3: (1, 8, 4, 6, 2),
    }
    assert not torch.allclose(a["similarity"][2], b["similarity"][2])


def test_every_option_off_builds_the_model_without_its_parts():
    torch.manual_seed(0)
    plain = build_model(preset("tiny", model=TINY_PLAIN).model)[0]
    names = set(plain.state_dict())
    assert not any(k.startswith(("backbone.similarity", "neck_fine", "target_map")) for k in names)
    assert not any(k.startswith("backbone.image_norms_compared") for k in names)
    assert plain.neck.in_features == plain.backbone.memory_channels
    no_target = build_model(preset("tiny", model={"use_target": False}).model)[0]
    assert len(no_target.backbone.similarity) == 0 and no_target.backbone.image_path is None


def test_bad_memory_stride_fails():
    with pytest.raises(ValueError, match="memory_stride is 16 or 32"):
        build_model(preset("tiny", model={"memory_stride": 8}))


def test_an_unknown_mask_head_fails():
    with pytest.raises(ValueError, match="unknown mask_head 'dot'; choose one of vistr, condinst"):
        build_model(preset("tiny", model={"mask_head": "dot"}))


def test_two_stage_masks_are_cut_to_each_proposals_box_window():
    # the given boxes, not boxes read from the masks (`mask_boxes`, tested on its own)
    model = {"mask_cut_training": True, "mask_boxes": False}
    model["mask_similarity"] = False  # the head alone, on hand-made f1..f3
    cfg = preset("tiny", model=model).model
    torch.manual_seed(0)
    head = build_model(cfg)[0].mask_head.eval()
    hs = torch.randn(1, 1, 2, cfg.hidden_dim)
    feats = [
        torch.randn(1, 1, 16 // s, 24 // s, c) for s, c in zip((1, 2, 4), (24, 48, 96), strict=True)
    ]
    memory = torch.randn(1, 1, 1, 2, cfg.hidden_dim)
    boxes = torch.tensor([[[[0.25, 0.5, 0.2, 0.4]], [[0.5, 0.5, 1.0, 1.0]]]])  # (B, n, T, 4)
    with torch.no_grad():
        masks = head(hs, memory, None, feats, boxes)[0, :, 0]  # (n, 16, 24)
    window = box_windows(boxes[0, :, 0], 16, 24, margin=0.0).bool()
    assert (masks[~window] == -20.0).all() and (masks[window] != -20.0).all()
    assert window[0].sum() < window[1].sum() == 16 * 24
    # in training too with mask_cut_training (the default), not without it (tiny)
    with torch.no_grad():
        assert torch.equal(head.train()(hs, memory, None, feats, boxes)[0, :, 0], masks)
        head.cut_training = False
        uncut = head(hs, memory, None, feats, boxes)[0, :, 0]
        assert (uncut[~window] != -20.0).all() and torch.equal(uncut[window], masks[window])
        assert torch.equal(head.eval()(hs, memory, None, feats, boxes)[0, :, 0], masks)
