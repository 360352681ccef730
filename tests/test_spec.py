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
