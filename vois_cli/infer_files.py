"""File to file inference: one video to JSON / overlay / mask PNGs, or a whole split, resumable.

`infer_video` writes a YouTube-VIS results file for one video (video_id 1) plus, optionally,
the overlay mp4 and mask PNGs, all atomically. `infer_split` runs every video of a LiveVideos
split into one results file.

Resuming a split: finished videos are appended to a sidecar `<out>.partial` (JSON lines: a
header naming the checkpoint and annotation file, then one `{"video_id", "predictions"}`
line per video) as they complete; a rerun with the same checkpoint and split skips them.
The final file is validated against the annotations, written atomically, and the sidecar
removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vois_cli.atomic import atomic_path
from vois_cli.data.video import ANNOTATION_FPS
from vois_cli.data.ytvis import (
    Annotations,
    Video,
    load_annotations,
    validate_predictions,
    write_predictions,
)
from vois_cli.errors import InputError
from vois_cli.inference import Predictor, default_checkpoint
from vois_cli.inputs import load_target, read_video
from vois_cli.overlay import SHOW_THRESHOLD, FrameWriter
from vois_cli.results import VideoResult


def infer_video(
    video: str | Path,
    target: str | Path,
    out: str | Path,
    checkpoint: str | Path | Predictor | None = None,
    device: str = "auto",
    overlay: str | Path | None = None,
    masks: str | Path | None = None,
    fps: int = ANNOTATION_FPS,
    threshold: float = SHOW_THRESHOLD,
    progress: Callable[..., None] | None = None,
    inference: dict[str, Any] | None = None,
) -> VideoResult:
    """Predict one video; write `out` (YouTube-VIS JSON), and the overlay / mask PNGs if asked.

    `checkpoint` is a path (None: `default_checkpoint()`), loaded with `inference` fields of
    this run's (`load_model`), or an already loaded Predictor.
    The target, the video and every output path are checked before the model loads, and
    outputs appear only once the whole video is done. `threshold` selects the objects drawn
    in the overlay and the PNGs; the JSON holds every object.
    """
    image = load_target(target)
    fps = checkpoint.fps if isinstance(checkpoint, Predictor) else fps
    frames, total = read_video(video, fps)  # probes: an unreadable video fails here already
    with (
        atomic_path(out) as tmp,
        FrameWriter(overlay, masks, image, fps, threshold) as write_frame,
    ):
        predictor = (
            checkpoint
            if isinstance(checkpoint, Predictor)
            else Predictor.from_checkpoint(checkpoint, device, inference, fps=fps)
        )
        result = predictor.predict_frames(frames, image, total, progress, write_frame)
        predictions = result.to_predictions(1)
        name = Path(video).stem
        file_names = [f"{name}/{i:05d}.jpg" for i in range(result.num_frames)]
        entry = Video(1, name, result.width, result.height, len(file_names), file_names)
        validate_predictions(predictions, out, Annotations([entry], []))
        tmp.write_text(json.dumps(predictions))
    return result


def partial_path(out: str | Path) -> Path:
    """The sidecar that records finished videos of an interrupted `infer_split`."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def infer_split(
    root: str | Path,
    split: str,
    checkpoint: str | Path | None,
    out: str | Path,
    device: str = "auto",
    progress: Callable[..., None] | None = None,
    inference: dict[str, Any] | None = None,
) -> list[dict]:
    """Predict every video of `root/annotations/<split>.json`; write and return the results.

    A run resumes from the partial file of an interrupted one of the same checkpoint,
    annotations and `inference` fields."""
    root, out = Path(root), Path(out)
    annotations_path = root / "annotations" / f"{split}.json"
    annotations = load_annotations(annotations_path, require_targets=True)
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint()
    predictor = Predictor.from_checkpoint(checkpoint, device, inference)
    stat = checkpoint.stat()
    header = {
        "checkpoint": [str(checkpoint.resolve()), stat.st_size, stat.st_mtime_ns],
        "annotations": str(annotations_path.resolve()),
        "inference": inference or {},
    }
    done = _resume(partial_path(out), header)
    total = len(annotations.videos)
    if progress:
        progress(len(done), total)
    with partial_path(out).open("a") as sidecar:
        for video in annotations.videos:
            if video.id in done:
                continue
            done[video.id] = _predict_video(predictor, root, video)
            sidecar.write(json.dumps({"video_id": video.id, "predictions": done[video.id]}) + "\n")
            sidecar.flush()
            if progress:
                progress(len(done), total, video=video.name)
    predictions = [p for v in annotations.videos for p in done[v.id]]
    validate_predictions(predictions, out, annotations)
    write_predictions(out, predictions)
    partial_path(out).unlink()
    return predictions


def _predict_video(predictor: Predictor, root: Path, video) -> list[dict]:
    """One annotated video's predictions; its decoded size and length must match the file."""
    path = root / "videos" / f"{video.name}.mp4"
    result = predictor.predict(path, root / video.target, max_frames=video.length)
    got = (result.num_frames, result.width, result.height)
    if got != (video.length, video.width, video.height):
        raise InputError(
            path,
            "decodes to {} frames of {}x{} at {} fps, the annotations say {} of {}x{}".format(
                *got, predictor.fps, video.length, video.width, video.height
            ),
            "regenerate the split or fix its annotation file",
        )
    return result.to_predictions(video.id)


def _resume(path: Path, header: dict) -> dict[int, list[dict]]:
    """Finished videos recorded in the sidecar, which is left holding the header and them.

    A torn last line (an interrupted write) is dropped and that video redone.
    """
    lines = path.read_text().splitlines() if path.is_file() else []
    if not lines or _parse(lines[0]) is None:
        lines = [json.dumps(header)]
    if _parse(lines[0]) != header:
        raise InputError(
            path,
            "partial results of another checkpoint, split or --set",
            "delete it to start over, or rerun with the checkpoint, split and --set that wrote it",
        )
    done = {}
    for line in lines[1:]:
        entry = _parse(line)
        if entry is None:
            break
        done[entry["video_id"]] = entry["predictions"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines[: len(done) + 1]))
    return done


def _parse(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None
