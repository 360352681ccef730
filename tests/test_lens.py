"""Wide CCTV lenses (blender/lens.py) and camera rigs: Cycles renders known 3-D points where the label
projection puts them; rigs draw cameras within their ranges; labels of a fisheye frame agree."""
import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from blender.lens import PINHOLE_BELOW, _mapping, _theta, lens_model
from pipeline.config import ConfigError, load_config, validate
from tests.conftest import REPO, run_render, tiny_render_cfg

# Spheres of 6 cm at random points in front of a camera with the real build_camera (the lens as the
# renderer gets it), rendered with Cycles; their cryptomatte masks' centroids against the projection
# the labels use (blender.keypoints.project with blender.render.camera_matrices).
SPHERES = """
import json, sys
import numpy as np
import bpy
from pathlib import Path
from blender.build import build_camera
from blender.keypoints import project
from blender.labels import instance_map_from_exr
from blender.lens import lens_model
from blender.render import camera_matrices
from blender.spec import CameraSpec

W, H = 640, 480
out = {}
for hfov, d in json.loads(sys.argv[1]):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.samples = 4
    sc.cycles.device = "CPU"
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = W, H, 100
    lens = lens_model(hfov, d, W, H)
    cam = build_camera(CameraSpec(location=(0.3, -8.0, 4.0), look_at=(0.5, 0.0, 1.0), focal_mm=lens["focal_mm"],
                                  sensor_width_mm=lens["sensor_width_mm"], lens=lens))
    rng = np.random.default_rng(1)
    points = rng.uniform((-10, -6, 0), (10, 8, 3), size=(60, 3))
    for i, p in enumerate(points):
        bpy.ops.mesh.primitive_uv_sphere_add(radius=0.06, segments=24, ring_count=12, location=tuple(p))
        bpy.context.object.name = f"s{i}"
    layer = sc.view_layers[0]
    layer.use_pass_cryptomatte_object = True
    layer.pass_cryptomatte_depth = 4
    sc.render.image_settings.media_type = "MULTI_LAYER_IMAGE"
    sc.render.image_settings.color_depth = "32"
    exr = Path(sys.argv[2]) / f"lens_{hfov}_{d}.exr"
    sc.render.filepath = str(exr)
    bpy.ops.render.render(write_still=True)
    ids, _ = instance_map_from_exr(exr, {f"s{i}": i + 1 for i in range(len(points))})
    uv, front = project(points, camera_matrices(cam, W, H))
    rows = []
    for i in range(len(points)):
        ys, xs = np.nonzero(ids == i + 1)
        rows.append([float(uv[i, 0]), float(uv[i, 1]), bool(front[i]), int(len(xs)),
                     float(xs.mean() + 0.5) if len(xs) else -1.0, float(ys.mean() + 0.5) if len(xs) else -1.0,
                     bool(len(xs) and (xs.min() == 0 or ys.min() == 0 or xs.max() == W - 1 or ys.max() == H - 1))])
    out[f"{hfov},{d}"] = {"model": lens["model"], "rows": rows}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_cycles_renders_known_points_where_the_labels_project_them(tmp_path):
    lenses = [(100.0, 0.6), (115.0, 1.0), (60.0, 0.3), (70.0, 0.0)]
    res = subprocess.run([sys.executable, "-c", SPHERES, json.dumps(lenses), str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.split("RESULT", 1)[1])
    for key, r in result.items():
        rows = np.array([row[:6] for row in r["rows"]], float)
        on_border = np.array([row[6] for row in r["rows"]])
        uv, front, n, centroid = rows[:, :2], rows[:, 2] > 0, rows[:, 3], rows[:, 4:6]
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < 640) & (uv[:, 1] >= 0) & (uv[:, 1] < 480)
        # nothing renders where the projection says "not in the image" (a sphere there may still
        # touch the border with its edge: allow its radius)
        assert (n[~inside & ~on_border] == 0).all(), key
        # isolated spheres seen whole: no other sphere's projection within 20 px (an overlap shifts
        # the centroid), at least 12 pixels (a centroid of a few pixels is quantised to ~0.3 px)
        dist = np.hypot(*(uv[:, None, :] - uv[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(dist, np.inf)
        use = inside & ~on_border & (n >= 12) & (dist.min(axis=1) > 20)
        assert use.sum() >= 10, (key, int(use.sum()))
        err = np.hypot(*(centroid[use] - uv[use]).T)
        # < 0.5 px: the bound; a sphere's silhouette centroid sits on its centre's projection to
        # second order in radius / distance (< 0.05 px here), the rest is pixel quantisation
        assert err.max() < 0.5, (key, r["model"], err.round(2).tolist())
        assert r["model"] == ("pinhole" if key.endswith(",0.0") else "fisheye_polynomial")


def test_lens_polynomial_follows_the_drawn_mapping_and_is_monotone():
    for hfov in (50.0, 80.0, 100.0, 120.0):
        for d in (0.1, 0.5, 1.0):
            lens = lens_model(hfov, d, 640, 480)
            assert lens["model"] == "fisheye_polynomial"
            half_w = lens["sensor_width_mm"] / 2
            # the image's left/right edge is at hfov / 2 (the fit holds it there)
            assert abs(math.degrees(_theta(lens, np.array(half_w))) * 2 - hfov) < 0.01
            # between centre and corner the polynomial follows r = f ((1-d) tan + d theta): to 1.5 % of the
            # corner radius at worst (nearly rectilinear, 120 deg: tan cannot be fitted by four powers of r),
            # to 0.05 % (0.2 px at 640 px) where the lens is half way to a fisheye or more
            r = np.linspace(0.5, half_w * math.hypot(1, 0.75), 200)
            theta = _theta(lens, r)
            assert np.all(np.diff(theta) > 0)
            r_drawn = lens["focal_mm"] * _mapping(theta, d)
            assert np.abs(r_drawn - r).max() < (0.0005 if d >= 0.5 and hfov <= 100 else 0.015) * r.max(), (hfov, d)
    assert lens_model(90, PINHOLE_BELOW / 2, 640, 480)["model"] == "pinhole"
    assert abs(lens_model(90, 0.0, 640, 480)["focal_mm"] - 18.0) < 1e-6  # tan 45 deg: f = half the sensor
    with pytest.raises(ValueError, match="field of view"):
        lens_model(175, 0.5, 640, 480)
    with pytest.raises(ValueError, match="90 deg"):
        lens_model(160, 1.0, 640, 480)


def _pitch(camera):
    dz = camera.location[2] - camera.look_at[2]
    return math.degrees(math.atan2(dz, math.hypot(camera.look_at[0] - camera.location[0],
                                                  camera.look_at[1] - camera.location[1])))


def test_default_rigs_draw_cameras_within_their_ranges_inside_the_hall():
    from blender.spec import HALL_M, sample_scene

    render = load_config(REPO / "configs" / "default.yaml")["render"]
    rigs = render["camera_rigs"]
    seen = {}
    for i in range(300):
        spec = sample_scene(np.random.default_rng([0, 0, i]), render, f"{i:06d}")
        cam = spec.camera
        rig = rigs[cam.rig]
        seen[cam.rig] = seen.get(cam.rig, 0) + 1
        assert max(abs(cam.location[0]), abs(cam.location[1])) <= HALL_M / 2 - 0.5
        assert rig["height_m"][0] <= cam.location[2] <= rig["height_m"][1]
        if rig["pitch_deg"]:
            assert rig["pitch_deg"][0] - 1e-3 <= _pitch(cam) <= rig["pitch_deg"][1] + 1e-3
        assert rig["hfov_deg"][0] <= cam.lens["hfov_deg"] <= rig["hfov_deg"][1]
        assert rig["distortion"][0] <= cam.lens["distortion"] <= rig["distortion"][1]
        if rig["mount"] == "wall":  # on a wall: 0.5 m inside the hall on one side
            assert abs(max(abs(cam.location[0]), abs(cam.location[1])) - (HALL_M / 2 - 0.5)) < 1e-3
        aims = [o for o in spec.objects if o.instance_id and not o.params.get("crowd")]  # never at an ignore region
        if rig["aim"] == "objects" and aims:
            near = min(math.hypot(o.location[0] - cam.look_at[0], o.location[1] - cam.look_at[1]) for o in aims)
            assert near <= 1.5 * math.sqrt(2) + 1e-3
    # every rig drawn, roughly in its share (binomial: 4 standard deviations)
    total = sum(r["weight"] for r in rigs.values())
    for name, rig in rigs.items():
        p = rig["weight"] / total
        assert abs(seen.get(name, 0) - 300 * p) <= 4 * math.sqrt(300 * p * (1 - p)), (name, seen)


def test_rig_config_errors_name_the_rig_and_key():
    def cfg(rig):
        return {"name": "t", "seed": 0, "classes": ["pedestrian", "pallet_jack"], "model": {"weights": "none"},
                "render": {"camera_rigs": {"cctv": rig}}}

    with pytest.raises(ConfigError, match=r"render.camera_rigs.cctv.height_m: \[3.0, 9.0\] must lie"):
        validate(cfg({"height_m": [3.0, 9.0]}))
    with pytest.raises(ConfigError, match=r"render.camera_rigs.cctv.hfov_deg: min 100 > max 80"):
        validate(cfg({"hfov_deg": [100, 80]}))
    with pytest.raises(ConfigError, match=r"render.camera_rigs.cctv.pitch_deg: give \[min, max\]"):
        validate(cfg({"pitch_deg": [30]}))
    portrait = cfg({"hfov_deg": [100, 120], "distortion": [0.9, 1.0]})  # 3:4: corners 1.67x the side edge
    portrait["render"]["resolution_px"] = [480, 640]
    with pytest.raises(ConfigError, match=r"render.camera_rigs.cctv: hfov_deg \[100, 120\] with distortion.*90 deg"):
        validate(portrait)
    # a wall rig whose pitch range its geometry cannot reach: refused before any render, with the remedy
    with pytest.raises(ConfigError, match=r"cctv: 40 of 40 test scenes found no camera position .*widen pitch_deg"):
        validate(cfg({"mount": "wall", "height_m": [3.0, 4.0], "pitch_deg": [30, 60]}))
    validate(cfg({"mount": "wall", "height_m": [3.0, 4.0], "pitch_deg": []}))
    with pytest.raises(ConfigError, match="render.camera_rigs: every rig has weight 0"):
        validate(cfg({"weight": 0}))
    with pytest.raises(ConfigError, match="unknown key render.camera_rigs.cctv.fov"):
        validate(cfg({"fov": [1, 2]}))


@pytest.mark.slow
def test_a_fisheye_frame_keeps_keypoints_and_boxes_on_the_rendered_masks(tmp_path):
    """Every visible keypoint of a person seen through a strong fisheye lies on (or beside) the person's
    rendered mask, and the amodal extent bounds the visible mask: labels and render share the lens."""
    rig = {"wide": {"height_m": [2.5, 3.0], "pitch_deg": [20, 30], "hfov_deg": [115, 115], "distortion": [1.0, 1.0]}}
    cfg = tiny_render_cfg(camera_rigs=rig, resolution_px=[320, 240], pedestrians_per_image=[3, 3],
                          object_area_m=3.0)
    out = tmp_path / "shard_000"
    res = run_render(cfg, out)
    assert res.returncode == 0, res.stderr[-3000:]
    on = total = 0
    for meta_path in sorted((out / "meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        assert meta["camera"]["lens"]["model"] == "fisheye_polynomial"
        assert meta["scene"]["camera"]["rig"] == "wide"
        ids = cv2.imread(str(out / meta["ids_file"]), cv2.IMREAD_UNCHANGED)
        for inst in meta["instances"]:
            assert inst["visible_pixels"] <= inst["amodal_pixels"] + 2 * math.sqrt(inst["amodal_pixels"]) + 4
            kps = inst.get("keypoints")
            if not kps or inst["visible_pixels"] < 200:
                continue
            near = cv2.dilate((ids == inst["id"]).astype(np.uint8), np.ones((5, 5), np.uint8))  # 2 px
            for x, y, v in np.reshape(kps, (-1, 3)):
                if v == 2:
                    total += 1
                    on += bool(near[int(y), int(x)])
    assert total >= 10, total
    assert on >= 0.95 * total, f"{on}/{total} visible keypoints on their person's mask"


def test_aisle_layouts_and_people_walking_side_by_side():
    """render.aisles_prob / group_prob: rack rows of contiguous bays with aisles between their faces,
    people and jacks clear of the racks (their footprint against the racks' rectangles), most of them
    in the aisles facing along them; companions beside their walking leader, same heading, moving with it."""
    from blender.spec import FOOTPRINT_M, RACK_DEPTH_M, sample_scene

    render = dict(load_config(REPO / "configs" / "default.yaml")["render"], aisles_prob=1.0, group_prob=1.0,
                  motion_blur_prob=1.0, picking_prob=0.0)  # pickers at the racks: tests/test_site_layout.py
    in_aisle = labelled = companions = 0
    for i in range(150):
        spec = sample_scene(np.random.default_rng([0, 0, i]), render, f"{i:06d}")
        racks = [o for o in spec.objects if o.name.startswith("ctx_row")]
        rows = {}
        for o in racks:
            rows.setdefault(o.location[1], []).append(o)
        assert 2 <= len(rows) <= 4 and all(3 <= len(r) <= 5 for r in rows.values()), spec.frame
        for row in rows.values():  # bays end to end, facing the aisles (yaw 0: their depth along y)
            row.sort(key=lambda o: o.location[0])
            assert all(o.yaw_rad == 0.0 for o in row)
            for a, b in zip(row, row[1:]):
                assert abs(b.location[0] - a.location[0] - (a.params["width_m"] + b.params["width_m"]) / 2) < 1e-3
        ys = sorted(rows)
        gaps = np.diff(ys) - RACK_DEPTH_M
        assert np.all((gaps > 2.8 - 1e-3) & (gaps < 4.0 + 1e-3)) and np.ptp(gaps) < 1e-3
        by_name = {o.name: o for o in spec.objects}
        for o in spec.objects:
            if not o.instance_id or o.params.get("drives"):  # a forklift's driver sits inside its footprint
                continue
            labelled += 1
            r = FOOTPRINT_M[o.kind]
            for k in racks:  # distance from the footprint's centre to the bay's rectangle
                dx = max(abs(o.location[0] - k.location[0]) - k.params["width_m"] / 2, 0.0)
                dy = max(abs(o.location[1] - k.location[1]) - RACK_DEPTH_M / 2, 0.0)
                assert math.hypot(dx, dy) >= r - 0.06, (spec.frame, o.name, k.name)  # disc chain: 6 cm scallops
            x0 = min(k.location[0] - k.params["width_m"] / 2 for k in racks)
            x1 = max(k.location[0] + k.params["width_m"] / 2 for k in racks)
            if o.params.get("in_aisle"):  # between two rows, facing along them
                in_aisle += 1
                assert x0 <= o.location[0] <= x1 and ys[0] < o.location[1] < ys[-1], (spec.frame, o.name)
                assert abs(math.sin(o.yaw_rad)) > math.cos(0.26), (spec.frame, o.name)
            lead = by_name.get(o.params.get("walks_with", ""))
            if lead is not None:
                companions += 1
                d = math.hypot(o.location[0] - lead.location[0], o.location[1] - lead.location[1])
                assert 0.65 - 1e-3 <= d <= math.hypot(0.9, 0.3) + 1e-3
                assert abs(math.remainder(o.yaw_rad - lead.yaw_rad, 2 * math.pi)) <= 0.1 + 1e-4
                assert o.params["pose"] == lead.params["pose"] == "walking"
                assert o.params["velocity_mps"] == lead.params["velocity_mps"]
        assert sum(o.category == "pedestrian" and "drives" not in o.params  # drivers: on top, with their forklifts
                   for o in spec.objects) <= render["pedestrians_per_image"][1]
    assert in_aisle >= 0.5 * labelled and companions >= 20, (in_aisle, labelled, companions)
    off = sample_scene(np.random.default_rng([0, 0, 0]), dict(render, aisles_prob=0.0, group_prob=0.0), "f")
    assert not any(o.name.startswith("ctx_row") or "walks_with" in o.params for o in off.objects)
