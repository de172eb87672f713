"""benchmarks/infer_sheet.py: the README's picture of `vois infer` on a benchmark video."""

import sys

import infer_sheet
import numpy as np
import pytest
from PIL import Image

from vois_cli.data.contact_sheet import CAPTION, GAP, spread_frames
from vois_cli.data.synth import write_benchmark
from vois_cli.data.ytvis import decode_rle, load_annotations


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("sheet") / "synthlive"
    write_benchmark(root, "tiny", seed=0)
    ann = load_annotations(root / "annotations" / "test.json")
    return root, ann, ann.videos[0]


def tile(sheet, row, col, height, width):
    """The image of tile (row, col): row 0 the frames, 1 the true targets, 2 the model's."""
    y = (1 + row) * GAP + row * (height + CAPTION) + CAPTION
    x = GAP + col * (width + GAP)
    return sheet[y : y + height, x : x + width]


def test_the_sheet_shows_the_frames_and_tints_exactly_the_true_target_instances(
    bench, tiny_checkpoint, tmp_path, monkeypatch
):
    root, ann, video = bench
    out = tmp_path / "sheet.png"
    argv = [str(tiny_checkpoint), video.name, str(out), "--root", str(root), "--columns", "3"]
    monkeypatch.setattr(sys, "argv", ["infer_sheet.py", *argv])
    infer_sheet.main()
    sheet = np.asarray(Image.open(out))
    picks = spread_frames(video.length, 3)
    h, w = video.height, video.width
    assert sheet.shape == (3 * (h + CAPTION) + 4 * GAP, (len(picks) + 1) * (w + GAP) + GAP, 3)
    for col, i in enumerate(picks, 1):
        frame, truth = tile(sheet, 0, col, h, w), tile(sheet, 1, col, h, w)
        on = np.zeros((h, w), bool)
        for obj in ann.by_video()[video.id]:
            on |= decode_rle(obj["segmentations"][i], h, w).astype(bool)
        changed = (frame != truth).any(-1)
        assert np.array_equal(changed & ~on, np.zeros_like(on))  # nothing tinted off a target
        assert changed[on].mean() > 0.9  # and the targets are (a tint may match a pixel)


def test_a_video_not_in_the_split_is_one_line_exit_2_and_no_file(
    bench, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    root, _, _ = bench
    out = tmp_path / "sheet.png"
    argv = [str(tiny_checkpoint), "clip99999", str(out), "--root", str(root)]
    monkeypatch.setattr(sys, "argv", ["infer_sheet.py", *argv])
    with pytest.raises(SystemExit) as exit_:
        infer_sheet.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "clip99999" in err
    assert not out.exists()
