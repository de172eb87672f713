"""benchmarks/ap_breakdown.py: the oracle and best track IoUs and the token AUC on hand-made
cases."""

import ap_breakdown
import numpy as np
import pytest
import torch

from vois_cli.data.ytvis import encode_rle


def _box(x0: int, x1: int) -> dict:
    """RLE of a 10 × 10 frame with columns [x0, x1) set."""
    mask = np.zeros((10, 10), dtype=bool)
    mask[:, x0:x1] = True
    return encode_rle(mask)


def test_the_oracle_joins_two_tracks_that_each_follow_the_object_half_the_time():
    # the object covers columns 0-3 in frame 0 and 5-8 in frame 1; track a is right in frame
    # 0 and on another object in frame 1, track b the other way round
    truth = [_box(0, 4), _box(5, 9)]
    a = {"segmentations": [_box(0, 4), _box(0, 2)]}
    b = {"segmentations": [_box(6, 8), _box(5, 9)]}
    figures = ap_breakdown.track_ious(truth, [a, b], 2)
    assert figures["frames"] == [1.0, 1.0]
    assert figures["oracle_track"] == [a["segmentations"][0], b["segmentations"][1]]
    assert figures["oracle"] == pytest.approx(1.0)
    # a: intersection 40, union 40 + (20 + 40) = 100; b: 40 / (40 + 20 + 40)
    assert figures["best"] == pytest.approx(0.4)
    assert figures["ious"] == pytest.approx([0.4, 0.4])  # each track's, for `ranked_metrics`


def test_a_mask_where_the_object_is_absent_costs_the_track_but_not_the_oracle():
    truth = [_box(0, 4), None]
    track = {"segmentations": [_box(0, 4), _box(0, 4)]}
    figures = ap_breakdown.track_ious(truth, [track], 2)
    assert figures["oracle_track"][1] is None
    assert figures["oracle"] == pytest.approx(1.0)
    assert figures["best"] == pytest.approx(0.5)


def test_the_top_track_role_is_the_product_the_best_scored_track_overlaps_most():
    target = {"role": "target", "segmentations": [_box(0, 4), _box(0, 4)]}
    lookalike = {"role": "negative", "segmentations": [_box(5, 9), _box(5, 9)]}
    on_lookalike = {"score": 0.9, "segmentations": [_box(5, 9), _box(4, 9)]}
    on_target = {"score": 0.5, "segmentations": [_box(0, 4), _box(0, 4)]}
    products = [target, lookalike]
    assert ap_breakdown.top_track_role(products, [on_target, on_lookalike], 2) == "negative"
    on_target["score"] = 0.95
    assert ap_breakdown.top_track_role(products, [on_target, on_lookalike], 2) == "target"
    # one column of the look-alike in one frame: IoU 10 / 80 = 0.125, on it; beside it: none
    sliver = {"score": 1.0, "segmentations": [_box(8, 9), None]}
    assert ap_breakdown.top_track_role(products, [sliver], 2) == "negative"
    sliver["segmentations"] = [_box(9, 10), None]
    assert ap_breakdown.top_track_role(products, [sliver], 2) == "none"
    assert ap_breakdown.top_track_role(products, [], 2) == "none"


def test_mask_failures_name_how_each_poor_best_mask_fails_and_where_it_spills():
    # the instance: columns 0-3 in 4 frames; another target instance at 4-7, a look-alike at
    # 8-9; the one track: everything (spills), one column (partial), nothing, exact
    obj = {"video_id": 1, "role": "target", "segmentations": [_box(0, 4)] * 4}
    twin = {"video_id": 1, "role": "target", "segmentations": [_box(4, 8)] * 4}
    lookalike = {"video_id": 1, "role": "negative", "segmentations": [_box(8, 10)] * 4}
    track = {"segmentations": [_box(0, 10), _box(0, 1), None, _box(0, 4)]}
    pairs = [(obj, ap_breakdown.track_ious(obj["segmentations"], [track], 4))]
    figures = ap_breakdown.mask_failures(pairs, {1: [obj, twin, lookalike]})
    assert figures["n"] == 4
    assert (figures["good"], figures["missed"]) == (0.25, 0.25)
    assert (figures["spill"], figures["partial"], figures["both"]) == (0.25, 0.25, 0.0)
    # 60 spilled pixels: 40 on the other instance, 20 on the look-alike
    assert figures["spill_onto"] == {
        "target": pytest.approx(0.6667, abs=1e-4),
        "negative": pytest.approx(0.3333, abs=1e-4),
        "clutter": 0.0,
        "background": 0.0,
    }


def test_auc_counts_ties_as_half_and_is_none_without_negatives():
    assert ap_breakdown.auc(np.array([2.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.875)
    assert ap_breakdown.auc(np.array([1.0]), np.array([])) is None


def test_masks_in_the_true_box_best_query_union_and_every_product():
    truth = torch.zeros(8, 8, dtype=torch.bool)
    truth[2:6, 2:6] = True  # 16 pixels, its box is itself
    products = truth.clone()
    products[2:6, 6:8] = True  # a neighbour outside the box: cut away -> IoU 1
    queries = torch.zeros(2, 8, 8, dtype=torch.bool)
    queries[0, 2:6, 2:4] = True  # half the object: 8 / 16
    queries[1, 0:8, 4:6] = True  # the other half and beyond the box: 8 / 16 inside it
    ious = ap_breakdown.true_box_ious(queries, products, truth)
    assert ious == {"best_query": 0.5, "all_queries": 1.0, "every_product": 1.0}
    products[3, 3] = False  # a hole in the placed products' union
    assert ap_breakdown.true_box_ious(queries, products, truth)["every_product"] == 15 / 16


def test_query_spread_is_zero_for_a_collapsed_decoder_whatever_the_box_centres():
    logits = torch.tensor([[1.0, 0.0]] * 3)  # every query the same margin
    boxes = torch.tensor([[0.2, 0.2, 0.1, 0.4], [0.7, 0.5, 0.1, 0.4], [0.5, 0.9, 0.1, 0.4]])
    assert ap_breakdown.query_spread(logits, boxes) == pytest.approx((0.0, 0.0))
    logits[0, 0], boxes[0, 2:] = 4.0, torch.tensor([0.4, 1.6])  # margins 4, 1, 1; sides ×4
    margin, side = ap_breakdown.query_spread(logits, boxes)
    assert margin == pytest.approx(torch.tensor([4.0, 1.0, 1.0]).std().item())
    assert side == pytest.approx(torch.tensor([np.log(4), 0.0, 0.0]).std().item(), rel=1e-5)


def test_size_agreement_is_zero_for_boxes_of_one_size():
    true = np.array([[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]])
    one_size = np.hstack([np.full((3, 2), 25.0), true])
    assert ap_breakdown.size_agreement(one_size) == {
        "corr_w": None,
        "corr_h": None,
        "std_ratio_w": 0.0,
        "std_ratio_h": 0.0,
    }
    half = np.hstack([true / 2 + 5, true])  # sizes that follow the truth at half its spread
    figures = ap_breakdown.size_agreement(half)
    assert figures["corr_w"] == figures["corr_h"] == 1.0
    assert figures["std_ratio_w"] == figures["std_ratio_h"] == 0.5


def test_slot_links_count_the_links_that_stay_on_their_product():
    # two products side by side, product 0 the target; 3 frames, 2 slots
    objects = torch.zeros(2, 3, 4, 8, dtype=torch.bool)
    objects[0, :, :, :4] = True  # left half
    objects[1, :, :, 4:] = True  # right half
    left, right = [0.25, 0.5], [0.75, 0.5]
    centres = torch.tensor(
        [
            [left, right],
            [right, right],  # slot 0 hops to product 1
            [right, left],  # slot 1 hops back to product 0
        ]
    )
    links = ap_breakdown.slot_links(centres, objects, targets=1)
    assert links == {"all": (2, 4), "on_target": (0, 1)}
    objects[:, 1] = False  # nothing under any centre in frame 1: no link counts
    assert ap_breakdown.slot_links(centres, objects, targets=1) == {
        "all": (0, 0),
        "on_target": (0, 0),
    }


def test_objects_under_names_the_first_object_holding_each_centre():
    objects = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    objects[0, 0, :2, :2] = True  # top left
    objects[1, 0, :, 1:] = True  # right three columns, overlapping object 0 at column 1
    centres = torch.tensor([[[0.1, 0.1], [0.3, 0.1], [0.9, 0.9], [0.1, 0.9], [0.1, 1.5]]])
    under = ap_breakdown.objects_under(centres, objects)
    assert under.tolist() == [[0, 0, 1, -1, -1]]  # the last one clamped to row 3, column 0
    assert ap_breakdown.objects_under(centres, objects[:0]).tolist() == [[-1] * 5]


def test_look_alike_attributes_names_what_each_look_alike_changes_in_file_order():
    hat = {"shape": "hat", "pattern": "dots", "colour": "teal"}
    every = {
        "videos": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"video_id": 1, "role": "negative", "product": {**hat, "colour": "red"}},
            {"video_id": 1, "role": "target", "product": hat},
            {"video_id": 1, "role": "clutter", "product": {**hat, "shape": "mug"}},
            {"video_id": 1, "role": "negative", "product": {**hat, "shape": "bag"}},
            {"video_id": 1, "role": "negative", "product": {**hat, "pattern": "plain"}},
            {"video_id": 2, "role": "target", "product": hat},
        ],
    }
    assert ap_breakdown.look_alike_attributes(every) == {1: ["colour", "shape", "pattern"], 2: []}
