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
    # how much and where it renders: the same frame
    for over in ({"images_per_shard": 7}, {"shards": 9}, {"threads": 1}, {"device": "GPU"}):
        assert key_of(shard_inputs({**cfg, **over}, 0, 0), 0) == base, over
    # what it draws and on what: another frame
    others = [key_of(shard_inputs({**cfg, "pedestrians_per_image": [4, 8]}, 0, 0), 0),
              key_of(shard_inputs({**cfg, "samples": 5}, 0, 0), 0),
              key_of(shard_inputs(cfg, 1, 0), 0), key_of(shard_inputs(cfg, 0, 1), 0),
              key_of(shard_inputs(cfg, 0, 0), 1), key_of(shard_inputs(cfg, 0, 0, "GPU (OPTIX)"), 0),
              key_of(shard_inputs(cfg, 0, 0), 0, {"scene": {"frame": "x"}, "seed_key": [0, 0, 0]})]
    assert len(set(others + [base])) == len(others) + 1
    # asset contents, also of the files a model reads with it (.mtl, textures), in subfolders too
    folder = tmp_path / "people"
    (folder / "tex").mkdir(parents=True)
    (folder / "box.obj").write_text(BOX_OBJ)
    (folder / "box.mtl").write_text("newmtl a\nmap_Kd tex/a.png\n")
    (folder / "tex/a.png").write_bytes(b"png")
    (folder / ".hidden").write_text("editor state")
    (folder / "._box.obj").write_text("macOS resource fork")  # hidden: neither drawn nor keyed
    from blender.spec import asset_files as drawn_from
    assert drawn_from(str(folder)) == [str(folder / "box.obj")]
    with_asset = {**cfg, "assets": {"pedestrian": str(folder)}}
    assert frame_key.asset_files(with_asset) == [str(folder / n) for n in ("box.mtl", "box.obj", "tex/a.png")]
    keys = {key_of(shard_inputs(with_asset, 0, 0), 0)}
    for path, content in (("box.obj", BOX_OBJ.replace("0.4", "0.8")), ("box.mtl", "newmtl b\n"),
                          ("tex/a.png", "other png")):
        (folder / path).write_text(content)
        keys.add(key_of(shard_inputs(with_asset, 0, 0), 0))
    assert len(keys) == 4
    (folder / ".hidden").write_text("other editor state")
    assert key_of(shard_inputs(with_asset, 0, 0), 0) in keys
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
    parts = {part: "v1" for part in frame_key.PARTS}
    stored = {"s000_00000": "k0", "s000_00001": "old", "s000_00002": "k2", "s000_00003": "k3", "s000_00004": None}
    for frame, key in stored.items():
        (out / "rgb" / f"{frame}.png").write_bytes(b"png")
        (out / "ids" / f"{frame}.png").write_bytes(b"png")
        meta = {"input_key": key, "input_parts": {**parts, "code": "v0"}} if key else {"input_key": None,
                                                                                    "input_parts": None}
        (out / "meta" / f"{frame}.json").write_text(json.dumps(meta))
    (out / "ids" / "s000_00002.png").unlink()  # half a frame: rendered again
    # the frames the current inputs draw: frame 3 no longer belongs
    wanted = {"s000_00000": "k0", "s000_00001": "k1", "s000_00002": "k2", "s000_00004": "k4"}
    todo, counts = plan_frames(out, wanted, parts)
    assert todo == ["s000_00001", "s000_00002", "s000_00004"]
    assert counts == {"kept": 1, "missing": 1, "unkeyed": 1, "stale": 1, "removed": 1,
                      "changed": {"settings": 0, "assets": 0, "code": 1, "packages": 0, "device": 0}}
    assert frame_key.frames_on_disk(out) == {"s000_00000"}  # stale and extra frames gone, meta first
    line = frame_key.describe(0, 4, todo, counts)
    assert ("kept 1 drawn from the same inputs, rendering 3 (1 missing, 1 rendered before frames had keys, "
            "1 drawn from other inputs: changed code 1); removed 1 that no longer belong") in line
    # with keep_exr, a kept frame needs its EXR too
    todo, counts = plan_frames(out, {"s000_00000": "k0"}, parts, keep_exr=True)
    assert todo == ["s000_00000"] and counts["missing"] == 1


@pytest.mark.slow
def test_render_setting_change_rerenders_and_lower_count_leaves_exactly_the_new_frames(rendered_shard, tmp_path):
    shard = tmp_path / "shard_000"
    shutil.copytree(rendered_shard, shard)
    before = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    changed = tiny_render_cfg(pedestrians_per_image=[3, 4], camera_height_m=[3.0, 3.5])
    res = run_render(changed, shard)
    assert res.returncode == 0, res.stderr[-3000:]
    assert ("kept 0 drawn from the same inputs, rendering 2 (0 missing, 0 rendered before frames had keys, "
            "2 drawn from other inputs: changed settings 2)") in res.stderr
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
    assert "rendering 1 (0 missing, 0 rendered before frames had keys, 1 drawn from other inputs: changed assets 1)" \
        in res.stderr
    after = {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")}
    assert after["rgb"] != before["rgb"]  # the wider box is in the picture
    manifest = assert_manifest_lists_what_is_there(shard)
    assert list(manifest["inputs"]["assets"]) == [str(folder / "box.obj")]


@pytest.mark.slow
def test_a_frame_rerendered_from_its_metadata_is_the_same_image(rendered_shard, tmp_path):
    meta = json.loads((rendered_shard / "meta/s000_00001.json").read_text())
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([meta]))
    out = tmp_path / "again"
    res = run_render(tiny_render_cfg(), out, extra=["--specs", str(specs)])
    assert res.returncode == 0, res.stderr[-3000:]
    for sub in ("rgb", "ids"):  # the frame's own seed key: the same Cycles noise, byte for byte
        assert (out / sub / "s000_00001.png").read_bytes() == (rendered_shard / sub / "s000_00001.png").read_bytes()
    # into a shard that holds other frames, or that the config rendered: refused, nothing touched
    shard = tmp_path / "shard"
    shutil.copytree(rendered_shard, shard)
    res = run_render(tiny_render_cfg(), shard, extra=["--specs", str(specs)])
    assert res.returncode == 1 and "holds frames that are not in --specs (s000_00000)" in res.stderr
    both = tmp_path / "both.json"
    both.write_text(json.dumps([json.loads(p.read_text()) for p in sorted((rendered_shard / "meta").glob("*.json"))]))
    res = run_render(tiny_render_cfg(samples=8), shard, extra=["--specs", str(both)])
    assert res.returncode == 1 and "holds a shard rendered from the config" in res.stderr
    assert {sub: digests(shard, sub) for sub in ("rgb", "ids", "meta")} == \
        {sub: digests(rendered_shard, sub) for sub in ("rgb", "ids", "meta")}
