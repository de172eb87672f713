"""SynthLive writer: renders scenes into a LiveVideos-layout benchmark (docs/design.md#synthlive).

    <root>/videos/clipNNNNN.mp4        H.264, 20 fps
    <root>/targets/clipNNNNN.jpg       the target product, upright on white
    <root>/annotations/{train,test}.json          the target's instances (the benchmark)
    <root>/annotations/{train,test}_all.json      every product instance, with its `role`
    <root>/synth.json                  what each clip contains (products and roles), for people

`*_all.json` is class-agnostic video instance segmentation on the same videos: the same
video ids, and the relevant objects with the same segmentations as `train.json`/`test.json`,
plus every look-alike and clutter object visible in some annotated frame. Each of its objects
carries `role` ("target", "negative" or "clutter") and `product` (its attributes).

Clip k depends only on (seed, k), so a benchmark is reproducible clip by clip, in any order
and with any number of workers. The benchmark is built in a temporary folder beside `root`
and renamed onto it at the end: an interrupted run leaves nothing under `root`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from vois_cli.atomic import atomic_dir, atomic_path, write_json
from vois_cli.data.products import ATTRIBUTES, target_image
from vois_cli.data.scene import Scene, make_scene, render_frame
from vois_cli.data.video import ANNOTATION_FPS, VideoWriter
from vois_cli.data.ytvis import CATEGORIES, CATEGORY_ID, encode_rle, validate_annotations
from vois_cli.errors import InputError

SOURCE_FPS = 20
STRIDE = SOURCE_FPS // ANNOTATION_FPS  # annotated frame i is source frame 4i


@dataclass(frozen=True)
class SynthPreset:
    """Benchmark size: clips per split, frame size and clip length in source frames."""

    name: str
    train: int
    test: int
    width: int
    height: int
    frames: tuple[int, int]  # inclusive range of source frames per clip (20 fps)
    target_size: int  # side of the square target image
    stream: int = 0  # > 0: a random stream of its own, so no clip repeats another preset's

    @property
    def clips(self) -> int:
        return self.train + self.test


SYNTH_PRESETS: dict[str, SynthPreset] = {
    # tests: 2.0–2.4 s clips, 10–12 annotated frames
    "tiny": SynthPreset("tiny", 4, 2, 160, 96, (40, 48), 96),
    # `dvc repro` on a 2-core CPU; LiveVideos' 5.0–7.2 s clips, 26–36 annotated frames
    "default": SynthPreset("default", 48, 12, 320, 180, (100, 144), 192),
    # many short clips, one target product each: identities for the `pretrain` stage
    "pretrain": SynthPreset("pretrain", 480, 24, 320, 180, (40, 48), 192, stream=1),
    # the paper's scale and split (1935 / 483)
    "full": SynthPreset("full", 1935, 483, 640, 360, (100, 144), 320),
}
EXTRA_STREAM = 2  # the random stream of a benchmark's extra training clips (write_benchmark)


def synth_preset(name: str) -> SynthPreset:
    if name not in SYNTH_PRESETS:
        raise InputError(
            None, f"unknown SynthLive preset {name!r}", f"choose one of {', '.join(SYNTH_PRESETS)}"
        )
    return SYNTH_PRESETS[name]


def clip_name(index: int) -> str:
    return f"clip{index:05d}"


def clip_scene(
    preset: SynthPreset, seed: int, index: int, look_alikes: tuple[str, ...] = ATTRIBUTES
) -> tuple[Scene, list]:
    """Clip `index`'s scene and its rendered annotated frames [(frame, labels), ...].

    A layout in which some instance of the target is never visible in an annotated frame
    is drawn again, so every ground-truth object is present at least once.
    """
    rng = np.random.default_rng([seed, index, preset.stream] if preset.stream else [seed, index])
    num_frames = int(rng.integers(preset.frames[0], preset.frames[1] + 1))
    while True:
        scene = make_scene(rng, preset.width, preset.height, num_frames, look_alikes)
        annotated = [render_frame(scene, t) for t in range(0, num_frames, STRIDE)]
        if all(any((lab == k).any() for _, lab in annotated) for k in scene.relevant):
            return scene, annotated


def _mask_track(masks: list[np.ndarray]) -> dict:
    """One object's per-frame visible masks -> the annotation fields (null where empty)."""
    segs, areas, boxes = [], [], []
    for m in masks:
        if not m.any():
            segs.append(None)
            areas.append(None)
            boxes.append(None)
            continue
        ys, xs = np.nonzero(m)
        segs.append(encode_rle(m))
        areas.append(int(m.sum()))
        boxes.append([int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1])
    return {"segmentations": segs, "areas": areas, "bboxes": boxes}


def write_clip(
    root: Path, preset: SynthPreset, seed: int, index: int, look_alikes: tuple[str, ...]
) -> dict:
    """Render clip `index`: write its mp4 and target; return its annotations (`objects` the
    relevant ones, `all` every visible product with its role) and manifest."""
    name = clip_name(index)
    scene, annotated = clip_scene(preset, seed, index, look_alikes)
    with atomic_path(root / "targets" / f"{name}.jpg") as tmp:
        image = Image.fromarray(target_image(scene.target, preset.target_size))
        image.save(tmp, format="JPEG", quality=95)
    with VideoWriter(root / "videos" / f"{name}.mp4", scene.width, scene.height, SOURCE_FPS) as w:
        for t in range(scene.num_frames):
            w.write(annotated[t // STRIDE][0] if t % STRIDE == 0 else render_frame(scene, t)[0])
    tracks = [_mask_track([lab == k for _, lab in annotated]) for k in range(len(scene.tracks))]
    every = [
        {**tr, "role": track.role, "product": track.product.to_dict()}
        for tr, track in zip(tracks, scene.tracks, strict=True)
        if any(s is not None for s in tr["segmentations"])
    ]
    manifest = {
        "name": name,
        "source_frames": scene.num_frames,
        "target": scene.target.to_dict(),
        "objects": [{"role": tr.role, **tr.product.to_dict()} for tr in scene.tracks],
    }
    return {
        "name": name,
        "length": len(annotated),
        "objects": [tracks[k] for k in scene.relevant],
        "all": every,
        "manifest": manifest,
    }


def _split_json(preset: SynthPreset, clips: list[tuple[int, dict]], objects: str) -> dict:
    """The YouTube-VIS / LiveVideos annotation file for `clips` [(video id, clip)], with each
    clip's `objects` ("objects": the relevant ones, "all": every product)."""
    videos, annotations = [], []
    for video_id, clip in clips:
        name, length = clip["name"], clip["length"]
        videos.append(
            {
                "id": video_id,
                "name": name,
                "width": preset.width,
                "height": preset.height,
                "length": length,
                "file_names": [f"{name}/{i:05d}.jpg" for i in range(length)],
                "target": f"targets/{name}.jpg",
                "source_fps": SOURCE_FPS,
            }
        )
        for obj in clip[objects]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "video_id": video_id,
                    "category_id": CATEGORY_ID,
                    "iscrowd": 0,
                    **obj,
                }
            )
    return {"videos": videos, "annotations": annotations, "categories": CATEGORIES}


def _fresh_root(root: Path) -> None:
    """`root` must be absent or an empty folder: a benchmark is never mixed with old files."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(root, "already exists and is not an empty folder", "choose a new path")


def write_benchmark(
    root: str | Path,
    preset: str = "default",
    seed: int = 0,
    workers: int = 1,
    progress: Callable[..., None] | None = None,
    look_alikes: tuple[str, ...] = ATTRIBUTES,
    extra_train: int = 0,
) -> dict:
    """Generate a SynthLive benchmark at `root`; returns the manifest written to synth.json.

    `workers` > 1 renders clips in that many processes; the output is the same byte for byte.
    `look_alikes`: the attributes a hard negative may differ in (e.g. ("colour",) only).
    `extra_train` more clips join the train split, drawn after the preset's clips from a
    random stream of their own (EXTRA_STREAM): the preset's clips, its test split included,
    stay what they are without them.
    """
    spec = synth_preset(preset)
    if not look_alikes or not set(look_alikes) <= set(ATTRIBUTES):
        raise InputError(
            None,
            f"look-alike attributes {list(look_alikes)}",
            f"choose from {', '.join(ATTRIBUTES)}",
        )
    root = Path(root)
    _fresh_root(root)
    with atomic_dir(root) as build:
        clips = []
        jobs = [(build, spec, seed, k, tuple(look_alikes)) for k in range(spec.clips)]
        extra = replace(spec, stream=EXTRA_STREAM)
        jobs += [
            (build, extra, seed, k, tuple(look_alikes))
            for k in range(spec.clips, spec.clips + extra_train)
        ]
        with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
            for clip in pool.map(write_clip, *zip(*jobs, strict=True)):
                clips.append(clip)
                if progress is not None:
                    progress(len(clips), len(jobs), clip=clip["name"])
        # video id = clip index + 1: the test split's ids do not move with extra_train
        train = [*range(spec.train), *range(spec.clips, len(clips))]
        splits = {"train": train, "test": range(spec.train, spec.clips)}
        for split, part in splits.items():
            for suffix, objects in (("", "objects"), ("_all", "all")):
                path = build / "annotations" / f"{split}{suffix}.json"
                ann = _split_json(spec, [(k + 1, clips[k]) for k in part], objects)
                validate_annotations(ann, path, require_targets=True)
                write_json(path, ann)
        manifest = {
            "preset": spec.name,
            "seed": seed,
            "look_alikes": list(look_alikes),
            "source_fps": SOURCE_FPS,
            "splits": {split: [clips[k]["name"] for k in part] for split, part in splits.items()},
            "clips": [c["manifest"] for c in clips],  # objects listed back to front
        }
        write_json(build / "synth.json", manifest, indent=1)
    return manifest


class _Serial:
    """In-process stand-in for an executor: `map` runs the calls in order."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def map(fn, *iterables):
        return map(fn, *iterables)
