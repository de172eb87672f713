"""The data contract: LiveVideos / YouTube-VIS annotation files and YouTube-VIS prediction files.

Every command reads annotations and predictions through `load_annotations` and
`load_predictions`, so a file is either valid everywhere or rejected everywhere with one
`InputError` naming the file, the problem and the fix. The formats:
docs/design.md#data-layout and docs/design.md#predictions-and-metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from vois_cli.atomic import write_json
from vois_cli.errors import InputError

CATEGORY_ID = 1
CATEGORIES = [{"id": CATEGORY_ID, "name": "relevant"}]


def encode_rle(mask: np.ndarray) -> dict:
    """bool (H, W) mask -> COCO RLE `{"size": [H, W], "counts": str}`."""
    if mask.ndim != 2:
        raise ValueError(f"encode_rle expects an (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict | None, height: int, width: int) -> np.ndarray:
    """COCO RLE (compressed or not) or None -> bool (H, W) mask; None is an empty mask."""
    if rle is None:
        return np.zeros((height, width), dtype=bool)
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    return mask_utils.decode(rle).astype(bool)


def rle_area(rle: dict | None) -> int:
    """Foreground pixel count of a compressed RLE; None counts as 0."""
    return 0 if rle is None else int(mask_utils.area(rle))


@dataclass(frozen=True)
class Video:
    """One annotated video; `target` (relative to the data root) and `source_fps` are the
    LiveVideos additions to YouTube-VIS and are None in plain YouTube-VIS files."""

    id: int
    name: str
    width: int
    height: int
    length: int
    file_names: list[str]
    target: str | None = None
    source_fps: float | None = None

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "length": self.length,
            "file_names": list(self.file_names),
        }
        if self.target is not None:
            out["target"] = self.target
        if self.source_fps is not None:
            out["source_fps"] = self.source_fps
        return out


@dataclass
class Annotations:
    """A validated annotation file. `annotations` are the file's dicts in file order, with
    `segmentations` as compressed RLE (counts str) or None, `areas` as numbers or None and
    `iscrowd` filled in (0 when absent)."""

    videos: list[Video]
    annotations: list[dict]
    categories: list[dict] = field(default_factory=lambda: [dict(c) for c in CATEGORIES])

    @cached_property
    def _videos_by_id(self) -> dict[int, Video]:
        return {v.id: v for v in self.videos}

    def video(self, video_id: int) -> Video:
        """The video with this id (KeyError if there is none)."""
        return self._videos_by_id[video_id]

    def has_video(self, video_id: int) -> bool:
        return video_id in self._videos_by_id

    def by_video(self) -> dict[int, list[dict]]:
        """Video id -> its annotations in file order; every video is a key, even unannotated."""
        out: dict[int, list[dict]] = {v.id: [] for v in self.videos}
        for ann in self.annotations:
            out[ann["video_id"]].append(ann)
        return out

    def to_json(self) -> dict:
        return {
            "videos": [v.to_json() for v in self.videos],
            "annotations": self.annotations,
            "categories": self.categories,
        }


def _fail(path, problem: str, fix: str):
    raise InputError(path, problem, fix)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _list_field(path, obj: dict, key: str, where: str) -> list:
    if key not in obj:
        _fail(path, f"{where} has no '{key}' list", f"add '{key}' as in YouTube-VIS")
    if not isinstance(obj[key], list):
        _fail(path, f"{where}: '{key}' is not a list", f"make '{key}' a JSON list")
    return obj[key]


def _rle(path, seg: Any, height: int, width: int, where: str) -> dict | None:
    """Check one segmentation (RLE dict or None) against the video size; return it compressed."""
    if seg is None:
        return None
    fix = f"give a COCO RLE {{size: [{height}, {width}], counts}} or null for an absent object"
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        _fail(path, f"{where} is not a COCO RLE", fix)
    size = seg["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s) for s in size)):
        _fail(path, f"{where}: RLE 'size' {size!r} is not [height, width]", fix)
    if size != [height, width]:
        _fail(
            path,
            f"{where}: RLE size {size} is not the video's [height, width] [{height}, {width}]",
            "encode masks at the video's original size",
        )
    counts = seg["counts"]
    if isinstance(counts, str):
        return seg
    if isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts):
        if sum(counts) != height * width:
            _fail(path, f"{where}: uncompressed RLE counts sum to {sum(counts)}, not H*W", fix)
        rle = mask_utils.frPyObjects(seg, height, width)
        return {"size": size, "counts": rle["counts"].decode("ascii")}
    _fail(path, f"{where}: RLE 'counts' is neither a string nor a list of counts", fix)


def _video(path, v: Any, i: int, require_targets: bool) -> Video:
    where = f"videos[{i}]"
    if not isinstance(v, dict):
        _fail(path, f"{where} is not an object", "give each video as {id, name, width, ...}")
    fix = "give every video id, name, width, height, length and file_names"
    for key in ("id", "width", "height", "length"):
        if not _is_int(v.get(key)):
            _fail(path, f"{where}: '{key}' is missing or not an integer", fix)
    if v["width"] <= 0 or v["height"] <= 0 or v["length"] <= 0:
        _fail(path, f"{where} (id {v['id']}): width, height and length must be positive", fix)
    where = f"video {v['id']}"
    file_names = _list_field(path, v, "file_names", where)
    if len(file_names) != v["length"] or not all(isinstance(f, str) for f in file_names):
        _fail(path, f"{where}: needs {v['length']} file_names (its length) as strings", fix)
    name = v.get("name")
    if name is None:  # plain YouTube-VIS: the name is the frame folder
        name = file_names[0].split("/")[0]
    if not isinstance(name, str) or not name:
        _fail(path, f"{where}: 'name' is not a non-empty string", fix)
    target, fps = v.get("target"), v.get("source_fps")
    if require_targets and (target is None or fps is None):
        _fail(path, f"{where} has no 'target' or 'source_fps'", "use a LiveVideos-format file")
    if target is not None and not isinstance(target, str):
        _fail(path, f"{where}: 'target' is not a path string", "give it relative to the root")
    if fps is not None and not (_is_number(fps) and math.isfinite(fps) and fps > 0):
        _fail(path, f"{where}: 'source_fps' {fps!r} is not a positive number", fix)
    return Video(v["id"], name, v["width"], v["height"], v["length"], list(file_names), target, fps)


def _annotation(path, a: Any, i: int, videos: dict[int, Video]) -> dict:
    where = f"annotations[{i}]"
    if not isinstance(a, dict):
        _fail(path, f"{where} is not an object", "give each as {id, video_id, segmentations, ...}")
    if not _is_int(a.get("id")) or a["id"] < 1:
        _fail(path, f"{where}: 'id' is missing or not a positive integer", "number objects from 1")
    where = f"annotation {a['id']}"
    if not _is_int(a.get("video_id")) or a["video_id"] not in videos:
        _fail(
            path,
            f"{where}: video_id {a.get('video_id')!r} is not a video in the file",
            "point every annotation at a listed video",
        )
    if a.get("category_id") != CATEGORY_ID:
        _fail(
            path,
            f"{where}: category_id is {a.get('category_id')!r}, not 1",
            "use the one category 1 ('relevant')",
        )
    crowd = a.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, bool):
        _fail(path, f"{where}: iscrowd {crowd!r} is not 0 or 1", "set iscrowd to 0 or 1")
    video = videos[a["video_id"]]
    segs = _list_field(path, a, "segmentations", where)
    areas = _list_field(path, a, "areas", where)
    if len(segs) != video.length or len(areas) != video.length:
        _fail(
            path,
            f"{where}: {len(segs)} segmentations and {len(areas)} areas for video "
            f"{video.id} of length {video.length}",
            "give one entry per annotated frame",
        )
    segs = [
        _rle(path, s, video.height, video.width, f"{where} frame {t}") for t, s in enumerate(segs)
    ]
    for t, (s, area) in enumerate(zip(segs, areas, strict=True)):
        if area is not None and not (_is_number(area) and math.isfinite(area) and area >= 0):
            _fail(
                path,
                f"{where} frame {t}: area {area!r} is not a non-negative number",
                "give the mask's pixel count or null",
            )
        if (s is None) != (area is None):
            _fail(
                path,
                f"{where} frame {t}: segmentation and area disagree on null",
                "make both null where the object is absent",
            )
    if "bboxes" in a:
        boxes = _list_field(path, a, "bboxes", where)
        if len(boxes) != video.length:
            _fail(
                path,
                f"{where}: {len(boxes)} bboxes for {video.length} frames",
                "give one [x, y, w, h] or null per frame",
            )
    return {**a, "iscrowd": crowd, "segmentations": segs}


def validate_annotations(obj: Any, path, require_targets: bool = False) -> Annotations:
    """Check a parsed annotation JSON (docs/design.md#data-layout); return it as `Annotations`.

    `require_targets`: every video must carry the LiveVideos fields `target`, `source_fps`.
    """
    if not isinstance(obj, dict):
        _fail(
            path,
            "is not an annotation file (top level is not an object)",
            "give a YouTube-VIS file with videos, annotations and categories",
        )
    raw_videos = _list_field(path, obj, "videos", "the file")
    raw_anns = _list_field(path, obj, "annotations", "the file")
    categories = _list_field(path, obj, "categories", "the file")
    if not any(isinstance(c, dict) and c.get("id") == CATEGORY_ID for c in categories):
        _fail(path, "has no category with id 1", 'list {"id": 1, "name": "relevant"}')
    videos = [_video(path, v, i, require_targets) for i, v in enumerate(raw_videos)]
    by_id = {v.id: v for v in videos}
    if len(by_id) != len(videos):
        _fail(path, "has two videos with the same id", "give every video its own id")
    anns = [_annotation(path, a, i, by_id) for i, a in enumerate(raw_anns)]
    if len({a["id"] for a in anns}) != len(anns):
        _fail(path, "has two annotations with the same id", "give every annotation its own id")
    return Annotations(videos, anns, categories)


def _read_json(path) -> Any:
    path = Path(path)
    if not path.is_file():
        _fail(path, "file not found", "check the path")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        _fail(path, f"is not valid JSON ({e})", "give a JSON file")


def load_annotations(path, require_targets: bool = False) -> Annotations:
    """Read and validate an annotation file (see `validate_annotations`)."""
    return validate_annotations(_read_json(path), path, require_targets)


def _prediction(path, p: Any, i: int, annotations: Annotations) -> dict:
    where = f"prediction {i}"
    if not isinstance(p, dict):
        _fail(
            path, f"{where} is not an object", "give {video_id, category_id, score, segmentations}"
        )
    vid = p.get("video_id")
    if not _is_int(vid) or not annotations.has_video(vid):
        _fail(
            path,
            f"{where}: video_id {vid!r} is not in the annotation file",
            "predict only for the annotation file's videos",
        )
    if p.get("category_id") != CATEGORY_ID:
        _fail(
            path,
            f"{where}: category_id is {p.get('category_id')!r}, not 1",
            "use the one category 1 ('relevant')",
        )
    score = p.get("score")
    if not _is_number(score) or not math.isfinite(score) or score < 0:
        _fail(
            path,
            f"{where}: score {score!r} is not a finite non-negative number",
            "give a confidence in [0, inf)",
        )
    video = annotations.video(vid)
    segs = _list_field(path, p, "segmentations", where)
    if len(segs) != video.length:
        _fail(
            path,
            f"{where}: {len(segs)} segmentations but video {vid} has {video.length} frames",
            "give one RLE or null per annotated frame",
        )
    segs = [
        _rle(path, s, video.height, video.width, f"{where} frame {t}") for t, s in enumerate(segs)
    ]
    return {**p, "score": float(score), "segmentations": segs}


def validate_predictions(obj: Any, path, annotations: Annotations) -> list[dict]:
    """Check a parsed prediction JSON against the annotations it scores.

    Returns the predictions in file order (their order is the object id within a video),
    with RLEs compressed and scores as floats. An empty list is valid.
    """
    if not isinstance(obj, list):
        _fail(
            path,
            "is not a prediction file (top level is not a list)",
            "give a JSON list of {video_id, category_id, score, segmentations}",
        )
    return [_prediction(path, p, i, annotations) for i, p in enumerate(obj)]


def load_predictions(path, annotations: Annotations) -> list[dict]:
    """Read and validate a YouTube-VIS prediction file (see `validate_predictions`)."""
    return validate_predictions(_read_json(path), path, annotations)


def write_annotations(path, annotations: Annotations) -> None:
    """Write an annotation file atomically."""
    write_json(path, annotations.to_json())


def write_predictions(path, predictions: list[dict]) -> None:
    """Write a prediction file atomically."""
    write_json(path, predictions)
