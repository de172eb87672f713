"""The DETR decoder: torch's post-norm layer when positions are zero, shapes, invariances."""

import torch
from torch import nn

from vois_cli.config import preset
from vois_cli.models.decoder import Decoder

CFG = preset("tiny", model={"hidden_dim": 16, "dec_heads": 2, "dim_feedforward": 32}).model


def _inputs(b=2, n=6, length=10, d=16):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, length, d, generator=g),
        torch.randn(b, length, d, generator=g),
        torch.randn(n, d, generator=g),
    )


def test_layer_equals_torch_post_norm_decoder_layer_without_positions():
    torch.manual_seed(0)
    dec = Decoder(CFG).eval()
    ref = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    ours = dec.layers[0]
    pairs = [
        (ref.self_attn, ours.self_attn),
        (ref.multihead_attn, ours.cross_attn),
        (ref.linear1, ours.linear1),
        (ref.linear2, ours.linear2),
        (ref.norm1, ours.norm1),
        (ref.norm2, ours.norm2),
        (ref.norm3, ours.norm3),
    ]
    for a, b in pairs:
        a.load_state_dict(b.state_dict())
    memory, _, _ = _inputs()
    x = torch.randn(2, 6, 16)
    zeros_m, zeros_q = torch.zeros_like(memory), torch.zeros_like(x)
    assert torch.allclose(ours(x, memory, zeros_m, zeros_q), ref(x, memory), atol=1e-5)


def test_returns_every_layer_through_the_shared_norm():
    torch.manual_seed(0)
    dec = Decoder(CFG).eval()
    memory, pos, query_pos = _inputs()
    out = dec(memory, pos, query_pos)
    assert out.shape == (CFG.dec_layers, 2, 6, 16)
    # the shared LayerNorm (weight 1, bias 0 at init) leaves each token zero-mean, unit-variance
    assert torch.allclose(out.mean(-1), torch.zeros(CFG.dec_layers, 2, 6), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(CFG.dec_layers, 2, 6), atol=1e-3)


def test_memory_order_is_irrelevant_and_query_positions_are_equivariant():
    torch.manual_seed(0)
    dec = Decoder(CFG).eval()
    memory, pos, query_pos = _inputs()
    out = dec(memory, pos, query_pos)
    perm = torch.randperm(memory.shape[1])
    assert torch.allclose(dec(memory[:, perm], pos[:, perm], query_pos), out, atol=1e-5)
    qperm = torch.randperm(query_pos.shape[0])
    assert torch.allclose(dec(memory, pos, query_pos[qperm]), out[:, :, qperm], atol=1e-5)
    # the memory's position encoding reaches the keys
    assert not torch.allclose(dec(memory, torch.zeros_like(pos), query_pos), out, atol=1e-3)


def test_activation_checkpointing_gives_the_same_values_and_gradients():
    torch.manual_seed(0)
    plain = Decoder(CFG)
    ckpt = Decoder(preset("tiny", model={**CFG.__dict__, "activation_checkpointing": True}).model)
    ckpt.load_state_dict(plain.state_dict())
    memory, pos, query_pos = _inputs()
    grads = []
    for dec in (plain, ckpt):
        m = memory.clone().requires_grad_()
        dec(m, pos, query_pos).square().sum().backward()
        grads.append(m.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_paper_decoder_parameter_count():
    cfg = preset("paper").model  # 6 layers, d 384, FFN 2048
    d, f, layers = cfg.hidden_dim, cfg.dim_feedforward, cfg.dec_layers
    per_layer = 2 * (4 * d * d + 4 * d) + (d * f + f) + (f * d + d) + 3 * 2 * d
    count = sum(p.numel() for p in Decoder(cfg).parameters())
    assert count == layers * per_layer + 2 * d == 16_562_688


def test_query_content_is_the_first_layer_input():
    """Two queries with the same position give the same output from zeros (DETR) and
    different ones from different learned contents (Deformable DETR's `query_content`)."""
    torch.manual_seed(0)
    dec = Decoder(CFG).eval()
    memory, pos, query_pos = _inputs(n=2)
    query_pos[1] = query_pos[0]
    with torch.no_grad():
        plain = dec(memory, pos, query_pos)
        content = dec(memory, pos, query_pos, torch.randn(2, 16))
    assert torch.allclose(plain[:, :, 0], plain[:, :, 1])
    assert not torch.allclose(content[:, :, 0], content[:, :, 1])
    assert torch.equal(dec(memory, pos, query_pos, torch.zeros(2, 16)), plain)
