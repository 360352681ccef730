"""Pedestrian bodies from anny, without Blender: shape, pose, determinism, clothing regions."""
import numpy as np
import pytest

from blender.pedestrian_body import REGIONS, body_mesh
from blender.pedestrian_spec import POSES, pedestrian_params, skin_tone
from tests.conftest import tiny_render_cfg

pytestmark = pytest.mark.slow


def params(seed=0, **over):
    p = pedestrian_params(np.random.default_rng(seed), tiny_render_cfg())
    p.update(over)
    return p


def test_same_params_same_body_and_feet_on_the_floor():
    a, b = body_mesh(params(3)), body_mesh(params(3))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["vertices"][:, 2].min() == pytest.approx(0.0, abs=1e-6)
    standing = body_mesh(params(3, pose="standing", arms="sides", height_m=1.8))
    assert standing["vertices"][:, 2].max() == pytest.approx(1.8, rel=0.03)  # scaled to the drawn height
    assert len(standing["faces"]) > 20000 and standing["uv"].shape == (len(standing["faces"]), 3, 2)
    assert set(np.unique(standing["region"])) == set(range(len(REGIONS)))  # every clothing region present


def test_phenotype_shapes_the_body():
    thin = body_mesh(params(1, pose="standing", arms="sides", phenotype={**params(1)["phenotype"], "weight": 0.1}))
    heavy = body_mesh(params(1, pose="standing", arms="sides", phenotype={**params(1)["phenotype"], "weight": 0.9}))
    waist = lambda b: np.ptp(b["vertices"][b["region"] == REGIONS.index("torso")][:, 1])  # noqa: E731
    assert waist(heavy) > 1.1 * waist(thin)


def test_poses_move_the_limbs_the_way_they_say():
    def part(b, region):
        return b["vertices"][b["region"] == REGIONS.index(region)]

    stand = body_mesh(params(2, pose="standing", arms="sides"))
    head_top = stand["vertices"][:, 2].max()
    reach = body_mesh(params(2, pose="reaching"))
    assert part(reach, "hand")[:, 2].max() > head_top  # a hand above the head, up to a shelf
    crouch = body_mesh(params(2, pose="crouching"))
    assert crouch["vertices"][:, 2].max() < 0.8 * head_top
    bend = body_mesh(params(2, pose="bending", bend_deg=70.0))
    assert part(bend, "head")[:, 1].mean() > part(stand, "head")[:, 1].mean() + 0.2  # head forward (+y)
    walk = body_mesh(params(2, pose="walking", swing_deg=25.0, phase_rad=np.pi / 2))
    feet = part(walk, "foot")
    left, right = feet[feet[:, 0] > 0], feet[feet[:, 0] < 0]
    assert abs(left[:, 1].mean() - right[:, 1].mean()) > 0.3  # a stride: one foot ahead of the other
    for pose in set(POSES):  # every pose: finite, on the floor
        b = body_mesh(params(5, pose=pose))
        assert np.isfinite(b["vertices"]).all() and b["vertices"][:, 2].min() == pytest.approx(0.0, abs=1e-6)


def test_skin_tones_span_the_range():
    tones = np.array([skin_tone(t) for t in np.linspace(0, 1, 11)])
    assert tones[0].mean() > 3 * tones[-1].mean()  # very light to very dark, continuously
    assert np.all(np.diff(tones.mean(axis=1)) < 0)


def test_operator_and_carrier_reach_their_targets_with_both_hands():
    """Operating a jack: both hand centres on the grip (the body steps to close what the arms cannot);
    carrying: on the carton's sides, in front of the waist. Through the rig's own kinematics."""
    from blender.pallet_jack_spec import pallet_jack_params
    from blender.pedestrian_spec import operator_params

    for i in range(3):
        rng = np.random.default_rng([4, i])
        p, _ = operator_params(rng, tiny_render_cfg(), pallet_jack_params(rng, tiny_render_cfg()), "inst_001")
        b = body_mesh(p)
        hands = b["vertices"][b["region"] == REGIONS.index("hand")]
        for centre, target in zip((hands[hands[:, 0] < 0].mean(0), hands[hands[:, 0] > 0].mean(0)), p["grip_m"]):
            assert np.linalg.norm(centre - np.array(target)) < 0.03, (i, centre, target)
        assert b["vertices"][:, 2].min() == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(1)
    carrier = pedestrian_params(rng, tiny_render_cfg())
    while carrier["pose"] != "carrying":
        carrier = pedestrian_params(rng, tiny_render_cfg())
    b = body_mesh(carrier)
    assert np.linalg.norm(b["palms"] - np.array(carrier["grip_m"]), axis=1).max() < 0.05  # drawn from rough anthropometry
    assert 0.45 * carrier["height_m"] < b["palms"][:, 2].mean() < 0.7 * carrier["height_m"]  # waist height


def test_keypoints_sit_where_coco_puts_them():
    """17 points in COCO's order on a standing body facing +y: face above shoulders above hips above
    knees above ankles; the person's left on -x (facing +y); ankles near the floor; nose in front."""
    from pipeline.coco import KEYPOINTS

    b = body_mesh(params(2, pose="standing", arms="sides", height_m=1.8))
    k = dict(zip(KEYPOINTS, b["keypoints"]))
    assert b["keypoints"].shape == (17, 3)
    z = lambda *names: np.mean([k[n][2] for n in names])  # noqa: E731
    assert z("nose", "left_eye", "right_eye") > z("left_shoulder", "right_shoulder") > z("left_hip", "right_hip") \
        > z("left_knee", "right_knee") > z("left_ankle", "right_ankle")
    assert 0.04 < z("left_ankle", "right_ankle") < 0.15 and 1.55 < k["left_eye"][2] < 1.75
    for part in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        assert k[f"left_{part}"][0] < 0 < k[f"right_{part}"][0], part
    assert k["nose"][1] > k["left_ear"][1] + 0.05  # the face looks along +y


BODY_SCRIPT = """
import hashlib, logging, sys
import numpy as np
logging.basicConfig(level=logging.INFO)
from blender.pedestrian_body import body_mesh
from blender.pedestrian_spec import pedestrian_params
from tests.conftest import tiny_render_cfg
b = body_mesh(pedestrian_params(np.random.default_rng(12), tiny_render_cfg()))
print("HASH" + hashlib.sha256(b["vertices"].tobytes() + b["keypoints"].tobytes()).hexdigest())
"""


def test_two_shards_on_an_empty_cache_build_it_once_and_agree(tmp_path):
    """Two render processes start at once on an empty anny cache (a fresh machine or cluster): one
    builds it (and says why the run waits), the other waits on the lock; both make the same body."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "HANGAR_ANNY_CACHE": str(tmp_path / "anny"), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", BODY_SCRIPT], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=1200) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    hashes = {out.split("HASH")[-1].strip() for out, _ in outs}
    assert len(hashes) == 1
    said = ["building the anny body model cache" in err for _, err in outs]
    assert said.count(True) == 1, said  # one built it, the other waited and read it
