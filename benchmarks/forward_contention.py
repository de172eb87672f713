"""What the other stages of `vois infer` cost the model's forward when they share the machine.

    python3 benchmarks/forward_contention.py      # -> results/forward_contention.json

In `vois infer` the forward runs in one thread while decoding, resizing and post-processing
run beside it (benchmarks/infer_speed.py: `pipelined_forward_s` against `bare_model_s`).
This measures each stage's cost to the forward alone: a seed-0 random `tiny` model (one torch
thread, in a thread of its own as `predict` runs it) runs the clips of the infer_speed.py
video while one load runs on the other core, without pause, until the forwards end:

- `ffmpeg decode`: ffmpeg decoding a 640x360 mp4 and dropping the frames (`-f null`);
- `ffmpeg decode + rgb24`: the same, converting each frame to RGB and writing it to /dev/null;
- `read_frames`: the same decoder streaming its frames into this process (the decode stage);
- `prepare`: the frames resized to the model input (the resize stage);
- `post-processing`: one clip's outputs post-processed, linked and RLE-encoded (the
  post-processing stage, `Stream._decide`; each time in a fresh stream, whose target
  encoding adds about a tenth to the load);
- `numpy sort`: a control, a compute-bound job in this process that streams no frames.

`--repeats` rounds visit the loads in turn (each round in another order); the figure of a
load is the median over rounds of the time per forward, and its `slowdown` the ratio to the
median without load (`none`). Random weights: speed does not depend on training.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from infer_speed import make_target, make_video, save_random_checkpoint
from PIL import Image
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.data.video import read_frames
from vois_cli.inference import Predictor, _Clip
from vois_cli.linking import plan_clips

RESULTS = Path(__file__).resolve().parent / "results" / "forward_contention.json"


def ffmpeg_loop(video: Path, rgb: bool):
    """A load: ffmpeg decoding `video` again and again (to null, or to RGB in /dev/null)."""
    out = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"] if rgb else ["-f", "null", "-"]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(video), *out]

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            with subprocess.Popen(command) as proc:
                while proc.poll() is None:
                    if stop.wait(0.01):
                        proc.kill()

    return run


def loads(
    predictor: Predictor, video: Path, frames: list, inputs: torch.Tensor, image, encoded
) -> dict:
    """name -> run(stop): work repeated until `stop` is set."""
    clip = list(range(predictor.clip_len))
    with torch.inference_mode():
        outputs = predictor.model(inputs[clip][None], encoded)
    sortable = np.random.default_rng(0).random(4096)

    def read(stop: threading.Event) -> None:
        while not stop.is_set():
            decoder = read_frames(video)
            for _ in decoder:
                if stop.is_set():
                    break
            decoder.close()

    def prepare(stop: threading.Event) -> None:
        while not stop.is_set():
            for frame in frames[: len(clip)]:
                predictor.prepare(frame)

    def post_process(stop: threading.Event) -> None:
        while not stop.is_set():
            live = predictor.stream(image)
            live._size = frames[0].shape[:2]
            live._decide(_Clip(outputs, tuple(clip), len(clip), range(len(clip)), frames))

    def sort(stop: threading.Event) -> None:
        while not stop.is_set():
            np.sort(sortable)

    return {
        "none": None,
        "ffmpeg decode": ffmpeg_loop(video, rgb=False),
        "ffmpeg decode + rgb24": ffmpeg_loop(video, rgb=True),
        "read_frames": read,
        "prepare": prepare,
        "post-processing": post_process,
        "numpy sort": sort,
    }


def forward_time(predictor: Predictor, inputs: torch.Tensor, encoded, load) -> float:
    """Seconds per forward over the clips of `inputs` (the prepared frames), with `load`
    running meanwhile."""
    clips = plan_clips(len(inputs), predictor.clip_len, predictor.overlap)
    times = []

    def forwards() -> None:
        with torch.inference_mode():
            for clip in clips:
                start = time.perf_counter()
                predictor.model(inputs[list(clip.frames)][None], encoded)
                times.append(time.perf_counter() - start)

    stop = threading.Event()
    worker = threading.Thread(target=load, args=(stop,)) if load else None
    if worker:
        worker.start()
        time.sleep(0.2)  # the load is under way before the first forward
    thread = threading.Thread(target=forwards)
    thread.start()
    thread.join()
    stop.set()
    if worker:
        worker.join()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96, help="frames of the forwards' video")
    parser.add_argument("--repeats", type=int, default=5, help="rounds over the loads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    meta = provenance({"preset": "tiny", "frames": args.frames, "repeats": args.repeats}, 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        predictor = Predictor.from_checkpoint(save_random_checkpoint(work / "t.pt", "tiny"), "cpu")
        video = make_video(work / "speed.mp4", args.frames, 640, 360)
        frames = list(read_frames(video))
        inputs = torch.stack([predictor.prepare(f) for f in frames])
        image = Image.open(make_target(work / "target.png")).convert("RGB")
        encoded = predictor.stream(image)._target  # the target encoded as `predict` does
        jobs = loads(predictor, video, frames, inputs, image, encoded)
        forward_time(predictor, inputs, encoded, None)  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in jobs}
        order = list(jobs)
        for r in range(args.repeats):
            random.Random(r).shuffle(order)
            for name in order:
                seconds[name].append(forward_time(predictor, inputs, encoded, jobs[name]))
            print(f"round {r + 1}: " + ", ".join(f"{k} {seconds[k][-1]:.3f}" for k in jobs))
    alone = statistics.median(seconds["none"])
    rows = [
        {
            "load": name,
            "forward_s": round(statistics.median(s), 4),
            "slowdown": round(statistics.median(s) / alone, 3),
            "forward_s_runs": [round(x, 4) for x in s],
        }
        for name, s in seconds.items()
    ]
    figures = {"meta": finish(meta), "video": f"640x360 mp4, {args.frames} frames", "rows": rows}
    print(json.dumps(rows, indent=2))
    write_json(args.out, figures, indent=2)


if __name__ == "__main__":
    main()
