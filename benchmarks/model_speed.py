"""Model speed and memory per preset: forward, forward + backward, and the bare video Swin.

Each (preset, phase) runs in its own process so that its peak memory is its own: peak RSS
(ru_maxrss) on CPU, `torch.cuda.max_memory_allocated` on CUDA. Phases:
  video_swin  the bare 3D Swin video path alone (patch embedding + 4 stages), forward
  forward     the full model in eval mode, no grad
  train       one training step: forward, criterion, backward (activation checkpointing
              when --checkpointing)
Input: a 640×360 (16:9) video resized as the predictor does for the preset (tiny 90×160).
Seconds per call are the fastest of `--repeats` calls after one warm-up call, in wall time
and in this process's CPU time (which other jobs on a shared machine hardly move; with one
torch thread it is the wall time of a quiet machine); frames/s = T / the fastest wall time.
The ratios `forward_over_video_swin` and `train_over_video_swin` (CPU time of a whole over
its part's, so ≥ 1) show what the image path, cross blocks, decoder, heads and backward
cost.
Parameter counts are in param_counts.json.

    python3 benchmarks/model_speed.py                         # tiny, small, paper(T=8) on CPU
    python3 benchmarks/model_speed.py --presets paper --frames 36 --device cuda --bf16 \
        --checkpointing                                       # GPU goal (docs/design.md#presets)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.config import preset
from vois_cli.data.transforms import resized_shape
from vois_cli.models import build_model

VIDEO = (360, 640)  # (H, W) of the video the model input is resized from
PHASES = ("video_swin", "forward", "train")


def _sample(t: int, h: int, w: int, device: torch.device) -> dict:
    """One synthetic clip with two objects, as the dataset hands them to the criterion."""
    masks = torch.zeros(2, t, h, w, dtype=torch.bool, device=device)
    masks[0, :, h // 8 : h // 2, w // 8 : w // 2] = True
    masks[1, :, h // 2 :, w // 2 :] = True
    boxes = torch.tensor([[0.3125, 0.3125, 0.375, 0.375], [0.75, 0.75, 0.5, 0.5]], device=device)
    return {
        "masks": masks,
        "boxes": boxes[:, None].expand(2, t, 4),
        "present": torch.ones(2, t, dtype=torch.bool, device=device),
    }


def measure(name: str, phase: str, frames: int, repeats: int, args: argparse.Namespace) -> dict:
    """Seconds per call and peak memory of one phase, in this process."""
    device = torch.device(args.device)
    overrides = {"num_frames": frames, "activation_checkpointing": args.checkpointing}
    cfg = preset(name, model=overrides).model
    h, w = resized_shape(*VIDEO, cfg.short_edge, cfg.max_long_edge)
    torch.manual_seed(0)
    model, criterion, _ = build_model(cfg)
    model.to(device).train(phase == "train")
    video = torch.randn(1, frames, 3, h, w, device=device)
    side = cfg.short_edge
    target = torch.randn(1, 3, side, side, device=device)
    sample = _sample(frames, h, w, device)
    swin = model.backbone.video_path if hasattr(model.backbone, "video_path") else None
    if phase == "video_swin" and swin is None:
        return {"skipped": "no video Swin in this architecture"}

    def call() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=args.bf16):
            if phase == "video_swin":
                with torch.no_grad():
                    swin.features(swin.patch_embed(video.transpose(1, 2)))
            elif phase == "forward":
                with torch.no_grad():
                    model(video, target)
            else:
                losses = criterion(model(video, target), [sample])
        if phase == "train":
            sum(losses.values()).backward()
            model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    call()  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {
        "frames": frames,
        "size": [h, w],
        "seconds_per_call": round(min(times), 4),
        "median_seconds_per_call": round(statistics.median(times), 4),
        "cpu_seconds_per_call": round(min(cpu), 4),
        "frames_per_s": round(frames / min(times), 2),
        "peak_gib": round(peak, 3),
        "peak_kind": "cuda_allocated" if device.type == "cuda" else "process_rss",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--frames", type=int, default=0, help="T (0: preset's; paper CPU: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per phase")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/model_speed.json"))
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "PHASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        name, phase = args.child
        print(json.dumps(measure(name, phase, args.frames, args.repeats, args)))
        return

    meta = provenance(vars(args), torch.get_num_threads())
    results = {"presets": {}}
    for name in args.presets:
        frames = args.frames or (8 if name == "paper" and args.device == "cpu" else 0)
        frames = frames or preset(name).model.num_frames
        row = {}
        for phase in PHASES:
            cmd = [sys.executable, __file__, "--child", name, phase, "--frames", str(frames)]
            cmd += ["--repeats", str(args.repeats), "--device", args.device]
            cmd += ["--bf16"] * args.bf16 + ["--checkpointing"] * args.checkpointing
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row[phase] = json.loads(done.stdout.strip().splitlines()[-1])
            print(name, phase, row[phase], flush=True)
        if "seconds_per_call" in row["video_swin"]:
            cpu = {phase: row[phase]["cpu_seconds_per_call"] for phase in PHASES}
            row["forward_over_video_swin"] = round(cpu["forward"] / cpu["video_swin"], 2)
            row["train_over_video_swin"] = round(cpu["train"] / cpu["video_swin"], 2)
        results["presets"][name] = row
    write_json(args.out, {"meta": finish(meta), **results}, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
