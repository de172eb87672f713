"""The data contract (docs/design.md#data-layout): RLE codec, annotation and prediction checks."""

import copy
import json

import numpy as np
import pytest

from vois_cli.data.ytvis import (
    Annotations,
    Video,
    decode_rle,
    encode_rle,
    load_annotations,
    load_predictions,
    rle_area,
    validate_annotations,
    validate_predictions,
    write_annotations,
    write_predictions,
)
from vois_cli.errors import InputError

CENTRE = {"size": [3, 3], "counts": "414"}  # 3x3, only the centre pixel set


def _file() -> dict:
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    return {
        "videos": [
            {"id": 4, "name": "a", "width": 3, "height": 3, "length": 2,
             "file_names": ["a/00000.jpg", "a/00001.jpg"], "target": "targets/a.jpg",
             "source_fps": 20},
            {"id": 9, "name": "b", "width": 5, "height": 2, "length": 1,
             "file_names": ["b/00000.jpg"], "target": "targets/b.png", "source_fps": 30.0},
        ],
        "annotations": [
            {"id": 1, "video_id": 4, "category_id": 1, "iscrowd": 0,
             "segmentations": [encode_rle(mask), None], "areas": [1, None],
             "bboxes": [[1, 1, 1, 1], None]},
        ],
        "categories": [{"id": 1, "name": "relevant"}],
    }  # fmt: skip


def test_encode_rle_gives_the_coco_string_and_decode_inverts_it():
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    assert encode_rle(mask) == CENTRE
    two_by_four = np.array([[0, 1, 0, 1], [0, 1, 0, 0]], dtype=bool)
    assert encode_rle(two_by_four) == {"size": [2, 4], "counts": "222OO"}
    np.testing.assert_array_equal(decode_rle(encode_rle(two_by_four), 2, 4), two_by_four)
    assert decode_rle(CENTRE, 3, 3).dtype == bool and rle_area(CENTRE) == 1


def test_decode_of_null_is_empty_and_uncompressed_counts_decode_too():
    assert decode_rle(None, 2, 5).shape == (2, 5) and not decode_rle(None, 2, 5).any()
    uncompressed = {"size": [2, 4], "counts": [2, 2, 2, 1, 1]}
    np.testing.assert_array_equal(
        decode_rle(uncompressed, 2, 4), np.array([[0, 1, 0, 1], [0, 1, 0, 0]], dtype=bool)
    )


def test_valid_file_loads_into_videos_and_annotations(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_file()))
    ann = load_annotations(path, require_targets=True)
    assert ann.video(9) == Video(9, "b", 5, 2, 1, ["b/00000.jpg"], "targets/b.png", 30.0)
    assert ann.by_video() == {4: [ann.annotations[0]], 9: []}
    assert ann.annotations[0]["segmentations"] == [CENTRE, None]


def test_uncompressed_rle_is_stored_compressed_and_missing_iscrowd_is_0():
    obj = _file()
    obj["annotations"][0]["segmentations"][0] = {"size": [3, 3], "counts": [4, 1, 4]}
    del obj["annotations"][0]["iscrowd"]
    ann = validate_annotations(obj, "ann.json").annotations[0]
    assert ann["segmentations"][0] == CENTRE and ann["iscrowd"] == 0


def test_plain_youtube_vis_file_without_target_fields_is_valid_unless_targets_are_required():
    obj = _file()
    for v in obj["videos"]:
        del v["target"], v["source_fps"]
    assert validate_annotations(obj, "ann.json").video(4).target is None
    with pytest.raises(InputError, match="video 4 has no 'target' or 'source_fps'"):
        validate_annotations(obj, "ann.json", require_targets=True)


def test_write_and_load_round_trip(tmp_path):
    ann = validate_annotations(_file(), "ann.json")
    write_annotations(tmp_path / "out" / "ann.json", ann)
    assert load_annotations(tmp_path / "out" / "ann.json") == ann
    preds = [{"video_id": 9, "category_id": 1, "score": 0.5, "segmentations": [None]}]
    write_predictions(tmp_path / "pred.json", preds)
    assert load_predictions(tmp_path / "pred.json", ann) == preds


def _edit(fn):
    obj = copy.deepcopy(_file())
    fn(obj)
    return obj


BAD_ANNOTATIONS = {
    "duplicate video id": (
        lambda o: o["videos"][1].update(id=4), "two videos with the same id"),
    "file_names length": (
        lambda o: o["videos"][0]["file_names"].pop(), "video 4: needs 2 file_names"),
    "zero length": (
        lambda o: o["videos"][0].update(length=0), "must be positive"),
    "unknown video": (
        lambda o: o["annotations"][0].update(video_id=5), "video_id 5 is not a video"),
    "category": (
        lambda o: o["annotations"][0].update(category_id=3), "category_id is 3, not 1"),
    "segmentations length": (
        lambda o: o["annotations"][0]["segmentations"].pop(), "1 segmentations and 2 areas"),
    "rle size": (
        lambda o: o["annotations"][0]["segmentations"][0].update(size=[3, 4]),
        "annotation 1 frame 0: RLE size [3, 4] is not the video's"),
    "null disagreement": (
        lambda o: o["annotations"][0]["areas"].__setitem__(0, None),
        "segmentation and area disagree on null"),
    "id zero": (
        lambda o: o["annotations"][0].update(id=0), "not a positive integer"),
    "iscrowd": (
        lambda o: o["annotations"][0].update(iscrowd=2), "iscrowd 2 is not 0 or 1"),
    "no category 1": (
        lambda o: o.update(categories=[{"id": 2}]), "has no category with id 1"),
    "bad uncompressed counts": (
        lambda o: o["annotations"][0]["segmentations"].__setitem__(
            0, {"size": [3, 3], "counts": [4, 1]}), "counts sum to 5, not H*W"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_each_bad_annotation_is_an_input_error_naming_the_file(case):
    edit, problem = BAD_ANNOTATIONS[case]
    with pytest.raises(InputError) as info:
        validate_annotations(_edit(edit), "ann.json")
    assert str(info.value.path) == "ann.json" and problem in info.value.problem
    assert info.value.fix


def test_prediction_rules_are_checked_against_the_annotations():
    ann = validate_annotations(_file(), "ann.json")
    good = {"video_id": 4, "category_id": 1, "score": 1, "segmentations": [CENTRE, None]}
    assert validate_predictions([good], "p.json", ann)[0]["score"] == 1.0
    cases = {
        "video_id True": ({**good, "video_id": True}, "video_id True is not in"),
        "score string": ({**good, "score": "0.5"}, "score '0.5' is not a finite"),
        "length": ({**good, "segmentations": [None]}, "1 segmentations but video 4 has 2"),
        "not rle": ({**good, "segmentations": [[1, 2], None]}, "frame 0 is not a COCO RLE"),
        "no segmentations": ({"video_id": 4, "category_id": 1, "score": 1}, "no 'segmentations'"),
    }
    for name, (pred, problem) in cases.items():
        with pytest.raises(InputError) as info:
            validate_predictions([good, pred], "p.json", ann)
        assert problem in info.value.problem, name
        assert info.value.problem.startswith("prediction 1"), name


def test_annotations_default_categories_are_the_one_relevant_category():
    assert Annotations([], []).categories == [{"id": 1, "name": "relevant"}]
