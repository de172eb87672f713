"""`vois infer` speed and memory: end to end vs the bare model, live stream, peak RSS vs length.

    python3 benchmarks/infer_speed.py --threads 1 2      # tiny on CPU -> results/infer_speed.json
    python3 benchmarks/infer_speed.py --preset paper --frames 36 --no-rss --no-stream
                                                         # -> results/infer_speed_paper.json
    python3 benchmarks/infer_speed.py --device cuda --preset paper

1. Speed: a generated 640x360 5 fps mp4 through `infer_video` (probe, decode, resize, model,
   post-processing, linking, RLE, JSON) against the bare model forward over the very same
   clips on frames decoded and resized beforehand (in a thread, as `predict` runs it). Both
   run in this process with torch's thread count fixed (each of `--threads` in turn), one
   after the other (the order alternating), `--repeats` times after one warm-up each. Times
   are medians; overhead = the median over repeats of end-to-end / bare - 1 (goal <= 0.10):
   a load spike of a shared machine moves one pair's ratio, not the figure. `cpu_overhead`
   is the same ratio of CPU seconds (this process's threads and ffmpeg's): the extra work,
   whatever the other jobs do. The wall-time overhead can be lower where the pipeline's
   threads find idle cores, never lower than what the model's thread waits for: `fill_s`
   (from the call to the first forward: probe, ffmpeg's first frame, the first clip's
   frames) and `drain_s` (from the last forward's end: the last clip's post-processing, the
   JSON), a fixed cost per video whatever its length; `fixed_overhead` = their sum / bare.
   `pipelined_forward_s` is the forwards' own time inside the end-to-end run (against
   `bare_model_s`: what sharing the cores with the other stages costs the model).
2. Stream: the same frames pushed one at a time into `Predictor.stream`, as a camera would
   hand them: throughput when pushed as fast as it takes them, and each frame's latency from
   a live 5 fps source = the wait for the last frame of the clip that decides it + the
   compute of that push (median and max over frames, median over repeats).
3. Memory: peak RSS of a fresh process predicting a 360-frame and a 10,000-frame video
   (goal: ratio <= 1.2). `--rss-model stub` (the default on CPU, where the real model would
   take an hour for 10,000 frames) swaps the network for random outputs of its shapes, so
   the pipeline (decoding, clip buffer, post-processing, linking, RLE store, JSON) is what
   is measured.

The network's weights do not change its forward's cost, but they change the post-processing's:
how many masks pass the threshold, their size (the guided filter works over each mask's box),
the tracks. By default a seed-0 random network of `--preset` predicts a generated video (two
squares drifting over noise) for a SynthLive product photo; `--checkpoint` (a trained model,
its own preset), `--video`, `--target` and `--set` (inference fields) measure what a user's
model, footage, product and settings give:

    python3 benchmarks/infer_speed.py --checkpoint runs/train/last.pt \
        --video data/synthlive/videos/clip00058.mp4 --target data/synthlive/targets/clip00058.jpg

(the video's first `--frames` frames at 5 fps, played forward and back again where it is
shorter, resized to `--size`, 640x360 by default as the generated one). Prints the figures
and writes them with their provenance (benchmarks/provenance.py) to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.checkpoint import resolve_device, save_checkpoint
from vois_cli.cli.infer import parse_inference
from vois_cli.config import preset
from vois_cli.data.products import random_product, target_image
from vois_cli.data.synth import synth_preset
from vois_cli.data.transforms import Geometry, resized_shape, to_model_input
from vois_cli.data.video import VideoWriter, read_frames
from vois_cli.infer_files import infer_video
from vois_cli.inference import Predictor
from vois_cli.linking import plan_clips
from vois_cli.models import build_model

RESULTS = Path(__file__).resolve().parent / "results"
LIVE_FPS = 5  # a live source hands over one output frame every 1/5 s
SPEED_VIDEO = "speed.mp4"  # the speed video's name in the work folder (`speed_inputs`)


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


def loop_video(source: Path, path: Path, frames: int, width: int, height: int) -> Path:
    """`source`'s first `frames` output frames (5 fps), played forward and back again while
    it has fewer, resized to width x height, as a 5 fps mp4."""
    clip = [
        np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR))
        for f in read_frames(source, LIVE_FPS, limit=frames)
    ]
    if not clip:
        raise SystemExit(f"infer_speed: {source}: no frames")
    order = list(range(len(clip))) + list(range(len(clip) - 2, 0, -1))  # forward, back
    with VideoWriter(path, width, height, LIVE_FPS) as writer:
        for f in range(frames):
            writer.write(clip[order[f % len(order)]])
    return path


def speed_inputs(args, work: Path) -> tuple[Path, Path]:
    """(video, target) of a run: the user's where given, else generated."""
    width, height = args.size
    video = work / SPEED_VIDEO
    if args.video:
        loop_video(Path(args.video), video, args.frames, width, height)
    else:
        make_video(video, args.frames, width, height)
    target = Path(args.target) if args.target else make_target(work / "target.png")
    return video, target


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="a trained model (default: random, of --preset)")
    parser.add_argument("--video", help="your footage (default: generated)")
    parser.add_argument("--target", help="your target photo (default: a SynthLive product's)")
    parser.add_argument("--size", type=int, nargs=2, default=[640, 360], metavar=("W", "H"),
                        help="the speed video's frame size")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="model.FIELD=VALUE",
                        help="an inference field, as `vois infer --set`")  # fmt: skip


def save_random_checkpoint(path: Path, preset_name: str) -> Path:
    torch.manual_seed(0)
    config = preset(preset_name)
    model, _, _ = build_model(config)
    save_checkpoint(path, config=config.to_dict(), model=model.state_dict())
    return path


def make_target(path: Path) -> Path:
    """A SynthLive target photo: a product centred on white, as a user's query looks (the
    colour maps' cost depends on how much white surrounds the product)."""
    product = random_product(np.random.default_rng(0))
    Image.fromarray(target_image(product, synth_preset("default").target_size)).save(path)
    return path


class StubModel(torch.nn.Module):
    """Random outputs of the real model's shapes: blobby masks, so RLEs look like real ones."""

    def __init__(self, num_queries: int):
        super().__init__()
        self.n = num_queries
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode_target(self, target):
        return target

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


def _cpu_s() -> float:
    """CPU seconds of this process's threads and of its finished children (ffmpeg)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(run) -> tuple[float, float]:
    """(wall, CPU) seconds of `run()`."""
    start, cpu = time.perf_counter(), _cpu_s()
    run()
    return time.perf_counter() - start, _cpu_s() - cpu


class ForwardClock(torch.nn.Module):
    """The model, recording each call's wall-clock (start, end): the pipeline's timeline."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        super().__init__()
        self.model, self.device, self.spans = model, device, []

    def encode_target(self, target: torch.Tensor):
        return self.model.encode_target(target)

    def forward(self, *args):
        start = time.perf_counter()
        outputs = self.model(*args)
        _sync(self.device)
        self.spans.append((start, time.perf_counter()))
        return outputs


def speed(predictor: Predictor, video: Path, target: Path, repeats: int, work: Path) -> dict:
    """End-to-end `infer_video` vs bare model forward on the same clips, interleaved."""
    cfg, device = predictor.config.model, predictor.device
    decoded = list(read_frames(video))
    height, width = decoded[0].shape[:2]
    size = resized_shape(height, width, cfg.short_edge, cfg.max_long_edge)
    inputs = to_model_input(np.stack(decoded), size, Geometry.identity(height, width))
    image = np.asarray(Image.open(target).convert("RGB"))
    target_size = resized_shape(*image.shape[:2], cfg.short_edge, cfg.max_long_edge)
    target_input = to_model_input(image[None], target_size, Geometry.identity(*image.shape[:2]))
    target_input = target_input.to(device)
    clips = plan_clips(len(decoded), predictor.clip_len, predictor.overlap)

    def forward_all() -> None:
        with torch.inference_mode():
            target = predictor.model.encode_target(target_input)  # once a video, as `predict`
            for clip in clips:
                predictor.model(inputs[list(clip.frames)][None].to(device), target)
        _sync(device)

    def bare() -> None:
        # in a thread of its own, as `predict` runs the model: a thread's intra-op pool
        # behaves differently from the main thread's on a busy machine
        thread = threading.Thread(target=forward_all)
        thread.start()
        thread.join()

    model, timelines = predictor.model, []

    def end_to_end() -> None:
        predictor.model = clock = ForwardClock(model, device)
        start = time.perf_counter()
        try:
            infer_video(video, target, work / "speed.json", predictor)
        finally:
            predictor.model = model
        (first, _), (_, last) = clock.spans[0], clock.spans[-1]
        forward = sum(b - a for a, b in clock.spans)
        timelines.append((first - start, time.perf_counter() - last, forward))

    bare(), end_to_end()  # warm-up: allocator, kernels, caches, page cache
    timelines.clear()
    runs = []
    for r in range(repeats):
        if r % 2 == 0:
            b = _timed(bare)
            runs.append((b, _timed(end_to_end)))
        else:
            e = _timed(end_to_end)
            runs.append((_timed(bare), e))
    bare_s = statistics.median(b[0] for b, _ in runs)
    end_to_end_s = statistics.median(e[0] for _, e in runs)
    pairs = zip(timelines, runs, strict=True)
    fixed = [(fill + drain) / b[0] for (fill, drain, _), (b, _) in pairs]
    n = len(decoded)
    return {
        "video": f"{width}x{height} mp4, 5 fps",
        "frames": n,
        "input_size": list(size),
        "clips": len(clips),
        "clip_len": predictor.clip_len,
        "overlap": predictor.overlap,
        "repeats": repeats,
        "bare_model_s": round(bare_s, 3),
        "end_to_end_s": round(end_to_end_s, 3),
        "bare_model_fps": round(n / bare_s, 1),
        "end_to_end_fps": round(n / end_to_end_s, 1),
        "overhead": round(statistics.median(e[0] / b[0] for b, e in runs) - 1, 3),
        "cpu_overhead": round(statistics.median(e[1] / b[1] for b, e in runs) - 1, 3),
        "fill_s": round(statistics.median(t[0] for t in timelines), 3),
        "drain_s": round(statistics.median(t[1] for t in timelines), 3),
        "fixed_overhead": round(statistics.median(fixed), 3),
        "pipelined_forward_s": round(statistics.median(t[2] for t in timelines), 3),
        "bare_model_cpu_s": round(statistics.median(b[1] for b, _ in runs), 3),
        "end_to_end_cpu_s": round(statistics.median(e[1] for _, e in runs), 3),
        "bare_model_s_runs": [round(b[0], 3) for b, _ in runs],
        "end_to_end_s_runs": [round(e[0], 3) for _, e in runs],
    }


def stream(predictor: Predictor, video: Path, target: Path, repeats: int) -> dict:
    """`Predictor.stream` fed decoded frames one at a time: throughput and live latency."""
    frames = list(read_frames(video))
    image = Image.open(target).convert("RGB")

    def once() -> tuple[float, list[float]]:
        live = predictor.stream(image)
        pushes, decided_at = [], {}
        for f, frame in enumerate(frames):
            start = time.perf_counter()
            decided = live.push(frame)
            pushes.append(time.perf_counter() - start)
            decided_at.update((d.index, f) for d in decided)
        start = time.perf_counter()
        tail = live.close()
        pushes.append(time.perf_counter() - start)  # close: the last clip, "pushed" at the end
        decided_at.update((d.index, len(frames)) for d in tail)
        last = len(frames) - 1
        latency = [(min(k, last) - f) / LIVE_FPS + pushes[k] for f, k in sorted(decided_at.items())]
        return sum(pushes), latency

    once()  # warm-up
    runs = [once() for _ in range(repeats)]
    total = statistics.median(t for t, _ in runs)
    return {
        "frames": len(frames),
        "repeats": repeats,
        "throughput_fps": round(len(frames) / total, 1),
        "latency_s_median": round(statistics.median(statistics.median(x) for _, x in runs), 3),
        "latency_s_max": round(statistics.median(max(x) for _, x in runs), 3),
        "latency_note": f"live {LIVE_FPS} fps source: wait for the deciding clip + its compute",
    }


def peak_rss(video: Path, ckpt: Path, args, stub: bool, out: Path) -> tuple[float, float]:
    """(peak, final) RSS in MiB of a fresh process running `infer_video` on `video`.

    The peak includes loading torch and the model; the final RSS shows what the run kept.
    """
    command = [sys.executable, __file__, "--rss-child", str(video), "--checkpoint", str(ckpt)]
    command += ["--device", args.device, "--threads", str(args.threads[0]), "--json-out", str(out)]
    command += ["--stub"] if stub else []
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    peak, end = run.stdout.strip().splitlines()[-1].split()
    return float(peak), float(end)


def rss_child(args) -> None:
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    if args.stub:
        predictor.model = StubModel(predictor.config.model.num_queries).to(predictor.device)
    target = make_target(Path(args.json_out).with_suffix(".png"))
    infer_video(args.rss_child, target, args.json_out, predictor)
    status = Path("/proc/self/status").read_text()
    end = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, end / 1024)


def memory(ckpt: Path, args, stub: bool, work: Path) -> dict:
    rss = {}
    for frames in args.rss_frames:
        video = make_video(work / f"rss{frames}.mp4", frames, 320, 180)
        start = time.perf_counter()
        rss[frames] = peak_rss(video, ckpt, args, stub, work / f"rss{frames}.json")
        seconds = time.perf_counter() - start
        print(f"  {frames} frames: peak, final RSS {rss[frames]} MiB ({seconds:.0f} s)")
    short, long = args.rss_frames
    return {
        "rss_model": "stub (random outputs of the model's shapes)" if stub else "the model's",
        "rss_video": "320x180 mp4, 5 fps",
        "peak_rss_mib": {str(k): round(v[0], 1) for k, v in rss.items()},
        "final_rss_mib": {str(k): round(v[1], 1) for k, v in rss.items()},
        "rss_ratio": round(rss[long][0] / rss[short][0], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()],
                        help="torch thread counts, measured one after the other")  # fmt: skip
    parser.add_argument("--frames", type=int, default=96, help="frames of the speed video")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs, median taken")
    parser.add_argument("--rss-frames", type=int, nargs=2, default=[360, 10_000])
    parser.add_argument("--no-rss", action="store_true", help="skip the memory figures")
    parser.add_argument("--no-stream", action="store_true", help="skip the stream figures")
    parser.add_argument("--rss-model", choices=["stub", "real"], default=None,
                        help="default: stub on CPU, real on CUDA")  # fmt: skip
    parser.add_argument("--out", type=Path, help="default: results/infer_speed[_PRESET].json")
    add_input_options(parser)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads[0])
    if args.rss_child:
        rss_child(args)
        return
    device = str(resolve_device(args.device))
    stub = (args.rss_model or ("real" if device.startswith("cuda") else "stub")) == "stub"
    inputs = {k: v for k, v in vars(args).items() if k in ("preset", "device", "threads",
              "frames", "repeats", "rss_frames", "no_rss", "no_stream", "rss_model",
              "checkpoint", "video", "target", "size", "set")}  # fmt: skip
    meta = provenance(inputs, args.threads[0] if len(args.threads) == 1 else args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = args.checkpoint or save_random_checkpoint(work / "model.pt", args.preset)
        video, target = speed_inputs(args, work)
        predictor = Predictor.from_checkpoint(ckpt, device, parse_inference(args.set))
        preset_name = predictor.config.model.preset  # the checkpoint's, with --checkpoint
        suffix = "" if preset_name == "tiny" else f"_{preset_name}"
        out = args.out or RESULTS / f"infer_speed{suffix}.json"
        figures = {"preset": preset_name, "device": device, "speed": [], "stream": []}
        for threads in args.threads:
            torch.set_num_threads(threads)
            figures["speed"].append(
                {"threads": threads, **speed(predictor, video, target, args.repeats, work)}
            )
            print(json.dumps(figures["speed"][-1], indent=2), flush=True)
            if not args.no_stream:
                figures["stream"].append(
                    {"threads": threads, **stream(predictor, video, target, args.repeats)}
                )
                print(json.dumps(figures["stream"][-1], indent=2), flush=True)
        torch.set_num_threads(args.threads[0])
        meta = finish(meta)  # the load during the speed figures; memory runs apart
        if not args.no_rss:
            figures["memory"] = memory(ckpt, args, stub, work)
    figures = {"meta": meta, **figures}
    print(json.dumps(figures, indent=2))
    write_json(out, figures, indent=2)


if __name__ == "__main__":
    main()
