import os
import stat

import pytest

from vois_cli.atomic import atomic_dir, atomic_path, write_json


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_usual_permissions_not_the_temp_files_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"AP": 1.0})
        with atomic_dir(tmp_path / "frames") as folder:
            (folder / "00000.jpg").write_bytes(b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "m.json") == 0o644
    assert _mode(tmp_path / "frames") == 0o755


def test_a_failed_write_leaves_the_old_output_and_no_temp_file(tmp_path):
    out = tmp_path / "pred.json"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["pred.json"]


def test_a_failed_folder_leaves_the_old_folder(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "a.jpg").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "b.jpg").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert [p.name for p in out.iterdir()] == ["a.jpg"]
