"""Where `vois infer`'s time goes, per part of the pipeline, sampled by py-spy.

    pip install py-spy                                   # a sampling profiler, not a dependency
    python3 benchmarks/infer_profile.py --stage after    # the library as checked out
    PYTHONPATH=/tmp/old python3 benchmarks/infer_profile.py --stage before --library-commit SHA

A child process loads a seed-0 random model, warms up on the infer_speed.py video (640x360,
5 fps), then attaches py-spy to itself and runs `infer_video` `--repeats` times. Every
sample of every thread of the pipeline is put in the part its innermost library frame
belongs to: decode (reading frames from ffmpeg's pipe, so also waiting for ffmpeg), probe,
resize, forward, upsample and threshold (the post-processor's resize of the mask logits to
the frame size, and the rest of it), RLE, linking, JSON, bookkeeping (the predictor's own
loops), other; samples of a thread waiting on a queue, a lock or another thread are idle
time, not a part. A torch op running on several threads counts once (the calling thread's
time): these are thread-seconds, not CPU-seconds.

Rows of one stage: `seconds` per run in each part, `share` of the stage's total. `runs`
holds per stage the wall time of each run (threads overlap, so the parts can add up to
more), the idle thread-seconds, ffmpeg's own CPU seconds (a process py-spy does not see),
the library commit and the load. Writes benchmarks/results/infer_profile.json, replacing
the rows of `--stage` and keeping the other stage's.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from infer_speed import make_target, make_video, save_random_checkpoint
from provenance import finish, provenance

from vois_cli.atomic import write_json

RESULTS = Path(__file__).resolve().parent / "results" / "infer_profile.json"
PARTS = ("decode", "probe", "resize", "forward", "upsample", "threshold",
         "RLE", "linking", "JSON", "bookkeeping", "other")  # fmt: skip


def part(stack: list[str]) -> str | None:
    """The part of one sampled stack (frames `function (file:line)`, outermost first); "wait"
    for a thread waiting on a queue, lock or thread, None outside the pipeline."""
    if not any("vois_cli/" in frame for frame in stack):
        return None  # the profiled process between runs
    leaf = stack[-1].partition(" (")[2].rsplit(":", 1)[0] if stack else ""
    if leaf in ("threading.py", "queue.py"):
        return "wait"
    interpolating = False
    for frame in reversed(stack):
        function, _, where = frame.partition(" (")
        path = where.rsplit(":", 1)[0]
        interpolating |= function == "interpolate" and path.endswith("torch/nn/functional.py")
        if "vois_cli/" not in path:
            if path.startswith("json/"):
                return "JSON"
            continue
        name = path.split("vois_cli/", 1)[1]
        if name == "models/postprocess.py":
            return "upsample" if interpolating else "threshold"
        if name.startswith("models/"):
            return "forward"
        if name == "data/ytvis.py":
            return "RLE" if function in ("encode_rle", "encode") else "JSON"
        if name == "linking.py":
            return "linking"
        if name == "data/video.py":
            return "probe" if function == "probe" else "decode"
        if name == "data/transforms.py" or function.endswith("prepare"):
            return "resize"
        if name in ("infer_files.py", "atomic.py"):
            return "JSON"
        if name == "inference.py":
            return "bookkeeping"
    return "other"


def child(args) -> None:
    """Runs in the profiled process: warm-up, then py-spy on itself over the timed runs."""
    from vois_cli.infer_files import infer_video
    from vois_cli.inference import Predictor

    torch.set_num_threads(args.threads)
    work = Path(args.child)
    predictor = Predictor.from_checkpoint(work / "model.pt", "cpu")
    video, target = work / "video.mp4", work / "target.png"
    infer_video(video, target, work / "warm.json", predictor)
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(os.getpid()), "--threads", "--idle",
         "--rate", str(args.rate),
         "--format", "raw", "--output", str(work / "samples.txt"), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(2)  # py-spy attaches
    ffmpeg_cpu = _children_cpu()
    walls = []
    for r in range(args.repeats):
        start = time.perf_counter()
        infer_video(video, target, work / f"run{r}.json", predictor)
        walls.append(time.perf_counter() - start)
    ffmpeg_cpu = _children_cpu() - ffmpeg_cpu
    spy.send_signal(signal.SIGINT)
    _, stderr = spy.communicate(timeout=60)
    if not (work / "samples.txt").is_file():
        raise RuntimeError(f"py-spy wrote no samples: {stderr.decode().strip()}")
    json.dump({"walls": walls, "ffmpeg_cpu_s": ffmpeg_cpu}, sys.stdout)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ffmpeg runs, once they are reaped
    return usage.ru_utime + usage.ru_stime


def profile(args, work: Path) -> tuple[list[dict], dict]:
    save_random_checkpoint(work / "model.pt", args.preset)
    make_video(work / "video.mp4", args.frames, 640, 360)
    make_target(work / "target.png")
    command = [sys.executable, __file__, "--child", str(work), "--threads", str(args.threads)]
    command += ["--repeats", str(args.repeats), "--rate", str(args.rate)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"profiled child failed:\n{run.stderr}")
    timing = json.loads(run.stdout)
    samples: collections.Counter = collections.Counter()
    for line in (work / "samples.txt").read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        samples[part(stack.split(";")[1:])] += int(count)
    seconds = {p: n / args.rate / args.repeats for p, n in samples.items() if p}
    waiting = seconds.pop("wait", 0.0)
    total = sum(seconds.values())
    rows = [
        {"stage": args.stage, "part": p, "seconds": round(seconds[p], 4),
         "share": round(seconds[p] / total, 4)}
        for p in PARTS if p in seconds
    ]  # fmt: skip
    walls = sorted(timing["walls"])
    summary = {
        "end_to_end_s_median": round(walls[len(walls) // 2], 3),
        "end_to_end_s_runs": [round(w, 3) for w in timing["walls"]],
        "parts_total_s": round(total, 3),
        "waiting_s": round(waiting, 3),
        "ffmpeg_cpu_s": round(timing["ffmpeg_cpu_s"] / args.repeats, 3),
    }
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["before", "after"], default="after")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--library-commit", help="commit of the vois_cli on PYTHONPATH")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("py-spy") is None:
        sys.exit("infer_profile.py needs py-spy: pip install py-spy")
    inputs = {k: getattr(args, k) for k in ("stage", "preset", "threads", "frames", "repeats")}
    meta = provenance(inputs, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows, summary = profile(args, Path(tmp))
    meta = finish(meta)
    import vois_cli

    summary = {
        "library_commit": args.library_commit or meta["commit"],
        "library": str(Path(vois_cli.__file__).parent),
        **summary,
        "load_before": meta["machine"]["load_before"],
        "load_after": meta["machine"]["load_after"],
        "other_cpu": meta["machine"]["other_cpu"],
    }
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = [r for r in old.get("rows", []) if r["stage"] != args.stage] + rows
    rows.sort(key=lambda r: (r["stage"] != "before", PARTS.index(r["part"])))
    runs = old.get("runs", {}) | {args.stage: summary}
    write_json(args.out, {"meta": meta, "rows": rows, "runs": runs}, indent=1)
    for r in rows:
        print(f"{r['stage']:7s} {r['part']:16s} {r['seconds']:8.3f} s {100 * r['share']:5.1f} %")
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
