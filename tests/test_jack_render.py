"""Pallet jacks in bpy renders: a load on the forks is not part of the jack's mask, an unloaded jack
in clear view covers what its projected mesh predicts."""
import copy

import numpy as np
import pytest

from blender.spec import CameraSpec, LightSpec, ObjectSpec, SceneSpec
from tests.conftest import load_frame, run_render, tiny_render_cfg

pytestmark = pytest.mark.slow


def jack_params(seed: int, **want) -> dict:
    from blender.pallet_jack_spec import pallet_jack_params

    rng = np.random.default_rng(seed)
    cfg = tiny_render_cfg(jack_load_prob=1.0 if want.get("load") else 0.0, electric_jack_prob=0.0)
    p = pallet_jack_params(rng, cfg)
    while want.get("load") and p["load"]["cargo"] != "cartons":
        p = pallet_jack_params(rng, cfg)
    p.update({k: v for k, v in want.items() if k != "load"})
    return p


@pytest.fixture(scope="module")
def jack_shard(tmp_path_factory):
    light = [LightSpec("SUN", (0, 0, 10), (0.4, 0, 0.7), 3.0, (1, 1, 1))]
    loaded = ObjectSpec("inst_001", "pallet_jack", "pallet_jack", 1, (0.0, 0.0, 0.0), 0.0,
                        jack_params(1, load=True, fork_length_m=1.15, fork_height_m=0.15, tiller_angle_rad=0.2))
    bare = ObjectSpec("inst_001", "pallet_jack", "pallet_jack", 1, (0.0, 0.0, 0.0), 0.0,
                      jack_params(2, fork_length_m=1.15, tiller_angle_rad=0.2))
    cam = CameraSpec((3.2, -0.6, 1.6), (0.0, -0.4, 0.4), 35.0)  # from the side, slightly above
    specs = [SceneSpec(f, (200, 150), (0.4, 0.4, 0.4), 0.8, (0.6, 0.6, 0.6), copy.deepcopy(cam), copy.deepcopy(light), [o])
             for f, o in (("f_loaded", loaded), ("f_bare", bare))]
    out = tmp_path_factory.mktemp("jacks") / "shard_000"
    res = run_render(tiny_render_cfg(resolution_px=[200, 150], samples=8), out, specs=specs)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_a_load_on_the_forks_is_not_part_of_the_jack(jack_shard):
    from blender.keypoints import project
    from blender.pallet_jack_spec import PALLETS

    meta, ids, _ = load_frame(jack_shard, "f_loaded")
    p = meta["scene"]["objects"][0]["params"]
    width, length = PALLETS[p["load"]["pallet"]]
    centre = (0.0, -0.02 - length / 2, p["fork_height_m"] + 0.3)  # inside the carton stack (jack frame = world)
    uv, _ = project(np.array([centre]), meta["camera"])
    x, y = int(uv[0, 0]), int(uv[0, 1])
    assert ids[y - 2:y + 3, x - 2:x + 3].max() == 0  # cartons: background
    inst = meta["instances"][0]
    assert inst["visible_pixels"] > 200  # the chassis, pump and tiller stay the jack
    assert inst["visibility"] < 0.8  # the pallet and cartons hide the forks (amodal from the jack's own mesh)
    _, ids_bare, _ = load_frame(jack_shard, "f_bare")
    assert (ids == 1).sum() < 0.8 * (ids_bare == 1).sum()


def test_an_unloaded_jack_in_clear_view_covers_its_projected_mesh(jack_shard):
    meta, ids, _ = load_frame(jack_shard, "f_bare")
    inst = meta["instances"][0]
    assert inst["visibility"] > 0.95  # nothing hides it
    assert abs((ids == 1).sum() - inst["amodal_pixels"]) < 0.05 * inst["amodal_pixels"]
