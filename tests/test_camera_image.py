"""How the camera forms and compresses the image (blender/camera_image.py): drawn per frame, each step
doing what it says, and labels untouched by all of it."""
import copy
import json

import cv2
import numpy as np
import pytest

from blender.camera_image import STEPS, draw, h264, optics, process
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
    wb = steps["white_balance"]
    assert -0.3 <= wb["shift_stops"] <= 0.3 and wb["gains_bgr"][0] * wb["gains_bgr"][2] == pytest.approx(1, abs=1e-3)
    without_jpeg = draw(np.random.default_rng(1), {**on, "jpeg_prob": 0.0})
    assert without_jpeg == {k: v for k, v in steps.items() if k != "jpeg"}
    cfg = camera_cfg(jpeg_prob=0.3)
    shares = [draw(np.random.default_rng(k), cfg) for k in range(2000)]
    # 600 expected of 2000 at p = 0.3: sd sqrt(2000 * .3 * .7) = 20.5, 5 sd = 102
    assert abs(sum("jpeg" in s for s in shares) - 600) < 102


def test_the_rest_of_the_scene_does_not_depend_on_the_camera_image_shares():
    a = sample_scene(np.random.default_rng([0, 0, 3]), tiny_render_cfg(), "f").to_dict()
    b = sample_scene(np.random.default_rng([0, 0, 3]), tiny_render_cfg(camera_image={**ALL_ON}), "f").to_dict()
    assert a["camera_image"] == {} and set(b["camera_image"]) == set(STEPS)
    assert {k: v for k, v in a.items() if k != "camera_image"} == {k: v for k, v in b.items() if k != "camera_image"}


def scene(h=120, w=160):
    """A grey image with black and white bars (edges for sharpening, resampling and JPEG to act on)."""
    img = np.full((h, w, 3), 128, np.uint8)
    img[:, ::16] = 0
    img[:, 8::16] = 255
    return img


def centroid(channel: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(channel > 0)
    w = channel[ys, xs].astype(float)
    return np.array([(ys * w).sum(), (xs * w).sum()]) / w.sum()


def test_the_lens_works_in_linear_light_on_the_16_bit_render():
    flat = np.full((121, 161, 3), 40000, np.uint16)
    assert optics(flat, {}) is flat and optics(flat, {"tone": {"gamma": 2, "contrast": 1}}) is flat
    vig = optics(flat, {"vignetting": {"strength": 0.5}})
    lin = lambda v: ((v / 65535 + 0.055) / 1.055) ** 2.4  # noqa: E731 (sRGB decode)
    assert lin(vig[60, 80, 0]) == pytest.approx(lin(40000), rel=1e-3)
    assert lin(vig[0, 0, 0]) == pytest.approx(0.5 * lin(40000), rel=1e-3)  # half the light: one stop
    dot = np.zeros((121, 161, 3), np.uint16)
    dot[10:13, 10:13] = 65535  # near the top-left corner
    ca = optics(dot, {"chromatic_aberration": {"px": 1.5}})
    centre = np.array([60, 80])
    r0 = np.linalg.norm(centroid(dot[..., 1]) - centre)
    assert np.linalg.norm(centroid(ca[..., 1]) - centre) == pytest.approx(r0, abs=1e-6)  # green stays
    assert np.linalg.norm(centroid(ca[..., 2]) - centre) - r0 == pytest.approx(1.5 * r0 / 100, abs=0.1)  # red out
    assert r0 - np.linalg.norm(centroid(ca[..., 0]) - centre) == pytest.approx(1.5 * r0 / 100, abs=0.1)  # blue in


def test_each_processing_step_does_what_it_says():
    img = scene()
    assert process(img, {}) is img
    flat = np.full((120, 160, 3), 200, np.uint8)
    wb = process(flat, {"white_balance": {"gains_bgr": [1.1, 1.0, 0.9]}})
    assert tuple(wb[5, 5]) == (220, 200, 180)
    tone = process(flat, {"tone": {"gamma": 2.0, "contrast": 1.0}})
    assert tone[0, 0, 0] == round(255 * (200 / 255) ** 2)
    assert process(flat, {"tone": {"gamma": 1.0, "contrast": 1.5}})[0, 0, 0] == round(127.5 + 72.5 * 1.5)
    ir = process(np.dstack([np.full((120, 160), v, np.uint8) for v in (30, 120, 220)]), {"infrared": {"falloff": 0.5}})
    assert (ir[..., 0] == ir[..., 1]).all() and (ir[..., 1] == ir[..., 2]).all()
    assert ir[60, 80, 0] == round(0.114 * 30 + 0.587 * 120 + 0.299 * 220) and ir[0, 0, 0] == 70  # BGR luma, falloff
    sharp = process(img, {"sharpen": {"amount": 1.0}}).astype(int)
    assert sharp[:, 1].mean() > 128 + 10  # the halo beside a black bar overshoots
    soft = process(img, {"resample": {"scale": 0.5}}).astype(int)
    assert soft.shape == img.shape and np.abs(np.diff(soft[60, :, 0])).max() < 100 < np.abs(np.diff(img[60, :, 0])).max()
    dot = np.zeros((120, 160, 3), np.uint8)
    dot[40:44, 100:104] = 255
    moved = centroid(process(dot, {"resample": {"scale": 0.6}})[..., 0]) - centroid(dot[..., 0])
    assert np.abs(moved).max() < 0.1  # a lower stream resolution blurs, never shifts, what the labels cover
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    errs = [np.abs(process(texture, {"jpeg": {"quality": q}}).astype(int) - texture).mean() for q in (30, 60, 95)]
    assert errs[0] > errs[1] > errs[2] > 0
    # H.264: the error grows with the rate factor, bytes repeat, odd sizes come back whole; at a sub-stream
    errs = [np.abs(process(texture, {"h264": {"crf": c}}).astype(int) - texture).mean() for c in (18, 32, 46)]
    assert errs[0] < errs[1] < errs[2] and errs[2] > 1.5 * errs[0]
    assert np.array_equal(process(texture, {"h264": {"crf": 40}}), process(texture, {"h264": {"crf": 40}}))
    odd = texture[:121, :161]
    assert h264(odd, 30).shape == odd.shape
    assert process(texture, {"resample": {"scale": 0.55}, "h264": {"crf": 35}}).shape == texture.shape
    for top in (True, False):
        over = process(flat, {"overlay": {"camera": "CAM 07", "time": "2026-05-01 12:00:00", "top": top}})
        rows = np.argwhere((over != flat).any(axis=2))[:, 0]
        assert len(rows) > 100 and (rows.max() < 20 if top else rows.min() > 100)  # a band along one edge only
    # at a lower stream resolution the text is drawn and encoded small, then scaled up with the picture
    small = process(flat, {"resample": {"scale": 0.5}, "overlay": {"camera": "CAM 07", "time": "2026-05-01", "top": True}})
    assert small.shape == flat.shape and (small != flat).any()


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
        rgb_a.astype(int) - rgb_a[..., 1:2].astype(int)).max()  # night mode: grey, up to JPEG's rounding
    assert rgb_b.dtype == np.uint8 and rgb_b.shape == rgb_a.shape
