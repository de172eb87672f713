"""SynthLive: products, exact masks, hard negatives, the benchmark files, determinism, the CLI."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vois_cli.cli import app, main
from vois_cli.data.contact_sheet import CAPTION, GAP, OBJECT_COLOURS, contact_sheet, overlay
from vois_cli.data.products import (
    ATTRIBUTES,
    PALETTE,
    PATTERNS,
    SHAPES,
    Product,
    hard_negative,
    random_product,
    render_sprite,
    target_image,
    unrelated_product,
)
from vois_cli.data.scene import Scene, make_track, render_frame
from vois_cli.data.synth import SYNTH_PRESETS, clip_scene, write_benchmark
from vois_cli.data.video import probe, read_frames
from vois_cli.data.ytvis import decode_rle, load_annotations
from vois_cli.errors import InputError

MAGENTA = (255, 0, 255)  # no product colour: shading and outlines never reach 0 green


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the `vois` entry point in-process (its import costs seconds): exit code, stderr."""
    monkeypatch.setattr(sys, "argv", ["vois", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny benchmark, written once through the CLI with a preview."""
    root = tmp_path_factory.mktemp("synth") / "tiny"
    sheet = root.parent / "sheet.png"
    args = ["synth", str(root), "--preset", "tiny", "--seed", "0", "--preview", str(sheet)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote 6 clips (4 train, 2 test) to {root}"
    return root


def test_attribute_space_is_large_enough():
    assert len(SHAPES) >= 6 and len(PATTERNS) >= 4 and len(PALETTE) >= 8


def test_products_differing_in_one_attribute_render_differently():
    base = Product("mug", "dots", "blue")
    rgb, _ = render_sprite(base, 64)
    for other in (Product("mug", "stripes", "blue"), Product("mug", "dots", "red")):
        other_rgb, _ = render_sprite(other, 64)
        assert other_rgb.shape == rgb.shape and (other_rgb != rgb).any(axis=-1).mean() > 0.2
    assert render_sprite(Product("bag", "dots", "blue"), 64)[1].shape != rgb.shape[:2]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sprite_colours_exactly_where_the_mask_is(shape):
    rgb, mask = render_sprite(Product(shape, "checks", "yellow"), 50)
    assert mask.shape == (50, max(2, round(SHAPES[shape] * 50)))
    assert 0.25 < mask.mean() < 0.95
    assert (rgb[~mask] == 0).all() and (rgb[mask].max(axis=-1) > 0).all()


def test_hard_negatives_differ_in_exactly_one_attribute_and_clutter_in_two():
    rng = np.random.default_rng(1)
    changed = set()
    for _ in range(300):
        product = random_product(rng)
        negative = hard_negative(product, rng)
        assert len(product.differences(negative)) == 1
        changed.update(product.differences(negative))
        assert len(product.differences(unrelated_product(product, rng))) >= 2
    assert changed == set(ATTRIBUTES)


def test_target_image_is_the_product_centred_on_white():
    image = target_image(Product("bottle", "stripes", "green"), 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    product = (image != 255).any(axis=-1)
    ys, xs = np.nonzero(product)
    assert ys.max() - ys.min() + 1 == round(0.8 * 96)  # a tall shape fills 80 % of the height
    assert abs((xs.min() + xs.max()) / 2 - 47.5) <= 1 and abs((ys.min() + ys.max()) / 2 - 47.5) <= 1
    assert (image[:8] == 255).all() and (image[:, :8] == 255).all()


def test_unoccluded_render_puts_product_pixels_exactly_on_its_mask():
    rng = np.random.default_rng(3)
    track = make_track(rng, Product("shirt", "dots", "pink"), "target", 160, 96, 20)
    background = np.full((96, 160, 3), MAGENTA, np.uint8)
    scene = Scene(160, 96, 20, track.product, background, (track,))
    for t in range(0, 20, 5):
        frame, labels = render_frame(scene, t)
        painted = (frame != MAGENTA).any(axis=-1)
        np.testing.assert_array_equal(painted, labels == 0)
        assert set(np.unique(labels)) <= {-1, 0}


def test_occluded_object_loses_exactly_the_pixels_in_front_of_it():
    rng = np.random.default_rng(4)
    back = make_track(rng, Product("bag", "plain", "red"), "target", 160, 96, 1)
    front = make_track(rng, Product("hat", "plain", "blue"), "clutter", 160, 96, 1)
    back = dataclasses.replace(back, cx=np.array([80.0]), cy=np.array([48.0]))
    front = dataclasses.replace(front, cx=back.cx + 12, cy=back.cy, size=back.size * 0.6)
    background = np.full((96, 160, 3), MAGENTA, np.uint8)
    alone, _ = render_frame(Scene(160, 96, 1, back.product, background, (back,)), 0)
    both, labels = render_frame(Scene(160, 96, 1, back.product, background, (back, front)), 0)
    _, front_only = render_frame(Scene(160, 96, 1, back.product, background, (front,)), 0)
    back_full = (alone != MAGENTA).any(axis=-1)
    np.testing.assert_array_equal(labels == 0, back_full & (front_only != 0))
    assert 0 < (labels == 0).sum() < back_full.sum()


def test_benchmark_layout_and_annotation_fields(tiny):
    spec = SYNTH_PRESETS["tiny"]
    manifest = json.loads((tiny / "synth.json").read_text())
    assert sorted(p.name for p in tiny.iterdir()) == [
        "annotations",
        "synth.json",
        "targets",
        "videos",
    ]
    assert len(list((tiny / "videos").glob("*.mp4"))) == spec.clips == 6
    assert len(list((tiny / "targets").glob("*.jpg"))) == 6
    sources = {c["name"]: c["source_frames"] for c in manifest["clips"]}
    for split, count in (("train", 4), ("test", 2)):
        raw = json.loads((tiny / "annotations" / f"{split}.json").read_text())
        assert raw["categories"] == [{"id": 1, "name": "relevant"}]
        ann = load_annotations(tiny / "annotations" / f"{split}.json", require_targets=True)
        assert [v.name for v in ann.videos] == manifest["splits"][split]
        assert len(ann.videos) == count
        for video in ann.videos:
            info = probe(tiny / "videos" / f"{video.name}.mp4")
            assert (info.width, info.height, info.fps) == (160, 96, 20)
            assert info.num_frames == sources[video.name]
            assert video.length == (info.num_frames + 3) // 4 >= 10
            assert video.source_fps == 20 and video.target == f"targets/{video.name}.jpg"
            assert video.file_names == [f"{video.name}/{i:05d}.jpg" for i in range(video.length)]
            assert Image.open(tiny / video.target).size == (spec.target_size, spec.target_size)
        for a in raw["annotations"]:
            assert a["category_id"] == 1 and a["iscrowd"] == 0
            for seg, area, box in zip(a["segmentations"], a["areas"], a["bboxes"], strict=True):
                assert (seg is None) == (area is None) == (box is None)
            assert any(seg is not None for seg in a["segmentations"])


def test_roles_in_every_clip_follow_the_benchmark_rules(tiny):
    manifest = json.loads((tiny / "synth.json").read_text())
    train = json.loads((tiny / "annotations" / "train.json").read_text())
    test = json.loads((tiny / "annotations" / "test.json").read_text())
    per_video = {}
    for raw in (train, test):
        names = {v["id"]: v["name"] for v in raw["videos"]}
        for a in raw["annotations"]:
            per_video[names[a["video_id"]]] = per_video.get(names[a["video_id"]], 0) + 1
    for clip in manifest["clips"]:
        target = Product(**clip["target"])
        roles = [(o["role"], Product(**{k: o[k] for k in ATTRIBUTES})) for o in clip["objects"]]
        instances = [p for role, p in roles if role == "target"]
        negatives = [p for role, p in roles if role == "negative"]
        clutter = [p for role, p in roles if role == "clutter"]
        assert 1 <= len(instances) <= 3 and 1 <= len(negatives) <= 4 and len(clutter) >= 1
        assert all(p == target for p in instances)
        assert all(len(target.differences(p)) == 1 for p in negatives)
        assert all(len(target.differences(p)) >= 2 for p in clutter)
        assert per_video[clip["name"]] == len(instances)


def test_all_files_hold_every_visible_product_with_the_relevant_ones_unchanged(tiny):
    manifest = json.loads((tiny / "synth.json").read_text())
    clips = {c["name"]: c for c in manifest["clips"]}
    for split in ("train", "test"):
        relevant = load_annotations(tiny / "annotations" / f"{split}.json")
        every = load_annotations(tiny / "annotations" / f"{split}_all.json", require_targets=True)
        assert [v.to_json() for v in every.videos] == [v.to_json() for v in relevant.videos]
        for video in every.videos:
            objects = every.by_video()[video.id]
            placed = clips[video.name]["objects"]
            assert len(objects) <= len(placed) and len(objects) > len(relevant.by_video()[video.id])
            assert sorted(o["role"] for o in objects if o["role"] == "target") == ["target"] * len(
                relevant.by_video()[video.id]
            )
            targets = [o for o in objects if o["role"] == "target"]
            for mine, theirs in zip(targets, relevant.by_video()[video.id], strict=True):
                assert mine["segmentations"] == theirs["segmentations"]
                assert mine["product"] == clips[video.name]["target"]
            assert {o["role"] for o in objects} <= {"target", "negative", "clutter"}
            assert all(any(s is not None for s in o["segmentations"]) for o in objects)


def test_objects_are_shown_at_broadcast_scale():
    """Median object side (√ mean visible area) ≥ 25 % of the frame height, a quarter ≥ 35 %."""
    spec = SYNTH_PRESETS["tiny"]
    sides = []
    for index in range(48):
        scene, annotated = clip_scene(spec, 0, index)
        for k in range(len(scene.tracks)):
            areas = [(labels == k).sum() for _, labels in annotated]
            visible = [a for a in areas if a > 0]
            if visible:
                sides.append(np.sqrt(np.mean(visible)) / spec.height)
    assert np.median(sides) >= 0.25
    assert np.mean(np.array(sides) >= 0.35) >= 0.25


def test_look_alikes_can_be_limited_to_one_attribute():
    scene, _ = clip_scene(SYNTH_PRESETS["tiny"], 0, 3, look_alikes=("colour",))
    negatives = [tr.product for tr in scene.tracks if tr.role == "negative"]
    assert negatives and all(scene.target.differences(p) == ("colour",) for p in negatives)
    with pytest.raises(InputError, match="look-alike attributes"):
        write_benchmark(Path("unused"), "tiny", look_alikes=("size",))


def test_masks_are_the_renderers_visible_pixels_and_null_when_hidden(tiny):
    spec = SYNTH_PRESETS["tiny"]
    ann = load_annotations(tiny / "annotations" / "train.json")
    nulls = 0
    for index, video in enumerate(ann.videos):
        scene, annotated = clip_scene(spec, 0, index)
        objects = ann.by_video()[video.id]
        assert len(objects) == len(scene.relevant)
        for obj, k in zip(objects, scene.relevant, strict=True):
            for i, (_, labels) in enumerate(annotated):
                seg = obj["segmentations"][i]
                visible = labels == k
                nulls += seg is None
                assert (seg is None) == (not visible.any())
                np.testing.assert_array_equal(decode_rle(seg, 96, 160), visible)
                if seg is not None:
                    ys, xs = np.nonzero(visible)
                    assert obj["areas"][i] == visible.sum()
                    assert obj["bboxes"][i] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
    assert nulls > 0  # seed 0 has an instance leaving the frame or hidden


def test_same_seed_same_benchmark_with_any_worker_count(tiny, tmp_path):
    again = tmp_path / "again"
    write_benchmark(again, "tiny", seed=0, workers=2)
    for rel in ("annotations/train.json", "annotations/test_all.json", "synth.json"):
        assert (again / rel).read_bytes() == (tiny / rel).read_bytes(), rel
    for folder in ("targets", "videos"):
        for path in (tiny / folder).iterdir():
            assert (again / folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_extra_training_clips_leave_the_preset_and_its_test_split_as_they_were(tiny, tmp_path):
    more = tmp_path / "more"
    code = CliRunner().invoke(app, ["synth", str(more), "--preset", "tiny", "--extra-train", "2"])
    assert code.output.strip() == f"wrote 8 clips (6 train, 2 test) to {more}"
    for rel in ("annotations/test.json", "annotations/test_all.json"):
        assert (more / rel).read_bytes() == (tiny / rel).read_bytes(), rel
    for name in ("clip00003.mp4", "clip00005.mp4"):  # the preset's last train and test clips
        frames = [np.stack(list(read_frames(r / "videos" / name, rate=None))) for r in (tiny, more)]
        np.testing.assert_array_equal(*frames)
    train = load_annotations(more / "annotations" / "train_all.json")
    assert [(v.id, v.name) for v in train.videos][3:] == [
        (4, "clip00003"), (7, "clip00006"), (8, "clip00007")
    ]  # fmt: skip
    relevant = json.loads((more / "annotations" / "train.json").read_text())["annotations"]
    assert {a["video_id"] for a in relevant} == {1, 2, 3, 4, 7, 8}
    manifest = json.loads((more / "synth.json").read_text())
    assert manifest["splits"]["train"][4:] == ["clip00006", "clip00007"]
    # their own random stream: not the clips a larger preset would hold at those indices
    extra, _ = clip_scene(dataclasses.replace(SYNTH_PRESETS["tiny"], stream=2), 0, 6)
    plain, _ = clip_scene(SYNTH_PRESETS["tiny"], 0, 6)
    assert manifest["clips"][6]["target"] == extra.target.to_dict() != plain.target.to_dict()


def test_another_seed_gives_another_benchmark(tiny):
    scene, _ = clip_scene(SYNTH_PRESETS["tiny"], 1, 0)
    manifest = json.loads((tiny / "synth.json").read_text())
    assert scene.target.to_dict() != manifest["clips"][0]["target"] or len(scene.tracks) != len(
        manifest["clips"][0]["objects"]
    )


def test_preview_sheet_shows_target_frames_and_masks(tiny):
    sheet = np.asarray(Image.open(tiny.parent / "sheet.png"))
    columns = min(6, load_annotations(tiny / "annotations" / "train.json").videos[0].length)
    assert sheet.shape == (2 * (96 + CAPTION) + 3 * GAP, (columns + 1) * (160 + GAP) + GAP, 3)


def test_contact_sheet_layout_and_overlay_colours():
    frame = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:15] = True
    tinted = overlay(frame, [None, mask])
    assert (tinted[~mask] == 100).all()
    np.testing.assert_array_equal(tinted[5, 5], OBJECT_COLOURS[1].astype(np.uint8))  # outline
    np.testing.assert_array_equal(tinted[10, 10], np.round(45 + 0.55 * OBJECT_COLOURS[1]))
    target = np.full((40, 40, 3), 255, np.uint8)
    sheet = contact_sheet(target, [frame] * 3, {"masks": [[mask]] * 3}, [0, 1, 2])
    assert sheet.shape == (2 * (20 + CAPTION) + 3 * GAP, 4 * (30 + GAP) + GAP, 3)
    rows = {"truth": [[mask]] * 3, "predicted": [[None, mask]] * 3}
    sheet = contact_sheet(target, [frame] * 3, rows, [0, 1, 2])
    assert sheet.shape == (3 * (20 + CAPTION) + 4 * GAP, 4 * (30 + GAP) + GAP, 3)
    bottom = 3 * GAP + 2 * (20 + CAPTION) + CAPTION  # the last row's first frame, at (0, 0)
    np.testing.assert_array_equal(sheet[bottom + 10, 2 * GAP + 30 + 10], tinted[10, 10])


def test_cli_rejects_unknown_preset_with_one_line(tmp_path, monkeypatch, capsys):
    code, err = _main(monkeypatch, capsys, "synth", str(tmp_path / "out"), "--preset", "huge")
    assert code == 2
    assert err.strip().splitlines() == [
        "vois: error: unknown SynthLive preset 'huge'; choose one of tiny, default, pretrain, full"
    ]
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code, err = _main(monkeypatch, capsys, "synth", str(tmp_path), "--preset", "tiny")
    assert code == 2
    assert err.strip().splitlines() == [
        f"vois: error: {tmp_path}: already exists and is not an empty folder; choose a new path"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
