"""Local Swin weight files into both paths: exact mapping, inflation, strict errors."""

import re

import pytest
import timm
import torch
import torchvision

from vois_cli.config import preset
from vois_cli.errors import InputError
from vois_cli.models.backbone import DualPathSwin
from vois_cli.models.pretrained import load_image_swin, load_video_swin


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    timm_swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval()
    tv_swin = torchvision.models.swin_t(weights=None).eval()
    torch.save(timm_swin.state_dict(), d / "timm.pth")
    torch.save({"model": tv_swin.state_dict()}, d / "tv.pth")  # wrapped, as many releases are
    return d, timm_swin, tv_swin


@pytest.fixture(scope="module")
def model():
    return DualPathSwin(preset("paper", model={"drop_path": 0.0}).model).eval()


def test_timm_file_reproduces_the_weights_exactly(files, model):
    d, timm_swin, _ = files
    load_image_swin(d / "timm.pth", model.image_path)
    source = timm_swin.state_dict()
    loaded = model.image_path.state_dict()
    assert len(loaded) == len(source) - 4  # final norm and head.fc are not loaded
    for k, v in loaded.items():
        assert torch.equal(v, source[k]), k


def test_torchvision_file_computes_what_torchvision_computes(files, model):
    d, _, tv_swin = files
    load_image_swin(d / "tv.pth", model.image_path)
    sd = tv_swin.state_dict()
    ip = model.image_path
    assert torch.equal(ip.patch_embed.proj.weight, sd["features.0.0.weight"])
    assert torch.equal(ip.layers[2].blocks[5].mlp.fc2.weight, sd["features.5.5.mlp.3.weight"])
    assert torch.equal(ip.layers[3].downsample.reduction.weight, sd["features.6.reduction.weight"])
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours = ip.layers(ip.patch_embed(image))  # (1, 7, 7, 768)
        theirs = tv_swin.features(image)  # (1, 7, 7, 768)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_inflated_video_path_on_one_frame_equals_the_image_path(files, model):
    """Temporal patch 1 and tiled bias tables: a 1-frame clip is the 2D Swin, stage by stage."""
    d, timm_swin, _ = files
    load_image_swin(d / "timm.pth", model.image_path)
    load_video_swin(d / "timm.pth", model.video_path)
    vp, ip = model.video_path, model.image_path
    assert vp.patch_embed.proj.weight.shape == (96, 3, 1, 4, 4)
    table = vp.features[4][0].attn.relative_position_bias_table  # (15 * 13 * 13, 12)
    assert torch.equal(
        table, timm_swin.layers[2].blocks[0].attn.relative_position_bias_table.repeat(15, 1)
    )
    frame = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        x = vp.patch_embed(frame[:, :, None])  # (1, 1, 56, 56, 96)
        g = ip.patch_embed(frame)  # (1, 56, 56, 96)
        torch.testing.assert_close(x[:, 0], g, rtol=1e-5, atol=1e-5)
        for s in range(4):
            if s:
                x = vp.features[2 * s - 1](x)
            x, g = vp.features[2 * s](x), ip.layers[s](g)
            torch.testing.assert_close(x[:, 0], g, rtol=1e-4, atol=1e-4)


def test_relative_position_index_buffers_are_rebuilt_not_loaded(files, model, tmp_path):
    d, timm_swin, _ = files
    index = model.video_path.features[0][0].attn.relative_position_index.clone()
    sd = {k: v for k, v in torchvision.models.swin_t(weights=None).state_dict().items()}
    for k in sd:
        if k.endswith("relative_position_index"):
            sd[k] = torch.zeros_like(sd[k])
    torch.save(sd, tmp_path / "zeros.pth")
    load_video_swin(tmp_path / "zeros.pth", model.video_path)
    assert torch.equal(model.video_path.features[0][0].attn.relative_position_index, index)


def test_video_swin_checkpoint_sums_the_temporal_patch(tmp_path, model):
    v3 = torchvision.models.video.swin3d_t(weights=None)  # temporal patch 2, window (8, 7, 7)
    torch.save(v3.state_dict(), tmp_path / "v3.pth")
    load_video_swin(tmp_path / "v3.pth", model.video_path)
    sd = v3.state_dict()
    vp = model.video_path
    assert torch.equal(
        vp.patch_embed.proj.weight, sd["patch_embed.proj.weight"].sum(2, keepdim=True)
    )
    assert torch.equal(vp.features[6][1].mlp[3].weight, sd["features.6.1.mlp.3.weight"])


def test_microsoft_layout_is_accepted(files, model, tmp_path):
    d, timm_swin, _ = files
    back = lambda m: f"layers.{int(m[1]) - 1}.downsample"  # noqa: E731
    sd = {
        re.sub(r"layers\.(\d+)\.downsample", back, k): v for k, v in timm_swin.state_dict().items()
    }
    torch.save({"model": sd}, tmp_path / "ms.pth")
    load_image_swin(tmp_path / "ms.pth", model.image_path)
    w = timm_swin.layers[1].downsample.reduction.weight
    assert torch.equal(model.image_path.layers[1].downsample.reduction.weight, w)


def test_a_smaller_image_window_resizes_the_table(files):
    d, _, _ = files
    cfg = preset("paper", model={"image_window": 5, "cross_stages": (1,)}).model
    image_path = DualPathSwin(cfg).image_path
    load_image_swin(d / "timm.pth", image_path)  # stages 2-4 of the file are ignored
    assert image_path.layers[0].blocks[0].attn.relative_position_bias_table.shape == (81, 3)


def _error(loader, path, module) -> str:
    with pytest.raises(InputError) as e:
        loader(path, module)
    return str(e.value)


def test_wrong_files_name_the_file_and_every_bad_key(files, model, tmp_path):
    d, timm_swin, _ = files
    sd = dict(timm_swin.state_dict())
    del sd["layers.1.blocks.0.norm1.weight"]
    sd["layers.2.blocks.6.norm1.weight"] = torch.ones(384)  # a Swin-S block
    torch.save(sd, tmp_path / "bad.pth")
    msg = _error(load_image_swin, tmp_path / "bad.pth", model.image_path)
    assert msg.startswith(str(tmp_path / "bad.pth"))
    assert "missing keys layers.1.blocks.0.norm1.weight" in msg
    assert "unexpected keys layers.2.blocks.6.norm1.weight" in msg
    msg = _error(load_video_swin, tmp_path / "bad.pth", model.video_path)
    assert "missing keys features.2.0.norm1.weight" in msg
    assert "unexpected keys features.4.6.norm1.weight" in msg

    tiny = DualPathSwin(preset("tiny").model)
    msg = _error(load_image_swin, d / "timm.pth", tiny.image_path)
    assert "patch_embed.proj.weight (96, 3, 4, 4) vs (24, 3, 4, 4)" in msg

    torch.save(torchvision.models.video.swin3d_t().state_dict(), tmp_path / "v3.pth")
    assert "not a 2D Swin" in _error(load_image_swin, tmp_path / "v3.pth", model.image_path)
    (tmp_path / "junk.pth").write_text("not weights")
    assert "not a torch weight file" in _error(
        load_image_swin, tmp_path / "junk.pth", model.image_path
    )
    assert "no such file" in _error(load_video_swin, tmp_path / "none.pth", model.video_path)
