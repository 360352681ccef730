"""Label quality: mask edges agree with the anti-aliased RGB (Cryptomatte majority labels)."""
import cv2
import numpy as np
import pytest

from blender.labels import object_index_map
from blender.pedestrian_spec import pedestrian_params
from blender.spec import CameraSpec, ObjectSpec, SceneSpec
from tests.conftest import run_render, tiny_render_cfg

pytestmark = pytest.mark.slow
K3 = np.ones((3, 3), np.uint8)


def mean_edge_offset_px(mask: np.ndarray, gray: np.ndarray) -> float:
    """Pixels where the mask and the RGB 50% iso-contour disagree, per boundary pixel (~ mean offset in px)."""
    m = mask.astype(np.uint8)
    inner = cv2.erode(m, K3, iterations=2).astype(bool)
    ring = cv2.dilate(m, K3, iterations=4).astype(bool) & ~cv2.dilate(m, K3, iterations=2).astype(bool)
    half = gray > (np.median(gray[inner]) + np.median(gray[ring])) / 2
    band = cv2.dilate(m, K3, iterations=3).astype(bool)
    perimeter = (mask & ~cv2.erode(m, K3).astype(bool)).sum()
    return float(((half ^ mask) & band).sum() / perimeter)


def test_mask_boundary_matches_rgb_half_contour(tmp_path):
    # A white figure on a black floor and walls, lit by the uniform world light only: high contrast.
    p = pedestrian_params(np.random.default_rng(0), tiny_render_cfg())
    white = (1, 1, 1)
    p.update(skin=white, shirt=white, trousers=white, shoes=white, hair=white, gloves=None, hivis=None, helmet=None,
             headwear=None, pose="standing", arms="sides")
    spec = SceneSpec("edge_000", (160, 120), (0, 0, 0), 0.9, (0, 0, 0), CameraSpec((0, -5, 1.0), (0, 0, 0.9), 35.0),
                     [], [ObjectSpec("inst_001", "pedestrian", "pedestrian", 1, (0.0, 0.0, 0.0), 0.0, p)])
    out = tmp_path / "edge"
    res = run_render(tiny_render_cfg(resolution_px=[160, 120], samples=64), out, specs=[spec], keep_exr=True)
    assert res.returncode == 0, res.stderr[-2000:]
    gray = cv2.imread(str(out / "rgb/edge_000.png")).astype(float).mean(axis=2)
    mask = cv2.imread(str(out / "ids/edge_000.png"), cv2.IMREAD_UNCHANGED) == 1
    assert mask.sum() > 300
    crypto = mean_edge_offset_px(mask, gray)
    single_sample = mean_edge_offset_px(object_index_map(out / "exr/edge_000.exr") == 1, gray)
    print(f"mean edge offset: cryptomatte {crypto:.3f} px, object-index pass {single_sample:.3f} px")
    assert crypto < 0.5
    assert crypto <= single_sample + 1e-9
