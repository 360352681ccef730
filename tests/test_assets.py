"""User assets: a real .obj / .blend imported by bpy as a labelled instance; bad assets named in the error."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_render, tiny_render_cfg
from pipeline.config import ConfigError, validate

pytestmark = pytest.mark.slow

# A box 0.4 wide, 1.0 tall, 0.3 deep (OBJ is Y-up; Blender's importer turns Y into Z), 8 vertices,
# 6 quads, in the asset's own units: the renderer rescales it to the drawn person height.
BOX_OBJ = "\n".join(["o box"] + [f"v {x} {y} {z}" for x in (0, 0.4) for y in (0, 1.0) for z in (0, 0.3)] +
                    ["f 1 3 4 2", "f 5 6 8 7", "f 1 2 6 5", "f 3 7 8 4", "f 1 5 7 3", "f 2 4 8 6"]) + "\n"


def asset_cfg(folder, **over):
    return tiny_render_cfg(images_per_shard=1, pedestrians_per_image=[2, 2], pallet_jacks_per_image=[0, 0],
                           distractors_per_image=[0, 0], assets={"pedestrian": str(folder)}, asset_fraction=1.0,
                           **over)


def test_obj_asset_renders_as_a_labelled_pedestrian(tmp_path):
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "box.obj").write_text(BOX_OBJ)
    out = tmp_path / "shard"
    res = run_render(asset_cfg(folder), out)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((out / "meta/s000_00000.json").read_text())
    people = [o for o in meta["scene"]["objects"] if o["category"] == "pedestrian"]
    assert len(people) == 2 and all(o["params"]["asset"].endswith("box.obj") for o in people)
    hsv = [o["params"]["asset_hsv"] for o in people]  # seeded colour variation per instance
    assert hsv[0] != hsv[1] and all(abs(h) <= 0.06 and 0.75 <= s <= 1.25 and 0.7 <= v <= 1.3 for h, s, v in hsv)
    ids = np.asarray(Image.open(out / "ids/s000_00000.png"))
    visible = [int((ids == o["instance_id"]).sum()) for o in people]
    assert max(visible) > 20, visible  # the imported box is in the instance map under its id
    # Scaled to the drawn person height: mask taller than wide, as the 1.0 x 0.4 box is.
    ys, xs = np.nonzero(ids == people[int(np.argmax(visible))]["instance_id"])
    assert ys.ptp() > xs.ptp()


def write_blend(path, what: str):
    """A .blend made by bpy in its own process: `mesh` (a cube) or `camera` (no mesh at all)."""
    code = ("import bpy, sys\nbpy.ops.wm.read_factory_settings(use_empty=True)\n"
            + ("bpy.ops.mesh.primitive_cube_add()\n" if what == "mesh" else "bpy.ops.object.camera_add()\n")
            + f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0 and path.is_file(), res.stderr[-2000:]


def test_blend_asset_imports(tmp_path):
    folder = tmp_path / "people"
    folder.mkdir()
    write_blend(folder / "cube.blend", "mesh")
    res = run_render(asset_cfg(folder), tmp_path / "shard")
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "shard/meta/s000_00000.json").read_text())
    assert any(o["params"].get("asset", "").endswith("cube.blend") for o in meta["scene"]["objects"])


@pytest.mark.parametrize("name,content,message", [
    ("empty.obj", b"", "asset file is empty"),
    ("junk.glb", b"\x00\x01 not a gltf file \xff" * 20, "cannot import"),
    ("nofaces.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no mesh with faces"),
    ("camera.blend", None, "no mesh with faces"),
])
def test_bad_asset_is_named_and_finished_frames_stay(tmp_path, name, content, message):
    folder = tmp_path / "people"
    folder.mkdir()
    if content is None:
        write_blend(folder / name, "camera")
    else:
        (folder / name).write_bytes(content)
    res = run_render(asset_cfg(folder), tmp_path / "shard")
    assert res.returncode == 1
    assert f"{folder / name}: {message}" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "shard/manifest.json").exists()  # nothing looks finished


def test_asset_folder_errors_name_the_key(tmp_path):
    base = {"name": "t", "seed": 0, "classes": ["pedestrian", "pallet_jack"], "model": {"weights": "none"}}
    with pytest.raises(ConfigError, match=r"render.assets.pedestrian: '.*missing' is not a folder"):
        validate({**base, "render": {"assets": {"pedestrian": str(tmp_path / "missing")}}})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("no models here")
    with pytest.raises(ConfigError, match=r"render.assets.pallet_jack: .* holds no .blend, .glb, .gltf or .obj"):
        validate({**base, "render": {"assets": {"pallet_jack": str(tmp_path / "empty")}}})
    with pytest.raises(ConfigError, match="unknown key render.assets.forklift"):
        validate({**base, "render": {"assets": {"forklift": str(tmp_path)}}})


COLOUR_SCRIPT = """
import json, sys
import bpy
from blender.assets import build_asset
from blender.build import clear_scene
from blender.spec import ObjectSpec

clear_scene()
out = {}
for k, hsv in enumerate(([0.05, 1.2, 0.8], [-0.05, 0.8, 1.25])):
    spec = ObjectSpec(f"inst_{k + 1:03d}", "pedestrian", "pedestrian", k + 1, (2.0 * k, 0.0, 0.0), 0.0,
                      {"asset": sys.argv[1], "asset_size_m": 1.7, "asset_hsv": hsv})
    obj = build_asset(spec)
    mat = obj.material_slots[0].material
    node = next(n for n in mat.node_tree.nodes if n.type == "HUE_SAT")
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    out[obj.name] = {"material": mat.name, "hsv": [node.inputs[i].default_value for i in ("Hue", "Saturation", "Value")],
                     "colour_in": list(node.inputs["Color"].default_value)[:3],
                     "feeds_base": bsdf.inputs["Base Color"].links[0].from_node.name == node.name}
out["source"] = [list(m.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value)[:3]
                 for m in bpy.data.materials if m.name == "red"]
print("COLOURS" + json.dumps(out))
"""


def test_asset_materials_get_their_own_seeded_colour_variation(tmp_path):
    """Each instance of a user asset gets a copy of the asset's materials with a Hue/Saturation/Value
    node (from the spec's asset_hsv) in front of Base Color; the source material is left as it was."""
    blend = tmp_path / "red_cube.blend"
    code = ("import bpy\nbpy.ops.wm.read_factory_settings(use_empty=True)\nbpy.ops.mesh.primitive_cube_add()\n"
            "m = bpy.data.materials.new('red')\nm.use_nodes = True\n"
            "m.node_tree.nodes['Principled BSDF'].inputs['Base Color'].default_value = (0.8, 0.1, 0.05, 1)\n"
            "bpy.context.object.data.materials.append(m)\n"
            f"bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run([sys.executable, "-c", COLOUR_SCRIPT, str(blend)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.split("COLOURS")[-1])
    a, b = out["inst_001"], out["inst_002"]
    assert a["material"] != b["material"]
    assert np.allclose(a["hsv"], [0.55, 1.2, 0.8]) and np.allclose(b["hsv"], [0.45, 0.8, 1.25])
    assert a["feeds_base"] and b["feeds_base"]
    assert np.allclose(a["colour_in"], [0.8, 0.1, 0.05], atol=1e-3)
    assert np.allclose(out["source"], [[0.8, 0.1, 0.05]], atol=1e-3)
