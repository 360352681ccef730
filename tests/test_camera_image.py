"""How the camera forms and compresses the image (blender/camera_image.py): drawn per frame, each step
doing what it says, and labels untouched by all of it."""
import copy
import json

import cv2
import numpy as np
import pytest

from blender.camera_image import STEPS, apply, draw
from blender.spec import SceneSpec, sample_scene
from tests.conftest import load_frame, run_render, tiny_render_cfg

ALL_ON = {f"{step}_prob": 1.0 for step in STEPS}


def camera_cfg(**over):
    return tiny_render_cfg(camera_image={**over})["camera_image"]


def test_draw_follows_the_shares_and_ranges_and_one_share_moves_no_other_step():
    off = camera_cfg()
    assert draw(np.random.default_rng(1), off) == {}
    on = camera_cfg(**ALL_ON)
    steps = draw(np.random.default_rng(1), on)
    assert list(steps) == list(STEPS)  # every step, in the order apply runs them
    assert steps == draw(np.random.default_rng(1), on)
    assert 30 <= steps["jpeg"]["quality"] <= 95 and 0.45 <= steps["resample"]["scale"] <= 0.8
    assert all(0.88 <= g <= 1.12 for g in steps["white_balance"]["gains"])
    without_jpeg = draw(np.random.default_rng(1), {**on, "jpeg_prob": 0.0})
    assert without_jpeg == {k: v for k, v in steps.items() if k != "jpeg"}
    shares = [draw(np.random.default_rng(k), camera_cfg(jpeg_prob=0.3)) for k in range(2000)]
    # 600 expected of 2000 at p = 0.3: sd sqrt(2000 * .3 * .7) = 20.5, 5 sd = 102
    assert abs(sum("jpeg" in s for s in shares) - 600) < 102


def test_the_rest_of_the_scene_does_not_depend_on_the_camera_image_shares():
    a = sample_scene(np.random.default_rng([0, 0, 3]), tiny_render_cfg(), "f").to_dict()
    b = sample_scene(np.random.default_rng([0, 0, 3]), tiny_render_cfg(camera_image=ALL_ON), "f").to_dict()
    assert a["camera_image"] == {} and set(b["camera_image"]) == set(STEPS)
    assert {k: v for k, v in a.items() if k != "camera_image"} == {k: v for k, v in b.items() if k != "camera_image"}


def scene(h=120, w=160):
    """A grey image with black and white bars (edges for sharpening, resampling and JPEG to act on)."""
    img = np.full((h, w, 3), 128, np.uint8)
    img[:, ::16] = 0
    img[:, 8::16] = 255
    return img


def test_each_step_does_what_it_says():
    img = scene()
    assert apply(img, {}) is img
    flat = np.full((120, 160, 3), 200, np.uint8)
    vig = apply(flat, {"vignetting": {"strength": 0.4}}).astype(float)
    assert vig[0, 0, 0] == pytest.approx(200 * 0.6, abs=1) and vig[60, 80, 0] == pytest.approx(200, abs=1)
    wb = apply(flat, {"white_balance": {"gains": [1.1, 1.0, 0.9]}})
    assert tuple(wb[5, 5]) == (220, 200, 180)
    tone = apply(flat, {"tone": {"gamma": 2.0, "contrast": 1.0}})
    assert tone[0, 0, 0] == round(255 * (200 / 255) ** 2)
    ir = apply(np.dstack([np.full((120, 160), v, np.uint8) for v in (30, 120, 220)]), {"infrared": {"falloff": 0.5}})
    assert (ir[..., 0] == ir[..., 1]).all() and (ir[..., 1] == ir[..., 2]).all() and ir[0, 0, 0] < ir[60, 80, 0]
    sharp = apply(img, {"sharpen": {"amount": 1.0}}).astype(int)
    assert sharp[:, 1].mean() > 128 + 10  # the halo beside a black bar overshoots
    soft = apply(img, {"resample": {"scale": 0.5}}).astype(int)
    assert soft.shape == img.shape and np.abs(np.diff(soft[60, :, 0])).max() < 255
    ca = apply(img, {"chromatic_aberration": {"px": 1.5}})
    assert (ca[:, :20, 2] != img[:, :20, 2]).any() and (ca[:, :20, 1] == img[:, :20, 1]).all()  # green stays
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    errs = [np.abs(apply(texture, {"jpeg": {"quality": q}}).astype(int) - texture).mean() for q in (30, 60, 95)]
    assert errs[0] > errs[1] > errs[2] > 0
    over = apply(flat, {"overlay": {"camera": "CAM 07", "time": "2026-05-01 12:00:00", "top": True}})
    changed = np.argwhere((over != flat).any(axis=2))
    assert len(changed) > 100 and changed[:, 0].max() < 40  # text in a band along the top only


@pytest.mark.slow
def test_labels_are_the_same_with_and_without_the_camera_processing(tmp_path):
    """One scene rendered twice, once plain and once through every step: the instance map and every label
    in the metadata are identical, the image is not (night infrared: grey, up to JPEG's rounding)."""
    base = sample_scene(np.random.default_rng([0, 0, 1]), tiny_render_cfg(), "f")
    steps = draw(np.random.default_rng(5), camera_cfg(**ALL_ON))
    processed = SceneSpec.from_dict({**copy.deepcopy(base.to_dict()), "camera_image": steps})
    frames = {}
    for name, spec in (("plain", base), ("processed", processed)):  # same seed, shard and index: same Cycles seed
        out = tmp_path / name / "shard_000"
        out.parent.mkdir()
        res = run_render(tiny_render_cfg(), out, specs=[spec])
        assert res.returncode == 0, res.stderr[-3000:]
        frames[name] = load_frame(out, "f")
    (meta_a, ids_a, rgb_a), (meta_b, ids_b, rgb_b) = frames["plain"], frames["processed"]
    assert np.array_equal(ids_a, ids_b) and ids_a.max() > 0
    assert json.dumps(meta_a["instances"], sort_keys=True) == json.dumps(meta_b["instances"], sort_keys=True)
    assert meta_b["scene"]["camera_image"] == steps and meta_a["scene"]["camera_image"] == {}
    assert np.abs(rgb_a.astype(int) - rgb_b.astype(int)).mean() > 5
    assert np.abs(rgb_b.astype(int) - rgb_b[..., 1:2].astype(int)).max() <= 3 < np.abs(
        rgb_a.astype(int) - rgb_a[..., 1:2].astype(int)).max()
    assert rgb_b.dtype == np.uint8 and rgb_b.shape == rgb_a.shape
