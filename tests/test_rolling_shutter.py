"""Rolling shutter (render.rolling_shutter_prob, readout_ms): Cycles exposes the rows from the top, a
moving person leans in the render and in its mask alike, and the keypoints follow the row times."""
import copy
import math

import numpy as np

from blender.spec import CameraSpec, sample_scene
from tests.conftest import load_frame, run_render, tiny_render_cfg

SPEED = 9.0      # m/s to the camera's right: exaggerated (with the readout) so the lean is tens of pixels
READOUT = 0.19   # s top row to bottom row (a real sensor: 0.01-0.033)


def test_a_moving_person_leans_by_the_readout_and_its_keypoints_follow(tmp_path):
    """The same scene with a global and a rolling shutter: the mask's row centres move by
    speed * (row / height - 0.5) * readout in pixels (the person's pixels per metre from its own
    height), top rows back, bottom rows ahead; corrected keypoints lie on the leaning mask, where the
    frame-time projection would miss it at the head and feet. The config draws readouts only when set."""
    cfg = tiny_render_cfg(resolution_px=[160, 120], samples=8, pedestrians_per_image=[1, 1],
                          pallet_jacks_per_image=[0, 0], distractors_per_image=[0, 0])
    spec = sample_scene(np.random.default_rng([1, 2, 3]), cfg, "f")
    person = next(o for o in spec.objects if o.category == "pedestrian")
    person.location, person.yaw_rad = (0.0, 0.0, 0.0), 0.0
    person.params.update(pose="standing", arms="sides", velocity_mps=[SPEED, 0.0], hivis=None)
    spec.objects = [person]
    spec.camera = CameraSpec(location=(0.0, -5.5, 1.0), look_at=(0.0, 0.0, 0.95), focal_mm=45.0)
    spec.camera_image, spec.sensor_noise, spec.exposure_s = {}, {}, 0.002
    rolling = copy.deepcopy(spec)
    rolling.frame, rolling.readout_s = "r", READOUT
    out = tmp_path / "shard_000"
    res = run_render(dict(cfg, images_per_shard=2), out, specs=[spec, rolling])
    assert res.returncode == 0, res.stderr[-3000:]
    (meta_g, ids_g, _), (meta_r, ids_r, _) = load_frame(out, "f"), load_frame(out, "r")
    mask_g, mask_r = ids_g == person.instance_id, ids_r == person.instance_id
    rows = [y for y in range(120) if mask_g[y].sum() >= 3 and mask_r[y].sum() >= 3]
    top, bottom = min(rows), max(rows)
    px_per_m = (bottom - top + 1) / person.params["height_m"]  # the body's own scale in this frame
    shift = np.array([np.flatnonzero(mask_r[y]).mean() - np.flatnonzero(mask_g[y]).mean() for y in rows])
    want = SPEED * (np.array(rows) / 120 - 0.5) * READOUT * px_per_m  # the camera looks along +y: +x is right
    assert abs(want[0] - want[-1]) > 20  # the lean is large: the test can see it
    assert np.abs(shift - want).max() < 0.15 * abs(want[0] - want[-1]) + 2.0, (shift.round(1), want.round(1))
    kp_r = np.reshape(next(i for i in meta_r["instances"] if i["id"] == person.instance_id)["keypoints"], (-1, 3))
    kp_g = np.reshape(next(i for i in meta_g["instances"] if i["id"] == person.instance_id)["keypoints"], (-1, 3))
    seen = [(k, x, y) for k, (x, y, v) in enumerate(kp_r) if v == 2 and k in (0, 15, 16)]  # nose, ankles
    assert len(seen) >= 2
    for k, x, y in seen:
        cols = np.flatnonzero(mask_r[int(round(y))])
        assert cols.size and cols.min() - 2 <= x <= cols.max() + 2, (k, x, y, cols)
        assert abs(kp_g[k][0] - x) > 5  # the frame-time point is elsewhere: the correction matters
    assert meta_r["scene"]["readout_s"] == READOUT and meta_g["scene"]["readout_s"] == 0.0
    draws = [sample_scene(np.random.default_rng([0, 0, i]), dict(cfg, motion_blur_prob=1.0, rolling_shutter_prob=p), "f")
             for p in (0.0, 1.0) for i in range(5)]
    assert [d.readout_s for d in draws[:5]] == [0.0] * 5
    assert all(0.01 <= d.readout_s <= 0.03 for d in draws[5:])
    assert math.isclose(draws[0].exposure_s, draws[5].exposure_s)  # drawn after the exposure: it stays
