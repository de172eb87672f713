"""benchmarks/rescore.py: an older checkpoint's config takes today's post-processing only."""

import rescore

from vois_cli.config import Config, inference_fields, preset


def test_only_the_inference_fields_take_todays_preset_values():
    # trained before score_mask / score_coverage / mask_boxes existed, with a non-default
    # architecture
    trained = preset("tiny", model={"cross_stages": (3,), "hidden_dim": 32}).to_dict()
    for field in ("score_mask", "score_coverage", "mask_boxes"):
        del trained["model"][field]
    trained["model"]["mask_threshold"] = 0.7
    old = Config.from_dict(trained).model
    assert not (old.score_mask or old.score_coverage or old.mask_boxes)  # predated: off
    new = Config.from_dict(rescore.rescored_config(trained)).model
    today = preset("tiny").model
    for field in inference_fields():
        assert getattr(new, field) == getattr(today, field)
    assert new.score_mask and new.score_coverage and new.mask_boxes and new.mask_threshold == 0.5
    others = set(trained["model"]) - set(inference_fields())
    assert {f: getattr(new, f) for f in others} == {f: getattr(old, f) for f in others}
    assert (new.cross_stages, new.hidden_dim) == ((3,), 32)


def test_the_inference_fields_are_the_ones_training_never_reads():
    assert set(inference_fields()) == {
        "slot_gate",
        "slot_motion",
        "mask_boxes",
        "score_threshold",
        "score_mask",
        "score_coverage",
        "score_consistency",
        "score_shape",
        "track_soft_nms",
        "score_agreement",
        "mask_threshold",
        "mask_guide",
    }
