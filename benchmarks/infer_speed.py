"""`vois infer` speed and memory: end to end vs the bare model, peak RSS vs video length.

    python benchmarks/infer_speed.py                               # tiny preset on CPU
    python benchmarks/infer_speed.py --device cuda --preset paper  # on a GPU

1. Speed: a generated 640x360 5 fps mp4 through `infer_video` (decode, resize, model, link,
   RLE, JSON) against the bare model forward over the very same clips on frames decoded and
   resized beforehand. Overhead = end-to-end time / bare time - 1 (goal <= 10 %);
   output frames/s (goals: tiny on a 2-core CPU >= 100, paper on a GPU >= 300).
2. Memory: peak RSS of a fresh process predicting a 360-frame and a 10,000-frame video
   (goal: ratio <= 1.2). `--rss-model stub` (the default on CPU, where the real model would
   take an hour for 10,000 frames) swaps the network for random outputs of its shapes, so
   the pipeline (decoding, clip buffer, linking, RLE store, JSON) is what is measured.

Random weights (seed 0): speed does not depend on training. Writes
benchmarks/results/infer_speed.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vois_cli.checkpoint import resolve_device, save_checkpoint
from vois_cli.config import preset
from vois_cli.data.transforms import Geometry, resized_shape, to_model_input
from vois_cli.data.video import VideoWriter, read_frames
from vois_cli.infer_files import infer_video
from vois_cli.inference import Predictor
from vois_cli.linking import plan_clips
from vois_cli.models import build_model

RESULTS = Path(__file__).resolve().parent / "results" / "infer_speed.json"


def make_video(path: Path, frames: int, width: int, height: int) -> Path:
    """A 5 fps mp4 (every frame is an output frame) of two squares drifting over noise."""
    rng = np.random.default_rng(0)
    background = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
    side = height // 5
    with VideoWriter(path, width, height, 5) as writer:
        for f in range(frames):
            image = background.copy()
            for k, colour in enumerate([(220, 30, 30), (30, 30, 220)]):
                x = (f * (3 + k) + k * width // 2) % (width - side)
                y = (height // 3 * (k + 1) + f) % (height - side)
                image[y : y + side, x : x + side] = colour
            writer.write(image)
    return path


def save_random_checkpoint(path: Path, preset_name: str) -> Path:
    torch.manual_seed(0)
    config = preset(preset_name)
    model, _, _ = build_model(config)
    save_checkpoint(path, config=config.to_dict(), model=model.state_dict())
    return path


class StubModel(torch.nn.Module):
    """Random outputs of the real model's shapes: blobby masks, so RLEs look like real ones."""

    def __init__(self, num_queries: int):
        super().__init__()
        self.n = num_queries
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, video, target):
        """video (B, T, 3, H, W) -> pred_logits (B, n*T, 2), pred_masks (B, n, T, H/4, W/4)."""
        B, T, _, H, W = video.shape
        coarse = torch.randn(B, self.n * T, 1, max(1, H // 32), max(1, W // 32))
        masks = torch.nn.functional.interpolate(coarse[:, :, 0], size=(H // 4, W // 4))
        return {
            "pred_logits": torch.randn(B, self.n * T, 2),
            "pred_boxes": torch.rand(B, self.n * T, 4),
            "pred_masks": masks.view(B, self.n, T, H // 4, W // 4),
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def speed(preset_name: str, device: str, frames: int, repeats: int, work: Path) -> dict:
    """End-to-end `infer_video` vs bare model forward on the same clips, in seconds and fps."""
    ckpt = save_random_checkpoint(work / f"{preset_name}.pt", preset_name)
    video = make_video(work / "speed.mp4", frames, 640, 360)
    target = work / "target.png"
    Image.new("RGB", (200, 300), (220, 30, 30)).save(target)
    predictor = Predictor.from_checkpoint(ckpt, device)
    cfg = predictor.config.model
    size = resized_shape(360, 640, cfg.short_edge, cfg.max_long_edge)
    decoded = list(read_frames(video))
    inputs = to_model_input(np.stack(decoded), size, Geometry.identity(360, 640))
    image = np.asarray(Image.open(target).convert("RGB"))
    target_input = to_model_input(image[None], resized_shape(300, 200, cfg.short_edge,
                                  cfg.max_long_edge), Geometry.identity(300, 200))  # fmt: skip
    target_input = target_input.to(predictor.device)
    clips = plan_clips(len(decoded), predictor.clip_len, predictor.overlap)

    def bare() -> float:
        _sync(predictor.device)
        start = time.perf_counter()
        with torch.inference_mode():
            for clip in clips:
                predictor.model(inputs[list(clip.frames)][None].to(predictor.device), target_input)
        _sync(predictor.device)
        return time.perf_counter() - start

    def end_to_end() -> float:
        start = time.perf_counter()
        infer_video(video, target, work / "speed.json", predictor)
        return time.perf_counter() - start

    bare()  # warm-up: allocator, kernels, caches
    # interleaved, best of `repeats`: a shared machine's load spikes hit both alike
    times = [(bare(), end_to_end()) for _ in range(repeats)]
    bare_s, end_to_end_s = min(t[0] for t in times), min(t[1] for t in times)
    return {
        "preset": preset_name,
        "device": str(predictor.device),
        "video": "640x360 mp4, 5 fps",
        "frames": len(decoded),
        "repeats": repeats,
        "clips": len(clips),
        "clip_len": predictor.clip_len,
        "overlap": predictor.overlap,
        "bare_model_s": round(bare_s, 3),
        "end_to_end_s": round(end_to_end_s, 3),
        "bare_model_fps": round(len(decoded) / bare_s, 1),
        "end_to_end_fps": round(len(decoded) / end_to_end_s, 1),
        "overhead": round(end_to_end_s / bare_s - 1, 3),
    }


def peak_rss(video: Path, ckpt: Path, device: str, stub: bool, out: Path) -> tuple[float, float]:
    """(peak, final) RSS in MiB of a fresh process running `infer_video` on `video`.

    The peak includes loading torch and the model; the final RSS shows what the run kept.
    """
    command = [sys.executable, __file__, "--rss-child", str(video), "--checkpoint", str(ckpt)]
    command += ["--device", device, "--json-out", str(out)] + (["--stub"] if stub else [])
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    peak, end = run.stdout.strip().splitlines()[-1].split()
    return float(peak), float(end)


def rss_child(video: str, ckpt: str, device: str, stub: bool, out: str) -> None:
    predictor = Predictor.from_checkpoint(ckpt, device)
    if stub:
        predictor.model = StubModel(predictor.config.model.num_queries).to(predictor.device)
    target = Path(out).with_suffix(".png")
    Image.new("RGB", (200, 300), (220, 30, 30)).save(target)
    infer_video(video, target, out, predictor)
    status = Path("/proc/self/status").read_text()
    end = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, end / 1024)


def memory(preset_name: str, device: str, lengths: list[int], stub: bool, work: Path) -> dict:
    ckpt = work / f"{preset_name}.pt"
    if not ckpt.exists():
        save_random_checkpoint(ckpt, preset_name)
    rss = {}
    for frames in lengths:
        video = make_video(work / f"rss{frames}.mp4", frames, 320, 180)
        start = time.perf_counter()
        rss[frames] = peak_rss(video, ckpt, device, stub, work / f"rss{frames}.json")
        seconds = time.perf_counter() - start
        print(f"  {frames} frames: peak, final RSS {rss[frames]} MiB ({seconds:.0f} s)")
    return {
        "rss_model": "stub (random outputs of the preset's shapes)" if stub else preset_name,
        "rss_video": "320x180 mp4, 5 fps",
        "peak_rss_mib": {str(k): round(v[0], 1) for k, v in rss.items()},
        "final_rss_mib": {str(k): round(v[1], 1) for k, v in rss.items()},
        "rss_ratio": round(rss[lengths[-1]][0] / rss[lengths[0]][0], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=96, help="frames of the speed video")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs, best taken")
    parser.add_argument("--rss-frames", type=int, nargs=2, default=[360, 10_000])
    parser.add_argument("--rss-model", choices=["stub", "real"], default=None,
                        help="default: stub on CPU, real on CUDA")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.checkpoint, args.device, args.stub, args.json_out)
        return
    device = str(resolve_device(args.device))
    stub = (args.rss_model or ("real" if device.startswith("cuda") else "stub")) == "stub"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        figures = speed(args.preset, device, args.frames, args.repeats, work)
        print(json.dumps(figures, indent=2))
        figures.update(memory(args.preset, device, args.rss_frames, stub, work))
    figures["torch_threads"] = torch.get_num_threads()
    print(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
