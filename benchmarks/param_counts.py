"""Parameter counts per part of every preset (and the vistr_r50 baseline at paper size).

Backbone parts are its children (image path, video path, cross blocks, stage norms; for
vistr_r50 the two ResNets, projections, encoder and cross blocks); the rest are the model's
other children (neck, query embedding, decoder, class and box heads, mask head). Writes
`{"meta": provenance, "<variant>": {part: parameters, ..., "total": n}}`; after changing a
preset, rerun it and update EXPECTED in tests/test_param_counts.py (which checks both).

    python3 benchmarks/param_counts.py [--presets tiny small paper paper_vistr_r50] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provenance import finish, provenance
from torch import nn

from vois_cli.atomic import write_json
from vois_cli.config import preset
from vois_cli.models import build_model

VARIANTS = {
    "tiny": ("tiny", {}),
    "small": ("small", {}),
    "paper": ("paper", {}),
    "paper_vistr_r50": ("paper", {"arch": "vistr_r50"}),
}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_parts(name: str, **model_overrides) -> dict[str, int]:
    """{part: parameters} of a preset's model, plus `total`."""
    model, _, _ = build_model(preset(name, model=model_overrides))
    parts = {f"backbone.{n}": _count(m) for n, m in model.backbone.named_children()}
    parts |= {n: _count(m) for n, m in model.named_children() if n != "backbone"}
    parts["total"] = _count(model)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/param_counts.json"))
    args = parser.parse_args()
    meta = provenance(vars(args))
    results = {}
    for variant in args.presets:
        name, overrides = VARIANTS[variant]
        results[variant] = count_parts(name, **overrides)
        print(variant)
        for part, n in results[variant].items():
            print(f"  {part:28s} {n / 1e6:9.3f} M")
    write_json(args.out, {"meta": finish(meta), **results}, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
