"""Frozen configuration dataclasses and the named presets `paper`, `small` and `tiny`.

Every size in model code comes from here (CONTRIBUTING.md#code-style); the presets are
described in docs/design.md#presets. `params.yaml` maps onto these fields one to one;
`preset(name, **overrides)` applies such overrides.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

INFERENCE = {"inference": True}  # a field training never reads: see inference_fields()


@dataclass(frozen=True)
class ModelConfig:
    """The network: dual-path Swin backbone, cross blocks, DETR decoder, heads, losses."""

    preset: str = "paper"
    arch: str = "vois"  # "vois" (dual-path Swin) or "vistr_r50" (paper Table 2 baseline)
    # Swin backbones (image path 2D, video path 3D with temporal patch 1)
    embed_dim: int = 96  # C; stage s has C * 2**(s-1) channels
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    image_window: int = 7
    video_window: tuple[int, int, int] = (8, 7, 7)  # (t, h, w)
    drop_path: float = 0.2
    # target conditioning
    use_target: bool = True  # False: no image path and no cross blocks (paper Table 3)
    cross_stages: tuple[int, ...] = (3, 4)  # stages followed by a Cross Transformer block
    cross_mlp_ratio: float = 4.0
    cross_lr_backbone: bool = True  # cross blocks train at the backbone learning rate (§5.1)
    # target-similarity maps (models/similarity.py, a deviation): at these stages the cosine of
    # every video token with its best target tokens joins the memory E; () = off (the paper)
    similarity_stages: tuple[int, ...] = ()
    similarity_dim: int = 32
    # True: each similarity map gains a third channel, the share of the token's pixels whose
    # colour the target's product has (histogram back-projection; a deviation: the learned
    # maps barely separate the target from look-alikes in another colour; training-notes)
    colour_similarity: bool = False
    # True: each similarity map gains a channel more, the intersection of the target product's
    # colour histogram with that of the 20-px window around each position: a striped product
    # and a plain one in the same colours differ in it (a deviation; training-notes)
    colour_mix: bool = False
    # True: each similarity map also joins the mask head's input at its own stride (f1-f3 carry
    # its channels), so that a mask can say "the target here", not only "a product here" (a
    # deviation, on in `tiny`: it needs the stride-4 map of stage 1 to help; training-notes)
    mask_similarity: bool = False
    # memory E: 32 = the paper (f4); 16 = f3 plus f4 upsampled, so that the decoder and the
    # token proposals read a grid at which small inputs' objects span several tokens
    memory_stride: int = 32
    # DETR decoder
    hidden_dim: int = 384
    dec_layers: int = 6
    dec_heads: int = 8
    # mask head attention maps: True = each head's softmax over positions times h·w (mean 1),
    # False = DETR's joint softmax over heads × positions (total mass 1; see mask_head.py)
    mask_maps_scaled: bool = True
    # mask head widths are mask_dim / 2, 4, 8, 16, 32 (VisTR: mask_dim = hidden_dim = 384)
    mask_dim: int = 384
    mask_deform: bool = True  # VisTR's deformable 3×3 conv at stride 4; False: a plain conv
    # "vistr": VisTR's head (the paper); "condinst": per-query dynamic networks over a small
    # FPN at stride 4, mask_dim / 4 wide, and the pixel's offset from the query's box
    # (models/condinst_mask_head.py, a deviation; needs two_stage)
    mask_head: str = "vistr"
    # "condinst" masks are cut to their proposal's box at inference;
    # False: not in training (the mask learns its instance's extent itself; a deviation)
    mask_cut_training: bool = True
    # True: at inference each two-stage proposal's box is read again from its uncut mask (the
    # extent of the part connected to the box centre), then its mask is made and cut in that
    # box (a deviation, on in `tiny`: regressed sizes barely follow the objects; training-notes)
    mask_boxes: bool = field(default=False, metadata=INFERENCE)
    dim_feedforward: int = 2048
    # decoder input: False = zeros (DETR, VisTR); True = a learned content vector per query
    # (Deformable DETR), so that queries differ from the first layer on
    query_content: bool = False
    # two-stage queries (models/proposals.py, a deviation): the best memory tokens of each
    # frame become the queries, their boxes the references the decoder refines, and the mask
    # head gets each proposal's box as a window channel (docs/training-notes.md)
    two_stage: bool = False
    # True: the two-stage token head's positive for an object is the token showing most of it
    # nearest its visible mass centre, not the token its box centre falls in (a quarter of
    # SynthLive's box centres lie on another, occluding product; a deviation)
    token_on_mask: bool = False
    # > 0: at inference two-stage slots are carried from frame to frame (a slot takes a top token
    # within this many memory cells of its own, else follows its own object's best token) instead
    # of re-paired one to one with every frame's top tokens (a deviation, on in `tiny`: the
    # one-to-one pairing moves slots between objects; models/proposals.py, training-notes)
    slot_gate: float = field(default=0.0, metadata=INFERENCE)
    # > 0: with slot_gate, a slot is moved by the shift of the slot_motion-px square of
    # image around its centre to the next input frame (normalised cross-correlation within as
    # many px, at half resolution; a deviation, on in `tiny` at 48 with slot_gate 1.0: a
    # measured shift lets the gate be tighter, AP up over three default runs and eight test
    # splits, four of them held out; training-notes)
    slot_motion: int = field(default=0, metadata=INFERENCE)
    dropout: float = 0.1
    num_queries: int = 10  # n, object proposals per frame; N = n * T queries
    num_frames: int = 36  # T
    # vistr_r50 baseline: transformer encoder layers, each followed by a cross block
    enc_layers: int = 6
    # input geometry
    short_edge: int = 224  # video frames and target resized to this short edge
    max_long_edge: int = 400  # long edge cap, aspect kept
    # matcher costs and loss weights (VisTR)
    cost_class: float = 1.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    loss_ce: float = 1.0
    loss_bbox: float = 5.0
    loss_giou: float = 2.0
    loss_mask: float = 1.0
    loss_dice: float = 1.0
    eos_coef: float = 0.1
    # > 0: one-to-many mask loss (H-DETR's idea, masks only; a deviation): in every frame, each
    # query whose box centre lies on an object also learns that object's mask (focal and dice,
    # weighted loss_mask · w and loss_dice · w); the objects are every placed product when the
    # artifact has them (`vois preprocess --products`), else the targets
    loss_mask_o2m: float = 0.0
    # > 0: a per-token "target here" head on E, BCE against the fraction of the token that the
    # relevant objects cover (dense supervision of the comparison; a deviation)
    loss_target_map: float = 0.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    aux_loss: bool = True
    # inference
    score_threshold: float = field(default=0.001, metadata=INFERENCE)
    # proposal score × its mask's mean probability where it is on (SOLO's "maskness"; a
    # deviation, on in `tiny`: the class logits barely rank the proposals; training-notes)
    score_mask: bool = field(default=False, metadata=INFERENCE)
    # track score × the share of the video's frames it has a mask in (a deviation, on in
    # `tiny`: fragments of broken tracks otherwise outrank whole ones; inference.py)
    score_coverage: bool = field(default=False, metadata=INFERENCE)
    # track score × the mean IoU of its masks in consecutive frames (a deviation, on in `tiny`:
    # a track that jumps to another object loses its masks' overlap there; training-notes)
    score_consistency: bool = field(default=False, metadata=INFERENCE)
    # track score × the median over its masks of min / max of their elongation and the target
    # product's (a deviation, on in `tiny`: the model's maps barely tell look-alikes of another
    # shape; silhouette.py, training-notes); a comparison with the target, so off without
    # `use_target`
    score_shape: bool = field(default=False, metadata=INFERENCE)
    # > 0: the video's tracks, best first, each scaled by exp(-IoU² / this) for its sequence IoU
    # with every better one (Gaussian Soft-NMS, Bodla et al. 2017; a deviation, on in `tiny` at
    # the paper's σ 0.5: the duplicate tracks of one object otherwise outrank other objects;
    # track_score.py, training-notes)
    track_soft_nms: float = field(default=0.0, metadata=INFERENCE)
    # then each final track score × (1 + the sum of its sequence IoUs with the video's other
    # tracks) (a deviation, on in `tiny`: several of a model's slots follow a target where
    # fewer follow anything else; track_score.py, training-notes)
    score_agreement: bool = field(default=False, metadata=INFERENCE)
    mask_threshold: float = field(default=0.5, metadata=INFERENCE)
    # > 0: every mask a video's frames show is snapped to that frame's edges by a guided filter
    # (He et al. 2010) of this radius in model-input px, scaled to the frame (a deviation, on in
    # `tiny` at 6, 1.5 stride-4 mask cells, 8 px at SynthLive's 320 × 180: the masks miss the
    # products' outlines by up to half a cell; guided_filter.py, training-notes)
    mask_guide: float = field(default=0.0, metadata=INFERENCE)
    activation_checkpointing: bool = False


def inference_fields() -> tuple[str, ...]:
    """The ModelConfig fields that training never reads (post-processing, and the slot carrying
    of an evaluated model): a trained checkpoint can take new values of these without
    retraining (benchmarks/rescore.py)."""
    return tuple(f.name for f in dataclasses.fields(ModelConfig) if f.metadata.get("inference"))


LR_SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """The optimiser and schedule (paper §6.1): AdamW, two groups, step decay."""

    epochs: int = 18
    lr: float = 1e-4
    lr_backbone: float = 1e-5
    lr_drop_epoch: int = 12  # lr / 10 after this many epochs (scaled with `epochs`)
    lr_schedule: str = "step"  # step: that drop (the paper); cosine: to 0 over every step
    weight_decay: float = 1e-4
    clip_max_norm: float = 0.1
    clips_per_video: int = 0  # clips drawn per video and epoch; 0 = one per annotated frame
    accumulate: int = 1  # gradient accumulation steps (emulates the paper's 32-clip batch)
    seed: int = 0
    bf16: bool = True  # autocast on CUDA only
    num_workers: int = 0

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"TrainConfig.lr_schedule = {self.lr_schedule!r}; choose one of "
                + ", ".join(LR_SCHEDULES)
            )


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return cls(
            model=_build(ModelConfig, d.get("model", {})),
            train=_build(TrainConfig, d.get("train", {})),
        )


# Fields removed after probes that never earned their place, or that a later change superseded
# (docs/training-notes.md): an older checkpoint or params file may still hold them at the
# value every preset had, which is what the code does now, so they are dropped; any other
# value cannot be honoured and fails.
RETIRED: dict[str, dict[str, Any]] = {
    "ModelConfig": {"frame_attention": False, "score_target_map": 0.0, "slot_velocity": 0.0},
    "TrainConfig": {"lr_mask_head": 0.0},
}


def _build(kind: type, values: dict[str, Any]) -> Any:
    """Instantiate a config dataclass from plain values, each as its field's type (`_typed`);
    unknown keys fail."""
    types = typing.get_type_hints(kind)  # field name -> type, the annotations resolved
    retired = RETIRED.get(kind.__name__, {})
    for key in sorted(set(values) & set(retired)):
        if values[key] != retired[key]:
            raise ValueError(
                f"{kind.__name__}.{key} = {values[key]!r} was removed (only {retired[key]!r}, "
                "what the code does now, is accepted)"
            )
    values = {k: v for k, v in values.items() if k not in retired}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ValueError(f"unknown {kind.__name__} fields: {', '.join(unknown)}")
    return kind(**{k: _typed(f"{kind.__name__}.{k}", types[k], v) for k, v in values.items()})


def _typed(name: str, expected: Any, value: Any) -> Any:
    """`value` as field `name` holds it, or a ValueError naming the field: ints widen to
    floats, lists become tuples, and a number written 6e-4 (a string to YAML 1.1, which reads
    exponents only after a dot) becomes a float."""
    if expected is float and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if typing.get_origin(expected) is tuple:
        items = typing.get_args(expected)
        fits = isinstance(value, list | tuple) and (
            items[-1] is Ellipsis or len(value) == len(items)
        )
        if fits and all(_is(items[0], v) for v in value):
            return tuple(value)
    elif _is(expected, value):
        return value
    raise ValueError(f"{name} = {value!r} is not {_describe(expected)}")


def _is(expected: type, value: Any) -> bool:
    """isinstance, except that a bool is not an int."""
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


def _describe(expected: Any) -> str:
    if typing.get_origin(expected) is tuple:
        items = typing.get_args(expected)
        count = "" if items[-1] is Ellipsis else f"{len(items)} "
        return f"a list of {count}{items[0].__name__}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[expected]


PRESETS: dict[str, Config] = {
    "paper": Config(),
    # one GPU or a patient CPU: same code paths, a quarter of the width
    "small": Config(
        model=ModelConfig(
            preset="small",
            embed_dim=32,
            depths=(2, 2, 2, 2),
            num_heads=(1, 2, 4, 8),
            image_window=7,
            video_window=(4, 7, 7),
            drop_path=0.1,
            hidden_dim=128,
            mask_dim=256,
            dec_layers=3,
            dec_heads=4,
            dim_feedforward=512,
            num_queries=5,
            num_frames=8,
            enc_layers=3,
            short_edge=128,
            max_long_edge=224,
        ),
        train=TrainConfig(epochs=12, lr_drop_epoch=8),
    ),
    # CPU tests and the default `dvc repro`: depth-1 stages lose shifted windows
    # (docs/design.md#library-traps). Deviations from the paper, each measured by the
    # learning ladder (docs/training-notes.md): a 128-px input with a stride-16 memory so
    # that objects span several tokens; target-similarity maps at stages 1-3, each with the
    # target's colours compared without learning (histogram back-projection and each
    # window's colour mix), with a dense target-map loss, each map also read by the mask head
    # at its own stride; two-stage queries, each object's token one that shows it; CondInst
    # masks cut to each proposal's box at inference only (that box read from the uncut mask),
    # with the mask terms weighted as Mask2Former (5) and a one-to-many mask loss on every
    # placed product; learned query contents; slots carried from frame to frame at inference,
    # each moved by the image's measured shift; tracks ranked by their masks' coverage,
    # consistency from frame to frame and shape against the target product's
    "tiny": Config(
        model=ModelConfig(
            preset="tiny",
            embed_dim=24,
            depths=(1, 1, 2, 1),
            num_heads=(1, 2, 4, 8),
            image_window=3,
            video_window=(4, 3, 3),
            drop_path=0.0,
            similarity_stages=(1, 2, 3),
            colour_similarity=True,
            colour_mix=True,
            mask_similarity=True,
            memory_stride=16,
            hidden_dim=64,
            mask_dim=256,
            mask_deform=False,
            mask_head="condinst",
            mask_cut_training=False,
            mask_boxes=True,
            query_content=True,
            two_stage=True,
            token_on_mask=True,
            slot_gate=1.0,
            slot_motion=48,
            dec_layers=2,
            dec_heads=4,
            dim_feedforward=128,
            dropout=0.0,
            num_queries=10,
            num_frames=8,
            enc_layers=2,
            short_edge=128,
            max_long_edge=228,
            loss_mask=5.0,
            loss_dice=5.0,
            loss_mask_o2m=1.0,
            loss_target_map=1.0,
            score_mask=True,
            score_coverage=True,
            score_consistency=True,
            score_shape=True,
            track_soft_nms=0.5,
            score_agreement=True,
            mask_guide=6.0,
        ),
        train=TrainConfig(epochs=12, lr_drop_epoch=8, lr=3e-4, lr_backbone=1e-4, bf16=False),
    ),
}


def preset(name: str, **overrides: Any) -> Config:
    """The named preset with field overrides, e.g. `preset("tiny", model={"use_target": False})`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    d = PRESETS[name].to_dict()
    for section, values in overrides.items():
        d[section].update(values)
    return Config.from_dict(d)
