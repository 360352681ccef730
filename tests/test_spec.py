import json
import math

import numpy as np

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
        cats = [o.category for o in spec.objects if o.instance_id]
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
