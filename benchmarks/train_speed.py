"""Training speed: clips/s and peak memory per step, and the overhead of `vois_cli.engine`.

CPU (default): for each preset (tiny, small) trains 1 epoch with `engine.train` on a tiny
SynthLive artifact and runs a bare forward + loss + backward + clip + AdamW step loop of the
same model on the same clips, preloaded, in the same process. Overhead = loop CPU time per
clip / bare CPU time per clip - 1, the median over `--repeats` pairs (goal ≤ 10 %): this
process's CPU seconds, which other jobs on a shared machine hardly move, unlike the wall
times recorded beside them. The loop's time includes loading and augmenting clips
(num_workers=0) and the per-step log (the end-of-epoch checkpoint falls outside the timed
steps).

GPU (`--device cuda --preset paper`): the bare step on random clips of T = `--frames`
frames at 224×400 under bf16 autocast, without and with activation checkpointing: clips/s
and peak allocated memory (goal ≤ 24 GB with checkpointing).

    python3 benchmarks/train_speed.py [--preset tiny --preset small] [--steps 16] [--repeats 6]
    python3 benchmarks/train_speed.py --device cuda --preset paper --frames 36
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from provenance import finish, provenance
from torch.utils.data import DistributedSampler

from vois_cli.atomic import write_json
from vois_cli.checkpoint import resolve_device
from vois_cli.config import preset
from vois_cli.data.dataset import ClipDataset
from vois_cli.data.extract import extract_root
from vois_cli.data.preprocess import preprocess
from vois_cli.data.synth import write_benchmark
from vois_cli.engine import train
from vois_cli.models import build_model
from vois_cli.optim import build_optimizer

WARMUP = 2  # steps left out of every timing (allocator and autotuning warm-up)


def tiny_artifact(folder: Path) -> Path:
    write_benchmark(folder / "root", "tiny", seed=0)
    extract_root(folder / "root", folder / "frames")
    ann = folder / "root" / "annotations" / "train.json"
    preprocess(folder / "frames", ann, folder / "train")
    return folder / "train"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clock() -> tuple[float, float]:
    """(wall, this process's CPU) seconds."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    return tuple(now - then for now, then in zip(clock(), start, strict=True))


def bare_steps(model, criterion, optimizer, samples, device, clip, amp) -> list[tuple]:
    """(wall, CPU) seconds of each bare training step over `samples` (one clip each)."""
    times = []
    for s in samples:
        start = clock()
        s = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in s.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses = criterion(model(s["video"][None], s["target"][None]), [s])
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(since(start))
    return times


def per_clip(times: list[tuple]) -> tuple[float, float]:
    """Mean (wall, CPU) seconds per clip after the warm-up steps."""
    kept = times[WARMUP:]
    return tuple(sum(column) / len(kept) for column in zip(*kept, strict=True))


def cpu_preset(name: str, data: Path, steps: int, out: Path, repeats: int) -> dict:
    """Our loop vs the bare loop for one preset on the same clips in the same order.

    After a warm-up pair that is not counted, the two run `repeats` times next to each other,
    in alternating order; the overhead is the median over these pairs of loop / bare - 1, so
    that a load change on a shared machine moves one pair's ratio, not the figure.
    """
    videos = len(json.loads((data / "index.json").read_text())["videos"])
    clips = -(-(steps + WARMUP) // videos)
    config = preset(name, train={"clips_per_video": clips, "epochs": 1, "lr_drop_epoch": 1})
    dataset = ClipDataset(data, config.model, clips_per_video=clips, seed=config.train.seed)
    order = DistributedSampler(dataset, num_replicas=1, rank=0, seed=config.train.seed)
    samples = [dataset[i] for i in order]  # the loop's epoch 0: same clips, same augmentation

    def loop(run: Path) -> tuple[float, float]:
        stamps = [clock()]
        train(data, run, config, device="cpu", progress=lambda *_, **__: stamps.append(clock()))
        return per_clip(
            [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:], strict=False)]
        )

    def bare() -> tuple[float, float]:
        torch.manual_seed(config.train.seed)
        model, criterion, _ = build_model(config)
        optimizer = build_optimizer(model, config)
        cpu = torch.device("cpu")
        clip = config.train.clip_max_norm
        return per_clip(bare_steps(model.train(), criterion, optimizer, samples, cpu, clip, False))

    pairs = []
    for r in range(repeats + 1):
        if r % 2:
            b, a = bare(), loop(out / f"{name}{r}")
        else:
            a, b = loop(out / f"{name}{r}"), bare()
        pairs += [(a, b)] if r else []  # the first pair warms up
    loop_cpu = min(a[1] for a, _ in pairs)
    bare_cpu = min(b[1] for _, b in pairs)
    ratios = [a[1] / b[1] for a, b in pairs]
    return {
        "preset": name,
        "clips": len(samples) - WARMUP,
        "repeats": repeats,
        "loop_cpu_s_per_clip": loop_cpu,
        "bare_cpu_s_per_clip": bare_cpu,
        "loop_wall_s_per_clip": min(a[0] for a, _ in pairs),
        "bare_wall_s_per_clip": min(b[0] for _, b in pairs),
        "overhead_pct": 100 * (statistics.median(ratios) - 1),
        "loop_to_bare_per_pair": [round(x, 4) for x in ratios],
        "peak_rss_mib": peak_rss_mib(),
    }


def random_clip(config, frames: int, height: int = 224, width: int = 400) -> dict:
    """A clip of random pixels with 2 random box-shaped objects, at the paper's input size."""
    masks = torch.zeros(2, frames, height, width, dtype=torch.bool)
    masks[0, :, 20:120, 30:200] = True
    masks[1, : frames // 2, 100:200, 220:380] = True
    present = masks.flatten(2).any(2)
    boxes = (
        torch.tensor([[0.29, 0.31, 0.43, 0.45], [0.75, 0.67, 0.4, 0.45]])[:, None].repeat(
            1, frames, 1
        )
        * present[..., None]
    )
    return {
        "video": torch.randn(frames, 3, height, width),
        "target": torch.randn(3, 224, 224),
        "masks": masks,
        "boxes": boxes,
        "present": present,
        "frame_valid": torch.ones(frames, dtype=torch.bool),
        "video_id": 1,
        "frame_index": torch.arange(frames),
    }


def gpu_preset(name: str, device: torch.device, frames: int, steps: int) -> list[dict]:
    """bf16 bare steps without and with activation checkpointing."""
    rows = []
    for checkpointing in (False, True):
        config = preset(
            name, model={"num_frames": frames, "activation_checkpointing": checkpointing}
        )
        torch.manual_seed(0)
        model, criterion, _ = build_model(config)
        model.to(device).train()
        criterion.to(device)
        optimizer = build_optimizer(model, config)
        samples = [random_clip(config, frames) for _ in range(steps + WARMUP)]
        torch.cuda.reset_peak_memory_stats(device)
        times = bare_steps(
            model, criterion, optimizer, samples, device, config.train.clip_max_norm, amp=True
        )
        rows.append(
            {
                "preset": name,
                "frames": frames,
                "activation_checkpointing": checkpointing,
                "clips_per_s": 1 / per_clip(times)[0],
                "s_per_clip": per_clip(times)[0],
                "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            }
        )
        del model, criterion, optimizer
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", action="append", help="presets (default tiny, small on CPU)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--steps", type=int, default=16, help="timed clips per measurement")
    parser.add_argument("--repeats", type=int, default=6, help="pairs of loop and bare")
    parser.add_argument("--frames", type=int, default=36, help="T for the GPU measurement")
    parser.add_argument("--data", type=Path, help="preprocessed artifact (default: tiny synth)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_speed.json"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    meta = provenance(vars(args), torch.get_num_threads())
    report = {"device": str(device), "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        if device.type == "cuda":
            for name in args.preset or ["paper"]:
                report["results"] += gpu_preset(name, device, args.frames, args.steps)
        else:
            data = args.data or tiny_artifact(Path(tmp) / "data")
            for name in args.preset or ["tiny", "small"]:
                report["results"].append(
                    cpu_preset(name, data, args.steps, Path(tmp) / "runs", args.repeats)
                )
    write_json(args.out, {"meta": finish(meta), **report}, indent=1)
    for row in report["results"]:
        print(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
