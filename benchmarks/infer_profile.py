"""Where `vois infer`'s CPU time goes, per part of the pipeline, before and after a change.

    python3 benchmarks/infer_profile.py                  # the library as checked out: "after"
    git worktree add --detach /tmp/old REV               # a checkout of the library before
    python3 benchmarks/infer_profile.py --before /tmp/old --before-commit REV

A seed-0 random model (each library builds and saves its own) predicts the infer_speed.py
video (640x360, 5 fps) through `infer_video` after a warm-up, or the `--checkpoint`,
`--video`, `--target` and `--set` given (as infer_speed.py takes them: the post-processing's cost
depends on the masks a trained model makes), in one process per library
(the "before" one imports `--before` first); their `--repeats` runs alternate (ABBA…), so
both see the same load. The library's entry points are wrapped so each call adds its
thread's CPU time
(`time.thread_time`) to its part: decode (frames read from ffmpeg's pipe), probe, resize
(`Predictor.prepare`), forward (the model), upsample (the post-processor's resize of the
mask logits to the frame size), threshold (the rest of the post-processor), guided (the
masks snapped to the frame's edges, `mask_guide`), RLE, linking, JSON (validation and
writing). ffmpeg's processes are a part of their own; `other` is the
rest of the process's CPU time (the predictor's loops, threads and queues, the
interpreter). CPU time, unlike wall time, hardly moves when other jobs share the cores, and
it is what a CPU-bound machine pays. With `--threads` above 1 a torch op's helper threads
are counted in `other`, not in its part: profile with 1.

Rows of one stage: `seconds` of CPU per run in each part, `share` of the process's total.
`runs` holds per stage the wall and CPU time of each run and the library commit. Writes
benchmarks/results/infer_profile.json, keeping the rows of a stage it did not measure.
Wrapping only works on the entry points both the old and the new library have:
Predictor.prepare/.model/.postprocess, read_frames, probe, encode_rle (in inference.py, or in
track_score.py since session 53), TrackLinker.link (and guided_masks where the library has
it).
"""

from __future__ import annotations

import argparse
import collections
import importlib
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

import torch
from infer_speed import SPEED_VIDEO, add_input_options, save_random_checkpoint, speed_inputs
from provenance import finish, provenance

import vois_cli.infer_files as infer_files
import vois_cli.inference as inference
import vois_cli.linking as linking
import vois_cli.models.postprocess as postprocess
from vois_cli.atomic import write_json
from vois_cli.data import video as video_io

RESULTS = Path(__file__).resolve().parent / "results" / "infer_profile.json"
PARTS = ("ffmpeg", "decode", "probe", "resize", "forward", "upsample", "threshold", "guided",
         "RLE", "linking", "JSON", "other")  # fmt: skip


class Clock:
    """CPU seconds per part, added from any thread."""

    def __init__(self):
        self.seconds: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self.inside: dict[int, str] = {}  # thread -> part it is timing (nested calls count once)

    def add(self, part: str, seconds: float) -> None:
        with self._lock:
            self.seconds[part] += seconds

    def wrap(self, part: str, function):
        def timed(*args, **kwargs):
            me = threading.get_ident()
            if me in self.inside:
                return function(*args, **kwargs)
            self.inside[me], start = part, time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(part, time.thread_time() - start)
                del self.inside[me]

        return timed

    def wrap_frames(self, read_frames):
        def timed(*args, **kwargs):
            frames = read_frames(*args, **kwargs)
            try:
                while True:
                    start = time.thread_time()
                    try:
                        frame = next(frames)
                    except StopIteration:
                        return
                    finally:
                        self.add("decode", time.thread_time() - start)
                    yield frame
            finally:
                frames.close()

        return timed


class _Timed:
    """A module namespace whose `name` function is timed; every other attribute passes on."""

    def __init__(self, module, name: str, wrapped):
        self._module, self._name, self._wrapped = module, name, wrapped

    def __getattr__(self, attr):
        return self._wrapped if attr == self._name else getattr(self._module, attr)


def instrument(predictor, clock: Clock) -> None:
    """Wrap the library's entry points (see the module docstring) for `clock`."""
    predictor.prepare = clock.wrap("resize", predictor.prepare)
    model, post = predictor.model, predictor.postprocess

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return clock.wrap("forward", self.model)(*args)

        def encode_target(self, target):  # the target's part of the forward, once a video
            return clock.wrap("forward", self.model.encode_target)(target)

    predictor.model = Model()
    predictor.postprocess = clock.wrap("threshold", post)
    F = postprocess.F

    def interpolate(*args, **kwargs):  # inside "threshold": time it apart
        start = time.thread_time()
        try:
            return F.interpolate(*args, **kwargs)
        finally:
            seconds = time.thread_time() - start
            clock.add("upsample", seconds)
            clock.add("threshold", -seconds)

    postprocess.F = _Timed(F, "interpolate", interpolate)
    video_io.read_frames = clock.wrap_frames(video_io.read_frames)
    video_io.probe = clock.wrap("probe", video_io.probe)
    # the RLE encoder as the module that calls it sees it (track_score since session 53)
    rle = (
        inference
        if hasattr(inference, "encode_rle")
        else importlib.import_module("vois_cli.track_score")
    )
    rle.encode_rle = clock.wrap("RLE", rle.encode_rle)
    if hasattr(inference, "guided_masks"):  # `mask_guide`, since b803e6d
        inference.guided_masks = clock.wrap("guided", inference.guided_masks)
    linking.TrackLinker.link = clock.wrap("linking", linking.TrackLinker.link)
    infer_files.validate_predictions = clock.wrap("JSON", infer_files.validate_predictions)
    infer_files.json = _Timed(json, "dumps", clock.wrap("JSON", json.dumps))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ffmpeg runs, once reaped
    return usage.ru_utime + usage.ru_stime


def child(args) -> None:
    """A profiled process: a warm-up, then one run per "run" line on stdin, the parts' CPU
    seconds on "parts"."""
    torch.set_num_threads(args.threads)
    work = Path(args.child)
    # each library saves its own seed-0 network: a checkpoint names the config fields of the
    # library that wrote it, and an older one refuses fields it does not know
    model = args.checkpoint or save_random_checkpoint(work / f"model-{os.getpid()}.pt", args.preset)
    if args.set:  # an older library may predate `--set`: imported only when asked for
        from vois_cli.cli.infer import parse_inference

        predictor = inference.Predictor.from_checkpoint(model, "cpu", parse_inference(args.set))
    else:
        predictor = inference.Predictor.from_checkpoint(model, "cpu")
    video, target, out = work / SPEED_VIDEO, args.target, work / f"{os.getpid()}.json"
    infer_files.infer_video(video, target, out, predictor)
    clock = Clock()
    instrument(predictor, clock)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "parts":
            print(json.dumps(clock.seconds), flush=True)
            return
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        infer_files.infer_video(video, target, out, predictor)
        ffmpeg = _children_cpu() - children
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu + ffmpeg
        print(json.dumps({"wall": wall, "cpu": cpu, "ffmpeg": ffmpeg}), flush=True)


def profile(args, work: Path) -> dict[str, tuple[list[dict], dict]]:
    """(rows, summary) per stage, the stages' runs alternating (ABBA…) in two processes."""
    _, target = speed_inputs(args, work)
    libraries = {"after": None} | ({"before": args.before} if args.before else {})
    procs = {}
    for stage, path in libraries.items():
        env = dict(os.environ)
        if path:
            env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
        command = [sys.executable, __file__, "--child", str(work), "--threads", str(args.threads),
                   "--preset", args.preset, "--target", str(target)]  # fmt: skip
        command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
        command += [f"--set={item}" for item in args.set]
        procs[stage] = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    for stage, proc in procs.items():
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {stage} process failed to start (see its error above)")
    runs: dict[str, list[dict]] = {stage: [] for stage in procs}
    for r in range(args.repeats):
        for stage in list(procs)[:: 1 if r % 2 == 0 else -1]:
            procs[stage].stdin.write("run\n")
            procs[stage].stdin.flush()
            runs[stage].append(json.loads(procs[stage].stdout.readline()))
    results = {}
    for stage, proc in procs.items():
        proc.stdin.write("parts\n")
        proc.stdin.flush()
        seconds = {p: x / args.repeats for p, x in json.loads(proc.stdout.readline()).items()}
        proc.stdin.close()
        proc.wait()
        seconds["ffmpeg"] = sum(x["ffmpeg"] for x in runs[stage]) / args.repeats
        total = sum(x["cpu"] for x in runs[stage]) / args.repeats
        seconds["other"] = total - sum(seconds.values())
        rows = [
            {"stage": stage, "part": p, "seconds": round(max(seconds[p], 0.0), 4),
             "share": round(max(seconds[p], 0.0) / total, 4)}
            for p in PARTS if p in seconds
        ]  # fmt: skip
        walls, cpus = [x["wall"] for x in runs[stage]], [x["cpu"] for x in runs[stage]]
        results[stage] = (
            rows,
            {
                "frames": args.frames,
                "end_to_end_s_median": round(statistics.median(walls), 3),
                "end_to_end_s_runs": [round(w, 3) for w in walls],
                "cpu_s_median": round(statistics.median(cpus), 3),
                "cpu_s_runs": [round(c, 3) for c in cpus],
            },
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the library before")
    parser.add_argument("--before-commit", help="its commit, for the results")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see above)")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_input_options(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    inputs = {k: getattr(args, k) for k in ("before_commit", "preset", "threads", "frames",
              "repeats", "checkpoint", "video", "target", "size", "set")}  # fmt: skip
    meta = provenance(inputs, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = profile(args, Path(tmp))
    meta = finish(meta)
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = [r for r in old.get("rows", []) if r["stage"] not in results]
    runs = old.get("runs", {})
    for stage, (stage_rows, summary) in results.items():
        rows += stage_rows
        commit = args.before_commit if stage == "before" else meta["commit"]
        runs[stage] = {"library_commit": commit, **summary}
    rows.sort(key=lambda r: (r["stage"] != "before", PARTS.index(r["part"])))
    write_json(args.out, {"meta": meta, "rows": rows, "runs": runs}, indent=1)
    for r in rows:
        print(f"{r['stage']:7s} {r['part']:10s} {r['seconds']:8.3f} s {100 * r['share']:5.1f} %")
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
