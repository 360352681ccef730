"""Real bpy renders: masks agree with the scene, same seed gives the same dataset, resume works."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, load_frame, run_render, tiny_render_cfg

pytestmark = pytest.mark.slow




def test_shard_outputs_and_masks_match_instance_ids(rendered_shard):
    manifest = json.loads((rendered_shard / "manifest.json").read_text())
    assert len(manifest["frames"]) == 2
    assert not (rendered_shard / "tmp").exists()
    for frame in manifest["frames"]:
        meta, ids, rgb = load_frame(rendered_shard, frame)
        assert rgb.shape == (96, 128, 3) and ids.dtype == np.uint16 and ids.shape == (96, 128)
        listed = {i["id"]: i for i in meta["instances"]}
        assert {"pedestrian", "pallet_jack"} <= {i["category"] for i in listed.values()}
        assert set(np.unique(ids)) - {0} <= set(listed)
        for inst_id, inst in listed.items():
            assert inst["visible_pixels"] == int((ids == inst_id).sum())
            # Majority-coverage labels: the mask area tracks the summed cryptomatte coverage.
            if inst["visible_pixels"] > 30:
                assert abs(inst["coverage"] - inst["visible_pixels"]) < 0.25 * inst["visible_pixels"] + 5
        assert rgb.mean() > 20, "render is almost black"


def test_masks_sit_where_the_camera_projects_the_objects(rendered_shard):
    hits = total = 0
    for meta_path in sorted((rendered_shard / "meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        K, w2c = np.array(meta["camera"]["K"]), np.array(meta["camera"]["world_to_camera"])
        objs = {o["instance_id"]: o for o in meta["scene"]["objects"] if o["instance_id"]}
        ids = cv2.imread(str(rendered_shard / meta["ids_file"]), cv2.IMREAD_UNCHANGED)
        for inst in meta["instances"]:
            if inst["visible_pixels"] < 40:
                continue
            o = objs[inst["id"]]
            z = o["params"]["height_m"] * 0.5 if o["kind"] == "pedestrian" else 0.1
            p = w2c @ np.array([o["location"][0], o["location"][1], z, 1.0])
            u, v = (K @ (p[:3] / p[2]))[:2]
            if not (0 <= u < ids.shape[1] and 0 <= v < ids.shape[0]):
                continue  # truncated at the border: the anchor point is off-image
            ys, xs = np.nonzero(ids == inst["id"])
            pad_x, pad_y = 0.25 * (xs.ptp() + 1) + 2, 0.25 * (ys.ptp() + 1) + 2
            total += 1
            hits += xs.min() - pad_x <= u <= xs.max() + pad_x and ys.min() - pad_y <= v <= ys.max() + pad_y
    assert total > 0
    assert hits >= 0.8 * total, f"{hits}/{total} instances project inside their mask box"


def test_same_seed_gives_identical_metadata_and_resume_fills_gaps(rendered_shard, tmp_path):
    again = tmp_path / "again"
    shutil.copytree(rendered_shard, again)
    # Simulate a shard killed after frame 0: frame 1 and the manifest are gone.
    frame = "s000_00001"
    for sub, ext in (("meta", "json"), ("rgb", "png"), ("ids", "png")):
        (again / sub / f"{frame}.{ext}").unlink()
    (again / "manifest.json").unlink()
    res = run_render(tiny_render_cfg(), again)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "kept 1 drawn from the same inputs, rendering 1 (1 missing" in res.stderr
    for sub in ("meta", "rgb", "ids"):
        for f in sorted((rendered_shard / sub).iterdir()):
            assert (again / sub / f.name).read_bytes() == f.read_bytes(), f


def test_other_seed_gives_other_scene(tmp_path):
    cfg = tiny_render_cfg(images_per_shard=1)
    res = run_render(cfg, tmp_path / "s", seed=5)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "s" / "meta" / "s000_00000.json").read_text())
    assert m["seed_key"] == [5, 0, 0] and m["instances"]


def test_amodal_counts_bound_the_visible_masks(rendered_shard):
    """The unoccluded silhouette (mesh projected with the saved camera) contains the rendered mask:
    visible <= amodal up to an edge pixel, visibility and truncation are fractions, and an
    instance nothing hides has visibility close to 1."""
    insts = [i for f in sorted((rendered_shard / "meta").glob("*.json"))
             for i in json.loads(f.read_text())["instances"]]
    assert insts
    for inst in insts:
        assert 0.0 <= inst["visibility"] <= 1.0 and 0.0 <= inst["truncation"] <= 1.0, inst
        if inst["truncation"] < 1.0:
            # a 1 px band along the silhouette is the most the two rasterisations can disagree by
            assert inst["visible_pixels"] <= inst["amodal_pixels"] * 1.15 + 8, inst
    seen = [i for i in insts if i["visible_pixels"] > 50]
    assert max(i["visibility"] for i in seen) > 0.85, seen


def test_min_visibility_drops_and_lists_hidden_instances(rendered_shard):
    from pipeline.coco import annotate_shard

    insts = {(json.loads(f.read_text())["frame"], i["id"]): i for f in (rendered_shard / "meta").glob("*.json")
             for i in json.loads(f.read_text())["instances"]}
    cut = sorted(i["visibility"] for i in insts.values())[len(insts) // 2]  # the median visibility
    coco = annotate_shard(rendered_shard, ["pedestrian", "pallet_jack"], 1, min_visibility=cut)
    kept = coco["annotations"]
    assert kept and all(a["visibility"] >= cut for a in kept)
    dropped = coco["info"]["dropped"]
    assert dropped and all(d["visibility"] < cut or d["reason"] == "min_visible_pixels" for d in dropped)
    assert len(kept) + len(dropped) == len(insts)


def _render_specs(tmp_path, name, specs, **cfg_over):
    out = tmp_path / name
    res = run_render(tiny_render_cfg(**cfg_over), out, specs=specs)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_motion_blur_smears_the_rgb_but_labels_keep_the_mid_exposure_pose_and_noise_leaves_labels(tmp_path):
    """A white box sliding sideways 0.4 m during a 0.2 s exposure: the RGB smear widens by about the
    projected travel, while the majority-coverage mask stays the mid-exposure silhouette. Sensor noise
    changes the RGB only: the instance map is byte-identical."""
    import dataclasses

    from blender.spec import CameraSpec, LightSpec, ObjectSpec, SceneSpec

    box = ObjectSpec("inst_001", "box", "pallet_jack", 1, (0.0, 0.0, 0.0), 0.0,
                     {"size_m": [1.0, 0.5, 0.8], "color": (1.0, 1.0, 1.0)})
    static = SceneSpec("f_static", (160, 120), (0.02, 0.02, 0.02), 0.9, (0.02, 0.02, 0.02),
                       CameraSpec((0.0, -5.0, 1.0), (0.0, 0.0, 0.4), 35.0),
                       [LightSpec("SUN", (0, 0, 10), (0.3, 0, 0), 3.0, (1, 1, 1))], [box])
    moving_box = dataclasses.replace(box, params={**box.params, "velocity_mps": [2.0, 0.0]})
    blurred = dataclasses.replace(static, frame="f_blur", objects=[moving_box], exposure_s=0.2)
    noisy = dataclasses.replace(static, sensor_noise={"sigma": 5.0, "seed": 3})
    a = _render_specs(tmp_path, "a", [static, blurred], resolution_px=[160, 120], samples=32)
    b = _render_specs(tmp_path, "b", [noisy], resolution_px=[160, 120], samples=32)
    m0, ids0, rgb0 = load_frame(a, "f_static")
    m1, ids1, rgb1 = load_frame(a, "f_blur")
    _, ids2, rgb2 = load_frame(b, "f_static")

    mask0, mask1 = ids0 == 1, ids1 == 1
    assert mask0.sum() > 300
    # A known object at a known pose covers the expected pixels: the mask matches the convex hull of
    # the box's corners projected with the saved K and extrinsics (pixel centres inside the hull).
    corners = np.array([[x, y, z, 1.0] for x in (-0.5, 0.5) for y in (-0.25, 0.25) for z in (0.0, 0.8)])
    cam = np.array(m0["camera"]["world_to_camera"]) @ corners.T
    uv = (np.array(m0["camera"]["K"]) @ (cam[:3] / cam[2]))[:2].T
    hull_pts = cv2.convexHull(uv.astype(np.float32))
    ys, xs = np.mgrid[0:ids0.shape[0], 0:ids0.shape[1]]
    hull = np.array([cv2.pointPolygonTest(hull_pts, (float(x) + 0.5, float(y) + 0.5), False) >= 0
                     for x, y in zip(xs.ravel(), ys.ravel())]).reshape(ids0.shape)
    assert abs(mask0.sum() - cv2.contourArea(hull_pts)) < 0.02 * cv2.contourArea(hull_pts)
    assert (mask0 & hull).sum() / (mask0 | hull).sum() > 0.95
    assert abs(m0["instances"][0]["amodal_pixels"] - hull.sum()) < 0.02 * hull.sum()  # amodal rasteriser too
    assert m0["instances"][0]["visibility"] > 0.97  # nothing hides the box
    assert (mask0 & mask1).sum() / (mask0 | mask1).sum() > 0.85
    fx = m0["camera"]["K"][0][0]
    travel_px = fx * 0.4 / 5.0  # ~12 px at 160 px wide
    rows = sorted(set(np.nonzero(mask0)[0]))
    rows = rows[len(rows) // 4: 3 * len(rows) // 4]  # the middle half of the box's rows

    def lit_width(rgb):
        profile = rgb[rows].astype(float).mean(axis=(0, 2))
        bg, fg = np.median(profile[:20]), np.median(rgb[mask0].astype(float))
        return int((profile > bg + 0.1 * (fg - bg)).sum())

    # Above 10 % of the contrast, a linear smear widens the silhouette by 0.8 x the travel.
    widening = lit_width(rgb1) - lit_width(rgb0)
    assert 0.5 * travel_px < widening < 1.2 * travel_px, (widening, travel_px)
    assert abs(int(mask1.sum()) - int(mask0.sum())) < 0.15 * mask0.sum()

    assert np.array_equal(ids2, ids0)
    diff = rgb2.astype(float) - rgb0.astype(float)
    assert 2.0 < diff.std() < 8.0


EXTENT_SCRIPT = """
import json
import numpy as np
import bpy  # noqa: F401  (bmesh needs it first)
from blender.build import BUILDERS, build_distractor, clear_scene
from blender.distractor_spec import DISTRACTOR_KINDS, LOOKALIKE_KINDS, distractor_params
from blender.pallet_jack_spec import pallet_jack_params
from blender.pedestrian_spec import POSES, operator_params, pedestrian_params
from blender.spec import ObjectSpec
from tests.conftest import tiny_render_cfg

out = {}
poses = sorted(set(POSES)) + ["operating", "picking"]
for kind in ("pedestrian", "pallet_jack", *DISTRACTOR_KINDS, *LOOKALIKE_KINDS):
    for i in range(30):
        rng = np.random.default_rng([7, i])
        if kind == "pedestrian":  # every pose, at the far end of its ranges (widest stride, deepest bend)
            params = pedestrian_params(rng, tiny_render_cfg())
            if poses[i % len(poses)] == "operating":  # at a jack's tiller, pushing or pulling
                params = operator_params(rng, tiny_render_cfg(), pallet_jack_params(rng, tiny_render_cfg()), "j")[0]
            elif poses[i % len(poses)] == "picking":  # both hands up on a carton at a rack face (spec._add_picker)
                params.update(pose="picking", arms="grip", grip_m=[[-0.2, 0.45, 1.85], [0.2, 0.45, 1.85]])
                params.pop("carried_box", None)
            elif poses[i % len(poses)] == "carrying":  # hands and carton as drawn with the pose
                while params["pose"] != "carrying":
                    params = pedestrian_params(rng, tiny_render_cfg())
            else:
                params.update(pose=poses[i % len(poses)], arms=["sides", "phone", "hip"][i % 3])
            params.update(swing_deg=30.0, bend_deg=80.0, helmet=params["helmet"] or (1, 1, 1))
        else:
            params = distractor_params(rng, kind) if kind != "pallet_jack" else pallet_jack_params(
                rng, tiny_render_cfg(electric_jack_prob=float(i % 2), jack_load_prob=float(i % 3 == 0)))
            if kind == "pallet_jack":  # every variant, finish, load and the tiller's whole range
                params["tiller_angle_rad"] = [-0.2, 0.5, 1.3][i % 3]
                if params["variant"] == "manual":
                    params["finish"] = ["paint", "galvanised", "stainless"][(i // 2) % 3]
                else:
                    params["platform"] = bool(i % 4 == 1)
                if params["load"]:
                    params["load"]["cargo"] = ["cartons", "wrapped", "empty"][(i // 3) % 3]
                    params["fork_length_m"] = [0.8, 1.5][(i // 3) % 2]
        clear_scene()
        obj = BUILDERS.get(kind, build_distractor)(ObjectSpec("o", kind, None, 0, (0.0, 0.0, 0.0), 0.0, params))
        co = np.array([v.co for part in (obj, *obj.children) for v in part.data.vertices])  # a carried carton too
        r = out.setdefault(kind, {"reach": 0.0, "zmin": [], "variants": []})
        r["reach"] = max(r["reach"], float(np.hypot(co[:, 0], co[:, 1]).max()))
        r["zmin"].append(float(co[:, 2].min()))
        if kind == "pallet_jack":
            r["variants"].append([params["variant"], params["finish"], (params["load"] or {}).get("cargo")])
print("EXTENTS" + json.dumps(out))
"""


def test_every_object_kind_stands_on_the_floor_inside_its_footprint():
    """No floating objects (every part set's lowest point is on the floor, z = 0) and no
    interpenetration (each mesh's horizontal reach fits the footprint disc placement keeps apart),
    over 30 parameter draws per kind."""
    from blender.spec import FOOTPRINT_M

    res = subprocess.run([sys.executable, "-c", EXTENT_SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    extents = json.loads(res.stdout.split("EXTENTS")[-1])
    assert set(extents) == set(FOOTPRINT_M)
    for kind, e in extents.items():
        assert max(abs(z) for z in e["zmin"]) < 1e-4, (kind, e["zmin"])
        assert e["reach"] <= FOOTPRINT_M[kind], (kind, e["reach"])
    variants = {tuple(v) for v in extents["pallet_jack"]["variants"]}
    assert {v[0] for v in variants} == {"manual", "electric"} and {v[1] for v in variants} >= {"paint", "galvanised", "stainless"}
    assert {v[2] for v in variants} == {None, "cartons", "wrapped", "empty"}


def test_render_device_auto_falls_back_to_cpu_and_says_so(rendered_shard):
    """No machine here holds bpy and a GPU at once: the GPU path itself is not run by these tests."""
    manifest = json.loads((rendered_shard / "manifest.json").read_text())
    assert manifest["render"]["device"] == "auto" and manifest["provenance"]["render_device"] == "CPU"
    assert manifest["provenance"]["render_devices"] == ["CPU"]
    # --threads (the job's threads, from the workflow) reached Cycles as a fixed thread count
    assert manifest["provenance"]["render_threads"] == 1
    assert "Cycles: CPU, 1 threads (fixed)" in (rendered_shard.parent / "render.log").read_text()
    code = ("import logging, bpy; logging.basicConfig(level=logging.INFO)\n"
            "from blender.render import configure_render\nfrom tests.conftest import tiny_render_cfg\n"
            "print('device', configure_render(bpy, tiny_render_cfg()))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "device CPU" in res.stdout
    assert "render.device=auto: no GPU backend found (tried OPTIX, CUDA, HIP, ONEAPI, METAL): rendering on CPU" \
        in res.stderr


class FakeDevice:
    def __init__(self, id, type, name):
        self.id, self.type, self.name, self.use = id, type, name, True


class FakeCyclesPrefs:
    """The part of Cycles' add-on preferences gpu_devices() uses, as bpy 5.0.1 has it: `devices` holds
    the entries of every backend (a CUDA card is listed under CUDA and under OPTIX, the CPU too);
    get_devices_for_type(t) lists the entries of backend t; setting an unbuilt backend raises TypeError."""

    def __init__(self, devices, built=("CUDA", "OPTIX", "HIP", "ONEAPI")):
        self.devices, self.built, self._type = devices, built, "NONE"

    @property
    def compute_device_type(self):
        return self._type

    @compute_device_type.setter
    def compute_device_type(self, value):
        if value not in self.built:
            raise TypeError(f"enum {value!r} not found")
        self._type = value

    def get_devices_for_type(self, compute_device_type):
        return [d for d in self.devices if d.type in (compute_device_type, "CPU")]


def fake_bpy(prefs):
    from types import SimpleNamespace

    addons = {"cycles": SimpleNamespace(preferences=prefs)}
    return SimpleNamespace(context=SimpleNamespace(preferences=SimpleNamespace(addons=addons)))


def test_gpu_devices_are_chosen_per_backend_and_only_the_chosen_backends_are_enabled():
    from blender.render import gpu_devices

    # A CUDA card that OptiX does not list (e.g. a driver without OptiX): OPTIX has no device of its
    # own, so CUDA is chosen; before, any non-CPU entry in `devices` made OPTIX look usable.
    devices = [FakeDevice("CUDA_0", "CUDA", "NVIDIA A100"), FakeDevice("CPU", "CPU", "AMD EPYC")]
    prefs = FakeCyclesPrefs(devices)
    assert gpu_devices(fake_bpy(prefs)) == ("CUDA", ["NVIDIA A100"])
    assert prefs.compute_device_type == "CUDA"
    assert [d.use for d in devices] == [True, False]  # the CPU does not join a GPU render
    # Listed under both: OptiX first, and its entry only (not the CUDA twin, not the CPU).
    devices = [FakeDevice("CUDA_0", "CUDA", "NVIDIA H100"), FakeDevice("CUDA_0_OptiX", "OPTIX", "NVIDIA H100"),
               FakeDevice("CPU", "CPU", "x")]
    assert gpu_devices(fake_bpy(FakeCyclesPrefs(devices))) == ("OPTIX", ["NVIDIA H100"])
    assert [d.use for d in devices] == [False, True, False]
    # Nothing but the CPU (or no GPU backend built at all): None, and the caller renders on the CPU.
    assert gpu_devices(fake_bpy(FakeCyclesPrefs([FakeDevice("CPU", "CPU", "x")]))) is None
    assert gpu_devices(fake_bpy(FakeCyclesPrefs(devices, built=()))) is None


def test_kernel_cache_dir_sets_the_gpu_caches_unless_the_environment_does(tmp_path, monkeypatch):
    from blender.render import set_kernel_cache

    for key in ("CUDA_CACHE_PATH", "OPTIX_CACHE_PATH", "CUDA_CACHE_MAXSIZE"):
        monkeypatch.delenv(key, raising=False)
    assert set_kernel_cache("") == {}
    monkeypatch.setenv("OPTIX_CACHE_PATH", "/scratch/optix")  # a site's own setting wins
    monkeypatch.setenv("NODE_SCRATCH", str(tmp_path))
    chosen = set_kernel_cache("$NODE_SCRATCH/kernels")
    assert chosen == {"CUDA_CACHE_PATH": str(tmp_path / "kernels/cuda"), "CUDA_CACHE_MAXSIZE": str(4 * 2**30)}
    assert (tmp_path / "kernels/cuda").is_dir()
    import os

    assert os.environ["CUDA_CACHE_PATH"] == str(tmp_path / "kernels/cuda") and os.environ["OPTIX_CACHE_PATH"] == "/scratch/optix"


PORTAL_SCRIPT = """
import json
import bpy  # noqa: F401
import numpy as np
from mathutils import Vector
from blender.build import build_scene
from blender.spec import sample_scene
from tests.conftest import tiny_render_cfg
cfg = tiny_render_cfg(skylight_prob=1.0, windows_per_wall=[2, 2])
spec = sample_scene(np.random.default_rng([0, 0, 0]), cfg, "p")
out = {"skylights": spec.shell["skylights"], "windows": spec.shell["windows"], "height": spec.shell["height_m"],
       "sill": spec.shell["window_sill_m"], "window_height": spec.shell["window_height_m"]}
for portals in (False, True):
    build_scene(spec, portals)
    lights = [o for o in bpy.data.objects if o.type == "LIGHT" and o.data.cycles.is_portal]
    out[str(portals)] = [{"loc": list(o.location), "facing": list(o.matrix_world.to_3x3() @ Vector((0, 0, -1))),
                          "x": list(o.matrix_world.to_3x3() @ Vector((1, 0, 0))),
                          "y": list(o.matrix_world.to_3x3() @ Vector((0, 1, 0))),
                          "size": [o.data.size, o.data.size_y], "energy": o.data.energy} for o in lights]
print("PORTALS" + json.dumps(out))
"""


def test_light_portals_fill_the_openings_and_face_into_the_hall():
    from blender.spec import HALL_M

    res = subprocess.run([sys.executable, "-c", PORTAL_SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.split("PORTALS")[-1])
    sky, windows = out["skylights"], out["windows"]
    assert out["False"] == [] and sky and len(windows) == 8
    portals = out["True"]
    # one per skylight row and one per wall with windows
    assert len(portals) == len({(y, sy) for _, y, _, sy in sky}) + len({w[0] for w in windows})
    for x, y, sx, sy in sky:  # every skylight lies inside a roof portal
        assert any(abs(p["loc"][1] - y) < 1e-5 and abs(p["size"][1] - sy) < 1e-5
                   and abs(p["loc"][0] - x) <= (p["size"][0] - sx) / 2 + 1e-5 for p in portals), (x, y)
    for p in portals:
        loc, facing = np.array(p["loc"]), np.array(p["facing"])
        assert abs(np.linalg.norm(facing) - 1) < 1e-6
        if abs(facing[2]) < 1e-6:  # a window: in a wall, facing along the wall's inward normal
            axis = int(np.argmax(np.abs(loc[:2])))
            assert abs(abs(loc[axis]) - HALL_M / 2) < 1e-5 and 0 < loc[2] < out["height"], p
            inward = np.zeros(3)
            inward[axis] = -np.sign(loc[axis])
            # size along the wall, size_y (local Y) up: the rectangle covers the wall's windows (sill to top)
            along = np.zeros(3)
            along[1 - axis] = 1.0
            assert np.allclose(p["y"], [0, 0, 1], atol=1e-6) and abs(abs(np.dot(p["x"], along)) - 1) < 1e-6, p
            side = {(0, 1): "E", (0, -1): "W", (1, 1): "N", (1, -1): "S"}[axis, int(np.sign(loc[axis]))]
            assert abs(p["size"][1] - out["window_height"]) < 1e-5 and abs(loc[2] - p["size"][1] / 2 - out["sill"]) < 1e-5
            for wall, u, width in windows:
                if wall == side:
                    assert abs(u - loc[1 - axis]) <= (p["size"][0] - width) / 2 + 1e-5, (p, u, width)
        else:  # a skylight: in the roof, facing down
            assert abs(loc[2] - out["height"]) < 1e-5, p
            inward = np.array([0.0, 0.0, -1.0])
        assert facing @ inward > 0.999, p


def test_lamps_in_view_are_seen_and_clip_while_labels_stay(tmp_path):
    """A camera looking up past a box at an area lamp (and a spot whose cone does not reach the camera:
    Cycles shows a spot only inside its cone, as a high-bay seen from outside its beam): with
    render.lamps_visible the area lamp's emitter appears, clipped at white (Cycles hides lights from
    camera rays unless told), and nothing else changes: same lighting elsewhere, identical instance map."""
    import dataclasses

    from blender.spec import CameraSpec, LightSpec, ObjectSpec, SceneSpec

    box = ObjectSpec("inst_001", "box", "pallet_jack", 1, (0.0, 0.0, 0.0), 0.0,
                     {"size_m": [1.0, 0.5, 0.8], "color": (0.6, 0.6, 0.6)})
    lamps = [LightSpec("SUN", (0, 0, 10), (0.3, 0, 0), 1.0, (1, 1, 1)),
             LightSpec("AREA", (-1.0, 2.0, 4.0), (0.0, 0.0, 0.0), 300.0, (1, 1, 1), 0.8),
             LightSpec("SPOT", (1.5, 2.0, 4.0), (0.0, 0.0, 0.0), 300.0, (1, 1, 1), 0.25)]
    hidden = SceneSpec("f_lamps", (160, 120), (0.3, 0.3, 0.3), 0.9, (0.4, 0.4, 0.4),
                       CameraSpec((0.0, -4.0, 0.8), (0.0, 2.0, 2.5), 24.0), lamps, [box])
    seen = dataclasses.replace(hidden, lamps_visible=True)
    a = _render_specs(tmp_path, "hidden", [hidden], resolution_px=[160, 120], samples=16, denoise=False)
    b = _render_specs(tmp_path, "seen", [seen], resolution_px=[160, 120], samples=16, denoise=False)
    _, ids_a, rgb_a = load_frame(a, "f_lamps")
    _, ids_b, rgb_b = load_frame(b, "f_lamps")
    assert (ids_a == 1).sum() > 100 and np.array_equal(ids_a, ids_b)
    white_a, white_b = (rgb_a >= 254).all(axis=2), (rgb_b >= 254).all(axis=2)
    assert white_a.sum() == 0 and white_b.sum() >= 20, (white_a.sum(), white_b.sum())
    # the lamps are all that changed: away from them (3 px around the clipped pixels) the frames agree
    # to Cycles' noise at 16 samples (same seed: the paths differ only where camera rays meet a lamp)
    near = cv2.dilate(white_b.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    diff = np.abs(rgb_a.astype(int) - rgb_b.astype(int))[~near]
    assert np.median(diff) <= 1 and np.mean(diff) < 3
