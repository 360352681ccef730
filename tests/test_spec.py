import json
import math

import numpy as np
import pytest

from blender.spec import FOOTPRINT_M, sample_scene
from tests.conftest import tiny_render_cfg


def test_same_seed_same_scene_and_different_seed_differs():
    cfg = tiny_render_cfg()
    a = json.dumps(sample_scene(np.random.default_rng([0, 0, 1]), cfg, "f").to_dict(), sort_keys=True)
    b = json.dumps(sample_scene(np.random.default_rng([0, 0, 1]), cfg, "f").to_dict(), sort_keys=True)
    c = json.dumps(sample_scene(np.random.default_rng([0, 0, 2]), cfg, "f").to_dict(), sort_keys=True)
    assert a == b and a != c


def test_objects_do_not_overlap_and_counts_follow_config():
    cfg = tiny_render_cfg(pedestrians_per_image=[2, 2], pallet_jacks_per_image=[1, 1])
    for i in range(20):
        spec = sample_scene(np.random.default_rng([1, 0, i]), cfg, "f")
        cats = [o.category for o in spec.objects if o.instance_id]
        assert cats.count("pedestrian") == 2 and cats.count("pallet_jack") == 1
        ids = [o.instance_id for o in spec.objects if o.instance_id]
        assert ids == list(range(1, len(ids) + 1))
        objs = spec.objects
        for k, a in enumerate(objs):
            for b in objs[k + 1:]:
                if b.name == a.params.get("operates") or a.name == b.params.get("operates"):
                    continue  # a jack's operator stands at its tiller (tests below)
                d = math.hypot(a.location[0] - b.location[0], a.location[1] - b.location[1])
                assert d >= FOOTPRINT_M[a.kind] + FOOTPRINT_M[b.kind] - 1e-6


def test_category_balance_over_a_shard_follows_the_configured_ranges():
    """Over 300 scenes of configs/default.yaml: counts inside the ranges, means near the range middle,
    images without one of the classes (negatives for it) present, every image has context objects."""
    from pipeline.config import load_config

    cfg = load_config("configs/default.yaml")["render"]
    per = {"pedestrian": [], "pallet_jack": []}
    context = []
    for i in range(300):
        spec = sample_scene(np.random.default_rng([0, 3, i]), cfg, "f")
        cats = [o.category for o in spec.objects if o.instance_id and "drives" not in o.params]  # drivers: on top
        for c in per:
            per[c].append(cats.count(c))
        context.append(sum(1 for o in spec.objects if not o.instance_id))
    for c, key in (("pedestrian", "pedestrians_per_image"), ("pallet_jack", "pallet_jacks_per_image")):
        lo, hi = cfg[key]
        counts = np.array(per[c])
        assert counts.min() >= lo and counts.max() <= hi, c
        assert abs(counts.mean() - (lo + hi) / 2) < 0.15 * (hi - lo + 1), (c, counts.mean())
        if lo == 0:
            assert 0.05 < (counts == 0).mean() < 0.6, c  # some images are negatives for this class
    assert min(context) >= cfg["distractors_per_image"][0] - 1  # placement may skip one in a crowded scene


def test_shell_fits_the_hall_and_everything_stays_under_the_ceiling():
    """Skylights and windows lie inside the roof/walls, the camera and lamps hang below the ceiling,
    and over many scenes both kinds of openings, forklifts and ceiling heights from the range occur."""
    from blender.spec import HALL_M

    cfg = tiny_render_cfg(camera_height_m=[1.6, 6.0], distractors_per_image=[4, 8])
    kinds, n_sky, n_win, heights, lamps, floors = set(), 0, 0, [], set(), set()
    for i in range(60):
        spec = sample_scene(np.random.default_rng([2, 0, i]), cfg, "f")
        shell = spec.shell
        lo, hi = cfg["ceiling_height_m"]
        assert lo <= shell["height_m"] <= hi
        heights.append(shell["height_m"])
        assert spec.camera.location[2] < shell["height_m"] - 0.5
        assert all(light.location[2] < shell["height_m"] for light in spec.lights if light.kind == "AREA")
        cx, cy = spec.camera.location[:2]
        for o in spec.objects:  # the camera is never inside or against an object
            assert math.hypot(cx - o.location[0], cy - o.location[1]) >= FOOTPRINT_M[o.kind] + 0.5
        for x, y, sx, sy in shell["skylights"]:
            assert abs(x) + sx / 2 < HALL_M / 2 and abs(y) + sy / 2 < HALL_M / 2
        for wall, u, w in shell["windows"]:
            assert wall in "NSEW" and abs(u) + w / 2 < HALL_M / 2
        assert shell["window_sill_m"] + shell["window_height_m"] < shell["height_m"]
        n_sky += bool(shell["skylights"])
        n_win += bool(shell["windows"])
        kinds |= {o.kind for o in spec.objects}
        lamps |= {light.kind for light in spec.lights}
        floors.add(spec.floor["kind"])
    assert 0 < n_sky < 60 and n_win > 30  # skylight_prob 0.6 by default
    assert {"forklift", "post", "rack"} <= kinds and max(heights) - min(heights) > 1.0
    assert lamps == {"SUN", "AREA", "POINT", "SPOT"} and floors == {"concrete", "epoxy", "worn"}


def testsolid_spans_cut_holes():
    from blender.spec import solid_spans

    assert solid_spans(10, []) == [(-5, 5)]
    assert solid_spans(10, [(0, 2)]) == [(-5, -1), (1, 5)]
    assert solid_spans(10, [(3, 2), (-3, 2)]) == [(-5, -4), (-2, 2), (4, 5)]


def test_motion_blur_and_sensor_noise_are_optional_seeded_and_follow_the_config():
    off = tiny_render_cfg()
    assert off["motion_blur_prob"] == 0 and off["sensor_noise_prob"] == 0
    for i in range(20):
        spec = sample_scene(np.random.default_rng([4, 0, i]), off, "f")
        assert spec.exposure_s == 0 and spec.sensor_noise == {}
        assert not any("velocity_mps" in o.params for o in spec.objects)
    on = tiny_render_cfg(motion_blur_prob=1.0, sensor_noise_prob=1.0, exposure_s=[0.03, 0.05],
                         pedestrians_per_image=[3, 3], pallet_jacks_per_image=[1, 1])
    moving = 0
    for i in range(20):
        spec = sample_scene(np.random.default_rng([4, 0, i]), on, "f")
        assert 0.03 <= spec.exposure_s <= 0.05
        assert on["sensor_noise_sigma"][0] <= spec.sensor_noise["sigma"] <= on["sensor_noise_sigma"][1]
        for o in spec.objects:
            v = o.params.get("velocity_mps")
            if o.kind == "pedestrian" and o.params["pose"] in ("standing", "bending"):
                assert v is None  # only walking or carrying people move
            if v:
                moving += 1
                speed = math.hypot(*v)
                walks = o.kind == "pedestrian" and "operates" not in o.params  # operators go at their jack's pace
                lo, hi = on["pedestrian_speed_mps" if walks else "pallet_jack_speed_mps"]
                assert lo - 1e-3 <= speed <= hi + 1e-3
                # along the facing direction (+y rotated by yaw)
                assert abs(v[0] * math.cos(o.yaw_rad) + v[1] * math.sin(o.yaw_rad)) < 1e-3
    assert moving > 10
    a = sample_scene(np.random.default_rng([4, 0, 1]), on, "f").to_dict()
    assert a == sample_scene(np.random.default_rng([4, 0, 1]), on, "f").to_dict()


def test_sensor_noise_is_seeded_and_signal_dependent():
    from blender.render import add_sensor_noise

    img = np.concatenate([np.full((200, 200, 3), 20, np.uint8), np.full((200, 200, 3), 128, np.uint8),
                          np.full((200, 200, 3), 230, np.uint8)], axis=1)
    a, b = add_sensor_noise(img, 4.0, 7), add_sensor_noise(img, 4.0, 7)
    assert np.array_equal(a, b) and not np.array_equal(a, add_sensor_noise(img, 4.0, 8))
    std = [(a[:, k * 200:(k + 1) * 200].astype(float) - v).std() for k, v in enumerate((20, 128, 230))]
    assert abs(std[1] - 4.0) < 0.3  # sigma at mid-grey
    assert std[0] < std[1] < std[2]
    assert abs((a.astype(float) - img).mean()) < 0.1  # unbiased away from the clipping ends


def test_jack_operators_stand_at_the_tiller_facing_the_jack_and_move_with_it():
    """jack_operator_prob 1: each jack gets a person whose grip targets are at the jack's grip
    (in the jack's frame, turned by the person's yaw), counted within pedestrians_per_image."""
    from blender.pallet_jack_spec import grip_point

    cfg = tiny_render_cfg(pedestrians_per_image=[2, 2], pallet_jacks_per_image=[1, 1], jack_operator_prob=1.0,
                          motion_blur_prob=1.0)
    seen = 0
    for i in range(10):
        spec = sample_scene(np.random.default_rng([2, i]), cfg, "f")
        people = [o for o in spec.objects if o.category == "pedestrian"]
        assert len(people) == 2
        by_name = {o.name: o for o in spec.objects}
        for op in (o for o in people if o.params["pose"] == "operating"):
            jack = by_name[op.params["operates"]]
            assert math.cos(op.yaw_rad - jack.yaw_rad) == pytest.approx(-1.0, abs=1e-6)  # faces the jack
            gx, gy, gz = grip_point(jack.params)
            c, s = math.cos(jack.yaw_rad), math.sin(jack.yaw_rad)
            grip_world = np.array([jack.location[0] + c * gx - s * gy, jack.location[1] + s * gx + c * gy])
            target = np.mean(op.params["grip_m"], axis=0)  # in the person's frame: +y is where they face
            co, so = math.cos(op.yaw_rad), math.sin(op.yaw_rad)
            target_world = np.array([op.location[0] + co * target[0] - so * target[1],
                                     op.location[1] + so * target[0] + co * target[1]])
            assert np.linalg.norm(grip_world - target_world) < 1e-3 and target[2] == pytest.approx(gz, abs=1e-3)
            assert op.params.get("velocity_mps") == jack.params.get("velocity_mps")
            seen += 1
    assert seen >= 8


def test_site_keys_shape_the_scene():
    """A site's finishes, lamps and workwear come from its render keys (proof site B)."""
    from blender.spec import kelvin_to_rgb

    walls = [[0.2, 0.28, 0.24], [0.45, 0.2, 0.14]]
    wear = [[0.02, 0.06, 0.2], [0.3, 0.04, 0.05]]
    from pipeline.config import load_config

    cfg = load_config("configs/smoke.yaml", {"render": {
        "floor_kinds": ["asphalt"], "wall_colors": walls, "light_kelvin": [2200, 2300], "workwear_colors": wear,
        "coverall_colors": wear, "hivis_prob": 1.0, "helmet_prob": 0.0, "pedestrians_per_image": [2, 3]}})["render"]
    warm = np.array(kelvin_to_rgb(2300))
    for i in range(10):
        spec = sample_scene(np.random.default_rng([7, i]), cfg, "f")
        assert spec.floor["kind"] == "asphalt" and max(spec.floor_color) < 0.2
        assert list(spec.wall_color) in walls
        for light in spec.lights[1:]:  # hall lamps: as warm as 2300 K or warmer
            assert light.color[2] <= warm[2] + 1e-6
        for o in spec.objects:
            if o.kind == "pedestrian":
                assert list(o.params["shirt"]) in wear and list(o.params["trousers"]) in wear
                assert o.params["hivis"] is not None and o.params["helmet"] is None


def test_headwear_coveralls_and_boots_follow_their_shares_without_moving_other_draws():
    """Caps and beanies only on people without a helmet; a coverall is one colour from
    coverall_colors with long sleeves; each share switches its item on or off without changing
    any other draw (everything is drawn for everyone)."""
    from blender.pedestrian_spec import pedestrian_params

    on = tiny_render_cfg(soft_headwear_prob=1.0, coverall_prob=1.0, boots_prob=1.0, helmet_prob=0.5)
    off = tiny_render_cfg(soft_headwear_prob=0.0, coverall_prob=0.0, boots_prob=0.0, helmet_prob=0.5)
    kinds = set()
    for seed in range(60):
        a, b = pedestrian_params(np.random.default_rng(seed), on), pedestrian_params(np.random.default_rng(seed), off)
        assert (a["headwear"] is None) == bool(a["helmet"]) and b["headwear"] is None
        kinds.add(a["headwear"]["kind"] if a["headwear"] else None)
        assert a["outfit"] == "coverall" and b["outfit"] == "separates"
        assert a["shirt"] == a["trousers"] and list(a["shirt"]) in on["coverall_colors"]
        assert a["long_sleeves"] and not a["shorts"]
        assert a["boots"] and not b["boots"]
        same = {k for k in a if k not in ("headwear", "outfit", "shirt", "trousers", "long_sleeves", "shorts", "boots")}
        assert all(a[k] == b[k] for k in same), seed
    assert kinds == {None, "cap", "beanie"}
