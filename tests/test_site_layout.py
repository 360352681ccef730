"""A working site's layout (#25): people picking at rack slots, drivers seated in forklift cabs and
labelled as crowd regions, loading docks and doors cut into the walls, vests on hooks and mannequins."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from blender.site_spec import FORKLIFT_FLOOR_Z, FORKLIFT_ROOF_Z, FORKLIFT_SEAT, PICK_Z_M, wall_pieces
from blender.spec import FOOTPRINT_M, HALL_M, RACK_DEPTH_M, sample_scene
from pipeline.config import load_config
from tests.conftest import REPO, load_frame, run_render, tiny_render_cfg

DEFAULT = load_config(REPO / "configs" / "default.yaml")["render"]


def _pickers(render: dict, n: int = 120) -> list[tuple]:
    out = []
    for i in range(n):
        spec = sample_scene(np.random.default_rng([5, 0, i]), render, f"{i:06d}")
        out += [(spec, o) for o in spec.objects if o.params.get("pose") == "picking"]
    return out


def test_pickers_stand_in_an_aisle_facing_a_loaded_slot_with_their_hands_at_its_carton():
    """Each picker: 0.3-0.45 m from the face of the bay it picks from, facing it; both grip points
    (body frame, turned into the hall) on the load's front of a loaded slot of the second beam level,
    centred on the slot, at 1.69-1.84 m (at most 1.69 + 0.5 (h - 1.55): in reach); clear of every
    footprint but the racks'. With picking on nobody reaches for nothing; picking_prob 0 picks nobody."""
    render = dict(DEFAULT, aisles_prob=1.0, picking_prob=0.5)
    pickers = _pickers(render)
    assert len(pickers) >= 40, len(pickers)
    for spec, o in pickers:
        bay = next(b for b in spec.objects if b.name == o.params["picks"])
        side = 1.0 if bay.location[1] > o.location[1] else -1.0
        face = bay.location[1] - side * RACK_DEPTH_M / 2
        assert 0.3 - 1e-3 <= side * (face - o.location[1]) <= 0.45 + 1e-3, (spec.frame, o.name)
        assert math.cos(o.yaw_rad - (0.0 if side > 0 else math.pi)) >= math.cos(0.12) - 1e-6
        c, s = math.cos(o.yaw_rad), math.sin(o.yaw_rad)
        grips = [(o.location[0] + gx * c - gy * s, o.location[1] + gx * s + gy * c, gz) for gx, gy, gz in o.params["grip_m"]]
        mid_x = np.mean([g[0] for g in grips])
        k = 0 if mid_x < bay.location[0] else 1
        assert bay.params["slots"][2 + k] is not None, (spec.frame, o.name)  # level 1, that half: loaded
        assert abs(mid_x - (bay.location[0] + (k - 0.5) * bay.params["width_m"] / 2)) < 1e-3
        assert o.params["grip_m"][0][0] < o.params["grip_m"][1][0]  # left hand (body -x) first
        for gx, gy, gz in grips:
            # on the load, 4.5 cm over the level-1 pallet deck at least, and within the person's reach
            reach = PICK_Z_M[0] + 0.5 * (o.params["height_m"] - 1.55)
            assert abs(gy - (face + side * 0.02)) < 1e-3 and PICK_Z_M[0] - 1e-6 <= gz <= min(PICK_Z_M[1], reach) + 1e-6
        for other in spec.objects:
            if other is not o and other.kind != "rack" and other.params.get("drives") is None:
                d = math.hypot(other.location[0] - o.location[0], other.location[1] - o.location[1])
                assert d >= FOOTPRINT_M[other.kind] + FOOTPRINT_M["pedestrian"] - 1e-6, (spec.frame, o.name, other.name)
    for r in (render, dict(render, aisles_prob=0.5)):  # with picking on, a raised arm always reaches a slot
        assert not [o for i in range(60) for o in sample_scene(np.random.default_rng([5, 0, i]), r, "f").objects
                    if o.params.get("pose") == "reaching"]
    assert not _pickers(dict(render, picking_prob=0.0), 40) and not _pickers(dict(DEFAULT, aisles_prob=0.0), 40)


def test_forklift_drivers_sit_in_the_cab_labelled_as_the_config_says():
    """A driver per forklift (forklift_driver_prob 1) at the seat (the forklift's frame turned by its
    yaw), facing its forks; `ignore` marks a pedestrian crowd region, `pedestrian` a plain person,
    `none` unlabelled scenery; instance ids stay unique; prob 0 seats nobody."""
    for label in ("ignore", "pedestrian", "none"):
        render = dict(DEFAULT, forklift_driver_prob=1.0, forklift_driver_label=label)
        n = 0
        for i in range(40):
            spec = sample_scene(np.random.default_rng([6, 0, i]), render, "f")
            ids = [o.instance_id for o in spec.objects if o.instance_id]
            assert len(ids) == len(set(ids))
            forklifts = {o.name: o for o in spec.objects if o.kind == "forklift"}
            drivers = [o for o in spec.objects if o.params.get("pose") == "seated"]
            assert len(drivers) == len(forklifts)
            for d in drivers:
                f = forklifts[d.params["drives"]]
                c, s = math.cos(f.yaw_rad), math.sin(f.yaw_rad)
                sx, sy, sz = FORKLIFT_SEAT  # the seat in the forklift's frame, turned by its yaw
                assert d.location == pytest.approx((f.location[0] + sx * c - sy * s, f.location[1] + sx * s + sy * c, sz),
                                                   abs=1e-3)
                assert d.location[:2] != pytest.approx(f.location[:2], abs=0.3)  # behind the forklift's origin
                assert math.cos(d.yaw_rad - f.yaw_rad - math.pi) == pytest.approx(1.0)
                assert (d.instance_id > 0) == (label != "none") and bool(d.params.get("crowd")) == (label == "ignore")
                assert d.category == (None if label == "none" else "pedestrian")
                n += 1
        assert n >= 10
    spec = sample_scene(np.random.default_rng([6, 0, 0]), dict(DEFAULT, forklift_driver_prob=0.0), "f")
    assert not any(o.params.get("pose") == "seated" for o in spec.objects)


def test_doors_are_cut_out_of_the_walls_clear_of_windows_and_each_other():
    """Wall boxes cover the wall minus its openings exactly (areas), doors sit inside their wall 2.5 m from
    its corners, 0.6 m clear of windows and other doors, 1.2 m under the ceiling; doors_prob 0 adds none."""
    render = dict(DEFAULT, doors_prob=1.0)
    kinds = set()
    for i in range(60):
        shell = sample_scene(np.random.default_rng([8, 0, i]), render, "f").shell
        doors, height = shell["doors"], shell["height_m"]
        for wall in "NSEW":
            pieces = wall_pieces(shell, wall, height)
            mine = [d for d in doors if d["wall"] == wall]
            wins = [w for side, _, w in shell["windows"] if side == wall]
            holes = sum(d["width_m"] * d["height_m"] for d in mine) + sum(wins) * shell["window_height_m"]
            area = sum((b - a) * (z1 - z0) for (a, b), (z0, z1) in pieces)
            assert area == pytest.approx(HALL_M * height - holes, abs=1e-6), (i, wall)
            openings = [(d["u"], d["width_m"], True) for d in mine]
            openings += [(u, w, False) for side, u, w in shell["windows"] if side == wall]
            for k, (u, w, door) in enumerate(openings):  # a door 0.6 m clear of every other opening on its wall
                for u2, w2, _ in openings[k + 1:] if door else []:
                    assert abs(u - u2) - (w + w2) / 2 >= 0.6 - 1e-9, (i, wall, u, u2)
        for d in doors:
            kinds.add((d["kind"], d["open_frac"] > 0))
            # 2.5 m from the corners: a leveller (2.4 m deep) never meets the next wall's
            assert abs(d["u"]) + d["width_m"] / 2 <= HALL_M / 2 - 2.5 + 1e-9 and d["height_m"] <= height - 1.2 + 1e-9
    assert kinds >= {("dock", True), ("dock", False), ("personnel", False)}
    assert "doors" not in sample_scene(np.random.default_rng([8, 0, 0]), dict(DEFAULT, doors_prob=0.0), "f").shell


BODY_SCRIPT = """
import json, math
import numpy as np
import bpy  # noqa: F401
from mathutils import Vector
from blender.build import build_scene
from blender.pedestrian_body import REGIONS, body_mesh
from blender.spec import sample_scene
from pipeline.config import load_config

render = dict(load_config("configs/default.yaml")["render"], aisles_prob=1.0, picking_prob=1.0,
              forklift_driver_prob=1.0, lookalike_prob=0.0, doors_prob=1.0, distractors_per_image=[4, 6])
out = {"pick": [], "pick_z": [], "wheel": [], "feet": [], "head": []}
for i in range(6):
    spec = sample_scene(np.random.default_rng([4, 0, i]), render, "f")
    build_scene(spec)
    for o in spec.objects:
        pose = o.params.get("pose")
        if pose not in ("picking", "seated"):
            continue
        obj = bpy.data.objects[o.name]
        region = body_mesh(o.params)["region"]
        co = np.array([obj.matrix_world @ v.co for v in obj.data.vertices])[:len(region)]
        hand = co[region == REGIONS.index("hand")]
        local_x = np.array([(obj.matrix_world.inverted() @ Vector(p)).x for p in hand])
        local_x -= local_x.mean()  # the two hands either side of their midpoint (a picker steps sideways)
        m = obj.matrix_world
        for side, target in zip((local_x < 0, local_x > 0), o.params["grip_m"]):
            centre = hand[side].mean(axis=0)
            out["pick" if pose == "picking" else "wheel"].append(float(np.linalg.norm(centre - np.array(m @ Vector(target)))))
            if pose == "picking":
                out["pick_z"].append(float(centre[2]))
        if pose == "seated":
            out["feet"].append(float(co[:, 2].min()))
            out["head"].append(float(co[:, 2].max()))
print("BODY" + json.dumps(out))
"""


def test_pickers_hands_reach_their_carton_and_drivers_hold_the_wheel_in_the_cab():
    """Built scenes (bpy, anny bodies). A picker's hand centres within 6 cm of the points the spec names
    (a hand is ~18 cm long: its centre that close puts the palm on the load) and at 1.64 m or higher (the
    level-1 deck top: on the cartons, not the pallet). A driver's hand centres within 5 cm of the wheel
    rim at 9 and 3 o'clock, its feet within 7 cm of the footwell's floor plate (shin lengths differ; the
    seat is one height), its head (helmet included, < 12 cm) under the guard roof."""
    res = subprocess.run([sys.executable, "-c", BODY_SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.split("BODY")[-1])
    assert len(got["pick"]) >= 4 and max(got["pick"]) < 0.06 and min(got["pick_z"]) >= 1.64, got
    assert len(got["wheel"]) >= 4 and max(got["wheel"]) < 0.05, got["wheel"]
    assert max(abs(z - FORKLIFT_FLOOR_Z) for z in got["feet"]) < 0.07, got["feet"]
    assert max(got["head"]) + 0.12 < FORKLIFT_ROOF_Z, got["head"]


def test_a_seated_driver_is_a_crowd_region_that_cocoeval_ignores(tmp_path):
    """A real render (bpy, forklift with a driver, label ignore, docks and look-alikes on) annotated with
    pycocotools: the driver is a pedestrian annotation with iscrowd 1 over its whole projection (occluded
    parts too) and zero keypoints; pedestrian AP is 1.0 with the driver undetected and with a detection
    of the whole driver: COCOeval ignores both (as a plain pedestrian it would cost recall); keypoint
    evaluation reads the file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pipeline.coco import annotate_shard
    from blender.spec import CameraSpec

    cfg = tiny_render_cfg(resolution_px=[200, 150], samples=4, forklift_driver_prob=1.0, doors_prob=1.0,
                          lookalike_prob=1.0, distractors_per_image=[1, 1], pedestrians_per_image=[1, 1],
                          pallet_jacks_per_image=[0, 0])
    spec = None
    for i in range(200):  # a scene whose one distractor is a forklift (it gets a driver)
        s = sample_scene(np.random.default_rng([2, 0, i]), dict(cfg, lookalike_prob=0.0), "f_driver")
        if any(o.params.get("pose") == "seated" for o in s.objects):
            spec = s
            break
    assert spec is not None
    driver = next(o for o in spec.objects if o.params.get("pose") == "seated")
    person = next(o for o in spec.objects if o.category == "pedestrian" and o is not driver)
    fx, fy = -math.sin(driver.yaw_rad), math.cos(driver.yaw_rad)  # the way the driver faces (the forks)
    dx, dy = driver.location[0], driver.location[1]
    person.location = (round(dx - 2.6 * fy, 4), round(dy + 2.6 * fx, 4), 0.0)  # beside the forklift, in view
    mid = ((dx + person.location[0]) / 2, (dy + person.location[1]) / 2)
    spec.objects = [o for o in spec.objects if o.instance_id or o.name == driver.params["drives"]]
    spec.camera = CameraSpec(location=(mid[0] + 6.5 * fx, mid[1] + 6.5 * fy, 3.0), look_at=(*mid, 1.1), focal_mm=20.0)
    spec.camera_image = {}
    out = tmp_path / "shard_000"
    res = run_render(dict(cfg, images_per_shard=1), out, specs=[spec])
    assert res.returncode == 0, res.stderr[-3000:]
    coco = annotate_shard(out, ["pedestrian", "pallet_jack"], 1)
    crowd = [a for a in coco["annotations"] if a["iscrowd"]]
    people = [a for a in coco["annotations"] if not a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["instance_id"] == driver.instance_id and crowd[0]["area"] > 20
    assert crowd[0]["num_keypoints"] == 0 and crowd[0]["keypoints"] == [0] * 51 and len(people) == 1
    visible = (load_frame(out, "f_driver")[1] == driver.instance_id).sum()
    assert crowd[0]["area"] > visible  # the region spans the driver's whole projection, not its visible pixels
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(coco))
    gt = COCO(str(gt_path))
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": 0.9} for a in people]

    def ap(g, dets) -> float:
        ev = COCOeval(g, g.loadRes(dets), "segm")
        ev.params.catIds = [people[0]["category_id"]]
        ev.evaluate(); ev.accumulate(); ev.summarize()
        return float(ev.stats[0])

    people_only = list(dets)
    assert ap(gt, people_only) == pytest.approx(1.0)
    # a detection of the whole driver, the legs the cab hides included (the crowd region's box): ignored too
    x, y, w, h = crowd[0]["bbox"]
    dets.append({"image_id": crowd[0]["image_id"], "category_id": crowd[0]["category_id"], "bbox": [x, y, w, h],
                 "segmentation": crowd[0]["segmentation"], "score": 0.95})
    assert ap(gt, dets) == pytest.approx(1.0)
    ev = COCOeval(gt, gt.loadRes([dict(d, keypoints=[0.0] * 51) for d in dets]), "keypoints")  # reads every
    ev.evaluate()                                                                              # gt's keypoints
    coco["annotations"] = [dict(a, iscrowd=0) for a in coco["annotations"]]
    gt_path.write_text(json.dumps(coco))
    assert ap(COCO(str(gt_path)), people_only) < 0.6  # the driver as a plain pedestrian: a false positive, half the recall
