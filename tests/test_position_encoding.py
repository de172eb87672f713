"""The 3D sine position encoding: VisTR's layout, exact values, uneven widths."""

import math

import pytest
import torch

from vois_cli.models.position_encoding import axis_widths, position_encoding_3d


def _vistr_reference(t: int, h: int, w: int, feats: int) -> torch.Tensor:
    """VisTR's cumsum formulation (equal widths), written independently: (t, h, w, 3*feats)."""
    ones = torch.ones(t, h, w)
    dim_t = 10000 ** (2 * (torch.arange(feats) // 2) / feats)
    out = []
    for axis in range(3):
        e = ones.cumsum(axis)
        e = e / (e.amax() + 1e-6) * 2 * math.pi
        p = e[..., None] / dim_t
        out.append(torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=4).flatten(3))
    return torch.cat(out, dim=3)


def test_matches_vistr_formulation_at_the_paper_width():
    pos = position_encoding_3d((3, 4, 5), 384)
    assert pos.shape == (3, 4, 5, 384)
    assert torch.allclose(pos, _vistr_reference(3, 4, 5, 128), atol=1e-5)


def test_known_values_order_t_y_x_and_interleaving():
    pos = position_encoding_3d((2, 3, 4), 12)  # 4 features per axis
    # t block, frame 0: angle 1/2 * 2π = π at the lowest frequency; sin then cos.
    assert pos[0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-5)
    assert pos[0, 0, 0, 1].item() == pytest.approx(-1.0, abs=1e-5)
    # x block, column 2 of 4: angle 3/4 * 2π.
    assert pos[1, 2, 2, 8].item() == pytest.approx(math.sin(1.5 * math.pi), abs=1e-5)
    # t block depends on t only, y block on y only.
    assert torch.equal(pos[1, 0, 0, :4], pos[1, 2, 3, :4])
    assert torch.equal(pos[0, 1, 0, 4:8], pos[1, 1, 3, 4:8])
    assert not torch.equal(pos[0, 0, 0, :4], pos[1, 0, 0, :4])


@pytest.mark.parametrize(
    ("dim", "widths"),
    [(384, (128, 128, 128)), (128, (42, 42, 44)), (64, (20, 22, 22)), (6, (2, 2, 2))],
)
def test_uneven_widths_split_evenly_with_spare_pairs_to_x_then_y(dim, widths):
    assert axis_widths(dim) == widths
    assert position_encoding_3d((2, 2, 3), dim).shape == (2, 2, 3, dim)


@pytest.mark.parametrize("dim", [63, 4])
def test_rejects_odd_or_too_small_widths(dim):
    with pytest.raises(AssertionError, match="even and >= 6"):
        position_encoding_3d((1, 1, 1), dim)
