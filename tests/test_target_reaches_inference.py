"""The target image reaches the network at inference: with a real `tiny` model (seed-0 random
weights) one video and two targets give two different outputs through `Predictor.predict`,
`Stream.push` and `vois infer`, while the same target twice gives the same output."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vois_cli.checkpoint import save_checkpoint
from vois_cli.cli import main
from vois_cli.config import preset
from vois_cli.data.video import VideoWriter
from vois_cli.inference import Predictor
from vois_cli.inputs import read_video
from vois_cli.models import build_model

WIDTH, HEIGHT, FRAMES = 96, 64, 10  # at 5 fps: two clips of T = 8, linked


def _product(colour, stripes):
    """A product photo on white: a coloured block, striped when `stripes`."""
    image = np.full((60, 40, 3), 255, np.uint8)
    image[8:52, 6:34] = colour
    if stripes:
        image[8:52:6, 6:34] = 255
    return Image.fromarray(image)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(video, target A, target B): a red and a blue block drift over a grey ramp."""
    root = tmp_path_factory.mktemp("target_reaches")
    ramp = np.linspace(60, 200, WIDTH, dtype=np.uint8)[None, :, None].repeat(HEIGHT, 0)
    with VideoWriter(root / "v.mp4", WIDTH, HEIGHT, 5) as writer:
        for f in range(FRAMES):
            image = np.repeat(ramp, 3, axis=2)
            image[10:34, 4 + 3 * f : 28 + 3 * f] = (220, 30, 30)
            image[36:60, 60 - 3 * f : 84 - 3 * f] = (30, 30, 220)
            writer.write(image)
    a, b = _product((220, 30, 30), False), _product((30, 30, 220), True)
    a.save(root / "a.png")
    b.save(root / "b.png")
    return root / "v.mp4", a, b


def _predictions(predictor, video, target):
    return json.dumps(predictor.predict(video, target).to_predictions(1))


def test_predict_gives_other_objects_for_another_target(tiny_checkpoint, inputs):
    video, a, b = inputs
    predictor = Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    first = _predictions(predictor, video, a)
    assert first == _predictions(predictor, video, a)  # deterministic: a difference is the target's
    assert first != _predictions(predictor, video, b)
    assert json.loads(first)  # the random model proposes objects at all


def test_a_model_without_a_target_path_gives_the_same_objects_for_both(inputs, tmp_path):
    """The control: the comparison above can only come out equal when the target is ignored."""
    video, a, b = inputs
    torch.manual_seed(0)
    config = preset("tiny", model={"use_target": False})
    save_checkpoint(
        tmp_path / "no_target.pt",
        config=config.to_dict(),
        model=build_model(config)[0].state_dict(),
    )
    predictor = Predictor.from_checkpoint(tmp_path / "no_target.pt", "cpu")
    assert _predictions(predictor, video, a) == _predictions(predictor, video, b)


def _streamed(predictor, video, target):
    """Every decided frame's (index, [(id, score, mask bytes)]) and the final objects."""
    stream, decided = predictor.stream(target), []
    frames, _ = read_video(video, predictor.fps)
    for frame in frames:
        decided += stream.push(frame)
    decided += stream.close()
    shown = [(d.index, [(i, s, m.tobytes()) for i, s, m in d.objects]) for d in decided]
    assert [index for index, _ in shown] == list(range(FRAMES))
    return shown, json.dumps(stream.result().to_predictions(1))


def test_stream_push_gives_other_frames_for_another_target(tiny_checkpoint, inputs):
    video, a, b = inputs
    predictor = Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    first = _streamed(predictor, video, a)
    assert first == _streamed(predictor, video, a)
    other = _streamed(predictor, video, b)
    assert first[0] != other[0] and first[1] != other[1]


def test_vois_infer_writes_other_objects_for_another_target(
    tiny_checkpoint, inputs, tmp_path, monkeypatch, capsys
):
    video, a, b = inputs
    written = []
    for name, target in (("a", a), ("b", b)):
        target.save(tmp_path / f"{name}.png")
        out = tmp_path / f"{name}.json"
        argv = ["vois", "infer", video, "--target", tmp_path / f"{name}.png"]
        monkeypatch.setattr(
            sys,
            "argv",
            list(
                map(str, [*argv, "--checkpoint", tiny_checkpoint, "--out", out, "--device", "cpu"])
            ),
        )
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 0, capsys.readouterr().err
        written.append(json.loads(out.read_text()))
    assert written[0] and written[0] != written[1]
