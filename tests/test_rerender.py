"""Frames belong to their inputs: a rerun keeps a frame only when what would draw it is unchanged."""
import hashlib
import json
import shutil

import pytest

from blender import frame_key
from blender.frame_key import frame_key as key_of, plan_frames, shard_inputs
from tests.conftest import run_render, tiny_render_cfg
from tests.test_assets import BOX_OBJ, asset_cfg


def digests(shard, sub):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((shard / sub).iterdir())}


def frame_set(shard):
    return {sub: sorted(p.stem for p in (shard / sub).iterdir()) for sub in ("rgb", "ids", "meta")}


def assert_manifest_lists_what_is_there(shard):
    manifest = json.loads((shard / "manifest.json").read_text())
    assert all(names == manifest["frames"] for names in frame_set(shard).values())
    for frame, key in manifest["frame_keys"].items():
        assert json.loads((shard / "meta" / f"{frame}.json").read_text())["input_key"] == key
    return manifest


def test_key_follows_what_draws_a_frame_and_nothing_else(tmp_path, monkeypatch):
    cfg = tiny_render_cfg()
    base = key_of(shard_inputs(cfg, 0, 0), 0)
    assert key_of(shard_inputs(cfg, 0, 0), 0) == base
    # how much, where and on what it renders: the same frame
    for over in ({"images_per_shard": 7}, {"shards": 9}, {"threads": 1}, {"device": "GPU"}):
        assert key_of(shard_inputs({**cfg, **over}, 0, 0), 0) == base, over
    # what it draws: another frame
    others = [key_of(shard_inputs({**cfg, "pedestrians_per_image": [4, 8]}, 0, 0), 0),
              key_of(shard_inputs({**cfg, "samples": 5}, 0, 0), 0),
              key_of(shard_inputs(cfg, 1, 0), 0), key_of(shard_inputs(cfg, 0, 1), 0),
              key_of(shard_inputs(cfg, 0, 0), 1)]
    assert len(set(others + [base])) == len(others) + 1
    # asset contents: a swapped file of the same name changes the key
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "box.obj").write_text(BOX_OBJ)
    with_asset = {**cfg, "assets": {"pedestrian": str(folder)}}
    first = key_of(shard_inputs(with_asset, 0, 0), 0)
    (folder / "box.obj").write_text(BOX_OBJ.replace("0.4", "0.8"))
    assert key_of(shard_inputs(with_asset, 0, 0), 0) != first
    (folder / "other.glb").write_bytes(b"glTF")
    assert len(frame_key.asset_files(with_asset)) == 2
    # scene code: an edit to any blender/*.py file
    code = tmp_path / "blender"
    code.mkdir()
    for p in frame_key.code_files():
        shutil.copy(p, code / p.name)
    monkeypatch.setattr(frame_key, "SCENE_CODE", code)
    assert key_of(shard_inputs(cfg, 0, 0), 0) == base
    (code / "build.py").write_text((code / "build.py").read_text() + "\n# an edit\n")
    assert key_of(shard_inputs(cfg, 0, 0), 0) != base


def test_plan_keeps_matching_frames_rerenders_stale_ones_and_removes_extra_ones(tmp_path):
    out = tmp_path / "shard"
    for sub in ("rgb", "ids", "meta"):
        (out / sub).mkdir(parents=True)
    stored = {"s000_00000": "k0", "s000_00001": "old", "s000_00002": "k2", "s000_00003": "k3"}
    for frame, key in stored.items():
        (out / "rgb" / f"{frame}.png").write_bytes(b"png")
        (out / "ids" / f"{frame}.png").write_bytes(b"png")
        (out / "meta" / f"{frame}.json").write_text(json.dumps({"input_key": key, "code_version": "c"}))
    (out / "ids" / "s000_00002.png").unlink()  # half a frame: rendered again
    # images_per_shard lowered from 4 to 3, frame 1 drawn from other settings
    todo, counts = plan_frames(out, {"s000_00000": "k0", "s000_00001": "k1", "s000_00002": "k2"}, "c")
    assert todo == ["s000_00001", "s000_00002"]
    assert counts == {"kept": 1, "missing": 1, "settings_changed": 1, "code_changed": 0, "removed": 1}
    assert not any((out / sub / f"s000_00003{ext}").exists() for sub, ext in frame_key.FRAME_FILES)
    assert not (out / "meta/s000_00001.json").exists()  # stale: not complete until rendered again
    assert (out / "meta/s000_00000.json").exists()
    _, counts = plan_frames(out, {"s000_00000": "k0-new-code"}, "c2")
    assert counts["code_changed"] == 1


@pytest.mark.slow
def test_render_setting_change_rerenders_and_lower_count_leaves_exactly_the_new_frames(rendered_shard, tmp_path):
    shard = tmp_path / "shard_000"
    shutil.copytree(rendered_shard, shard)
    before = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    changed = tiny_render_cfg(pedestrians_per_image=[3, 4], camera_height_m=[3.0, 3.5])
    res = run_render(changed, shard)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kept 0 drawn from the same inputs, rendering 2 (0 missing, 2 drawn with other settings" in res.stderr
    after = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    for sub in ("rgb", "meta"):
        assert all(after[sub][name] != before[sub][name] for name in before[sub]), sub
    manifest = assert_manifest_lists_what_is_there(shard)
    for frame in manifest["frames"]:
        scene = json.loads((shard / "meta" / f"{frame}.json").read_text())["scene"]
        assert 3.0 <= scene["camera"]["location"][2] <= 3.5
        assert sum(o["category"] == "pedestrian" for o in scene["objects"]) >= 1
    # threads only: every frame kept, byte for byte
    res = run_render({**changed, "threads": 1}, shard)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kept 2 drawn from the same inputs, rendering 0" in res.stderr and "rendered 0 frames" in res.stderr
    assert {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")} == after
    # fewer images per shard: exactly the first frame is left, unchanged
    res = run_render({**changed, "images_per_shard": 1}, shard)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "removed 1 that no longer belong" in res.stderr
    assert frame_set(shard) == {sub: ["s000_00000"] for sub in ("rgb", "ids", "meta")}
    assert assert_manifest_lists_what_is_there(shard)["frames"] == ["s000_00000"]
    assert digests(shard, "rgb")["s000_00000.png"] == after["rgb"]["s000_00000.png"]


@pytest.mark.slow
def test_swapped_asset_file_rerenders_the_frame(tmp_path):
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "box.obj").write_text(BOX_OBJ)
    shard = tmp_path / "shard"
    assert run_render(asset_cfg(folder), shard).returncode == 0
    before = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    (folder / "box.obj").write_text(BOX_OBJ.replace("0.4", "0.8"))  # same name, twice as wide
    res = run_render(asset_cfg(folder), shard)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rendering 1 (0 missing, 1 drawn with other settings, seed or assets" in res.stderr
    after = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    assert after["rgb"] != before["rgb"] and after["meta"] != before["meta"]
    manifest = assert_manifest_lists_what_is_there(shard)
    assert list(manifest["inputs"]["assets"]) == [str(folder / "box.obj")]
