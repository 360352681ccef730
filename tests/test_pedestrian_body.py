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
