"""How large SynthLive's objects are: the side of every product instance as a share of the
frame height, and at a preset's model input in pixels and memory tokens.

An object's side is the square root of its mean visible mask area over the annotated frames
where it is present. Reads an `*_all.json` annotation file (every product; the relevant ones
alone with `--relevant-only`).

    python3 benchmarks/object_sizes.py data/synthlive/annotations/test_all.json

Prints the figures and writes benchmarks/results/object_sizes.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.config import PRESETS
from vois_cli.data.transforms import resized_shape
from vois_cli.data.ytvis import load_annotations


def sides(path: Path, relevant_only: bool) -> tuple[np.ndarray, int, int]:
    """(object sides / frame height, frame height, frame width) of an annotation file."""
    ann = load_annotations(path)
    heights = {v.id: (v.height, v.width) for v in ann.videos}
    out = []
    for a in ann.annotations:
        if relevant_only and a.get("role", "target") != "target":
            continue
        areas = [x for x in a["areas"] if x]
        out.append(math.sqrt(np.mean(areas)) / heights[a["video_id"]][0])
    height, width = next(iter(heights.values()))
    return np.array(out), height, width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path)
    parser.add_argument("--relevant-only", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/object_sizes.json"))
    args = parser.parse_args()
    meta = provenance({"annotations": str(args.annotations), "relevant_only": args.relevant_only})
    side, height, width = sides(args.annotations, args.relevant_only)
    rows = []
    for name, config in PRESETS.items():
        m = config.model
        h, _ = resized_shape(height, width, m.short_edge, m.max_long_edge)
        px = float(np.median(side)) * h
        rows.append(
            {
                "preset": name,
                "input_height": h,
                "median_side_px": round(px, 1),
                "median_side_tokens": round(px / m.memory_stride, 2),
                "memory_stride": m.memory_stride,
            }
        )
    result = {
        "objects": len(side),
        "median_side": round(float(np.median(side)), 3),
        "quartiles": [round(float(q), 3) for q in np.quantile(side, [0.25, 0.75])],
        "share_at_least_0.35": round(float((side >= 0.35).mean()), 3),
        "rows": rows,
        "meta": finish(meta),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=1))
    write_json(args.out, result, indent=1)


if __name__ == "__main__":
    main()
