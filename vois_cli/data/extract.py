"""`vois extract`: the annotated 5 fps frames of one video or of a LiveVideos root.

Which frames: docs/design.md#annotated-frames.

Every video is probed and checked against its annotations before any frame is written, and
each video's frames land in a temp folder renamed into place, so a failure leaves no
partial frames folder behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vois_cli.atomic import atomic_dir
from vois_cli.data.video import (
    ANNOTATION_FPS,
    MAX_ANNOTATED_FRAMES,
    VideoInfo,
    annotated_frame_indices,
    probe,
    save_frames,
)
from vois_cli.data.ytvis import load_annotations
from vois_cli.errors import InputError


def extract_video(
    video: str | Path, out: str | Path, limit: int | None = None, info: VideoInfo | None = None
) -> int:
    """Write the 5 fps frames of `video` (the first `limit`) as `out/<i:05d>.jpg`; return count.

    `out` is replaced as a whole: it may exist only as an earlier frames folder (jpgs only).
    """
    video, out = Path(video), Path(out)
    info = info or probe(video)
    if out.exists() and (not out.is_dir() or any(p.suffix != ".jpg" for p in out.iterdir())):
        raise InputError(out, "exists and is not a frames folder", "choose another output folder")
    with atomic_dir(out) as tmp:
        return save_frames(video, tmp, ANNOTATION_FPS, limit, info)


def _annotated_lengths(root: Path) -> dict[str, tuple[int, Path]]:
    """Video name -> (annotated length, annotation file) over every split of `root`."""
    lengths: dict[str, tuple[int, Path]] = {}
    for path in sorted((root / "annotations").glob("*.json")):
        for v in load_annotations(path).videos:
            lengths[v.name] = (v.length, path)
    return lengths


def extract_root(
    root: str | Path, out: str | Path, progress: Callable[..., None] | None = None
) -> dict[str, int]:
    """Extract `root/videos/*.mp4` into `out/<name>/<i:05d>.jpg`; return frames per video.

    At most 36 frames a clip; where annotations exist their `length` must equal that count.
    """
    root, out = Path(root), Path(out)
    videos = sorted((root / "videos").glob("*.mp4"))
    if not videos:
        raise InputError(root / "videos", "no .mp4 videos found", "point at a LiveVideos root")
    lengths = _annotated_lengths(root)
    missing = sorted(set(lengths) - {v.stem for v in videos})
    if missing:
        ann = lengths[missing[0]][1]
        raise InputError(ann, f"video {missing[0]!r} has no videos/{missing[0]}.mp4", "add it")
    infos = {}
    for video in videos:
        infos[video] = info = probe(video)
        count = len(annotated_frame_indices(info.fps, info.num_frames, MAX_ANNOTATED_FRAMES))
        if video.stem in lengths and lengths[video.stem][0] != count:
            length, ann = lengths[video.stem]
            raise InputError(
                ann,
                f"video {video.stem!r} has length {length} but {video.name} gives {count} frames "
                f"at {ANNOTATION_FPS} fps",
                "fix the annotation or the video",
            )
    counts = {}
    for done, video in enumerate(videos):
        counts[video.stem] = extract_video(
            video, out / video.stem, MAX_ANNOTATED_FRAMES, infos[video]
        )
        if progress is not None:
            progress(done + 1, len(videos), video=video.stem)
    return counts
