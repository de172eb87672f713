"""`vois preprocess`: sizes (short edge, long-edge cap, aspect), nearest masks, recomputed
boxes, converted targets, the documented artifact format, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vois_cli.data.preprocess import load_index, load_video, preprocess
from vois_cli.data.ytvis import encode_rle
from vois_cli.errors import InputError

SIZES = {"a": (60, 80, 3), "b": (100, 50, 2)}  # name: (height, width, length)


def make_root(root: Path) -> Path:
    """Frames, targets and annotations: in every frame a green box (rows 10-29, cols 20-49) on
    red, annotated in frames 0 and 1 and absent (null) in frame 2."""
    videos, annotations = [], []
    (root / "targets").mkdir(parents=True)
    for vid, (name, (h, w, length)) in enumerate(SIZES.items(), start=1):
        (root / "frames" / name).mkdir(parents=True)
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 200
        frame[10:30, 20:50] = (0, 200, 0)
        for i in range(length):
            Image.fromarray(frame).save(root / "frames" / name / f"{i:05d}.jpg", quality=95)
        mask = np.zeros((h, w), bool)
        mask[10:30, 20:50] = True
        segs = [encode_rle(mask) if i < 2 else None for i in range(length)]
        videos.append(
            {
                "id": vid,
                "name": name,
                "width": w,
                "height": h,
                "length": length,
                "file_names": [f"{name}/{i:05d}.jpg" for i in range(length)],
                "target": f"targets/{name}.png",
                "source_fps": 20,
            }
        )
        annotations.append(
            {
                "id": vid,
                "video_id": vid,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": segs,
                "areas": [600 if s else None for s in segs],
                "bboxes": [[20, 10, 30, 20] if s else None for s in segs],
            }
        )
    rgba = np.zeros((30, 40, 4), np.uint8)  # transparent left half, opaque blue right half
    rgba[:, 20:] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(root / "targets" / "a.png")
    Image.fromarray(np.full((40, 20), 90, np.uint8), "L").save(root / "targets" / "b.png")
    (root / "annotations").mkdir()
    ann = {"videos": videos, "annotations": annotations, "categories": [{"id": 1, "name": "r"}]}
    (root / "annotations" / "train.json").write_text(json.dumps(ann))
    return root


def run_preprocess(root: Path, out: Path, **kw) -> dict:
    return preprocess(root / "frames", root / "annotations" / "train.json", out, **kw)


def test_sizes_masks_boxes_and_targets(tmp_path):
    root = make_root(tmp_path / "root")
    index = run_preprocess(root, tmp_path / "art", short_edge=30, max_long_edge=50)
    a, b = index["videos"]
    assert (a["height"], a["width"], a["length"], a["num_objects"]) == (30, 40, 3, 1)
    assert (b["height"], b["width"]) == (50, 25)  # 60x30 by the short edge, capped at 50
    assert (a["target_height"], a["target_width"]) == (30, 40)
    assert (b["target_height"], b["target_width"]) == (50, 25)
    assert load_index(tmp_path / "art") == index

    data = load_video(tmp_path / "art", a)
    assert data["frames"].shape == (3, 30, 40, 3) and data["frames"].dtype == np.uint8
    assert data["masks"].shape == (1, 3, 30, 40)
    rows, cols = np.nonzero(data["masks"][0, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 14, 10, 24)  # half size
    assert not data["masks"][0, 2].any()
    assert data["boxes"].tolist() == [[[10, 5, 25, 15], [10, 5, 25, 15], [0, 0, 0, 0]]]
    assert data["object_ids"].tolist() == [1]
    green = data["frames"][0, 7:13, 12:23].mean((0, 1))
    assert abs(green[1] - 200) < 12 and green[0] < 12
    target = data["target"].astype(int)
    assert target.shape == (30, 40, 3)
    assert (target[:, :18] > 245).all()  # transparent pixels composited on white
    assert (np.abs(target[:, 22:] - (0, 0, 255)) < 12).all()
    gray = load_video(tmp_path / "art", b, frames=[1])
    assert gray["frames"].shape == (1, 50, 25, 3) and gray["masks"].shape == (1, 1, 50, 25)
    assert (np.abs(gray["target"].astype(int) - 90) < 3).all()


def test_artifact_files_need_no_pickle(tmp_path):
    root = make_root(tmp_path / "root")
    run_preprocess(root, tmp_path / "art", short_edge=30)
    assert sorted(p.name for p in (tmp_path / "art").rglob("*")) == [
        "a.npz",
        "b.npz",
        "index.json",
        "videos",
    ]
    with np.load(tmp_path / "art" / "videos" / "a.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(
            ["frames_jpeg", "frames_offsets", "masks_packed", "masks_shape", "boxes",
             "object_ids", "target_jpeg"]
        )  # fmt: skip
        assert z["frames_offsets"].shape == (4,) and z["masks_shape"].tolist() == [1, 3, 30, 40]


def vois(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vois_cli", *map(str, args)], capture_output=True, text=True
    )


def test_cli_end_to_end_and_one_line_errors(tmp_path):
    root = make_root(tmp_path / "root")
    ann = root / "annotations" / "train.json"
    run = vois("preprocess", root / "frames", "--ann", ann, "--out", tmp_path / "art",
               "--short-edge", 24)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert [(v["height"], v["width"]) for v in load_index(tmp_path / "art")["videos"]] == [
        (24, 32),
        (48, 24),
    ]
    (root / "frames" / "b" / "00001.jpg").unlink()
    run = vois("preprocess", root / "frames", "--ann", ann, "--out", tmp_path / "art2")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "00001.jpg" in run.stderr and "frame not found" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "root"]


def test_bad_inputs_leave_no_output(tmp_path):
    root = make_root(tmp_path / "root")
    out = tmp_path / "art"
    with pytest.raises(InputError, match="frames folder not found"):
        preprocess(tmp_path / "nothing", root / "annotations" / "train.json", out)
    Image.fromarray(np.zeros((60, 79, 3), np.uint8)).save(root / "frames" / "a" / "00001.jpg")
    with pytest.raises(InputError, match="79x60, the annotation says 80x60") as e:
        run_preprocess(root, out)
    assert e.value.path == root / "frames" / "a" / "00001.jpg"
    root = make_root(tmp_path / "root2")
    Image.new("RGB", (1, 1)).save(root / "targets" / "b.png")
    with pytest.raises(InputError, match="only 1x1 pixels"):
        run_preprocess(root, out)
    (root / "targets" / "b.png").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        run_preprocess(root, out)
    (root / "targets" / "b.png").unlink()
    with pytest.raises(InputError, match="target not found"):
        run_preprocess(root, out)
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match="not a preprocessed artifact"):
        run_preprocess(root, tmp_path / "mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "root", "root2"]


def test_every_placed_products_masks_are_stored_beside_the_targets(tmp_path):
    root = make_root(tmp_path / "root")
    ann = root / "annotations" / "train.json"
    index = run_preprocess(root, tmp_path / "art", short_edge=30, products=ann)
    assert index["products"] == str(ann) and [v["num_products"] for v in index["videos"]] == [1, 1]
    data = load_video(tmp_path / "art", index["videos"][0], frames=[1, 2])
    assert data["products"].dtype == bool and np.array_equal(data["products"], data["masks"])
    assert "products" not in load_video(
        tmp_path / "plain", run_preprocess(root, tmp_path / "plain", short_edge=30)["videos"][0]
    )
    # a products file of other videos is refused, and nothing is written
    other = json.loads(ann.read_text())
    other["videos"][1]["name"] = "another"
    (root / "annotations" / "train_all.json").write_text(json.dumps(other))
    with pytest.raises(InputError, match="has no video 2 .* as the annotation file has it"):
        run_preprocess(root, tmp_path / "bad", products=root / "annotations" / "train_all.json")
    assert not (tmp_path / "bad").exists()
