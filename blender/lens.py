"""Wide CCTV lenses with barrel distortion, as Cycles renders them (pure numpy: no bpy here).

A lens is drawn as a horizontal field of view and a distortion d in [0, 1]: its mapping from the
angle theta off the optical axis to the radius on the sensor is r = f * ((1 - d) * tan(theta) + d * theta),
rectilinear (a pinhole) at d = 0 and equidistant (a fisheye) at d = 1; CCTV lenses of 2.8-4 mm
on 1/3" sensors lie in between (straight lines bow outwards towards the edges).

Cycles renders such a lens as its panoramic camera FISHEYE_LENS_POLYNOMIAL, which maps the radius r
(mm from the sensor centre) to theta = -(k0 + k1 r + k2 r^2 + k3 r^3 + k4 r^4). The polynomial is fitted
to the mapping above over the image (to its corners; it follows it to < 0.1 px at 640 px wide for
d >= 0.5 up to 100 deg, 0.6 px at 120 deg, but only to ~1.2 % of the radius, 5 px at the corners, for
nearly rectilinear 120-deg lenses, which four powers of r cannot bend up to tan), and then *is* the lens:
the labels (keypoints,
amodal extents) are projected through the polynomial itself (inverted by Newton's method), so they
agree with the render however closely the fit follows the drawn lens.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

SENSOR_WIDTH_MM = 36.0
# Below this distortion the lens is rendered as a pinhole (Cycles' perspective camera) with the same
# field of view: no point moves by more than 0.72 px in a 640-px-wide frame (at 120 deg, the corners).
PINHOLE_BELOW = 0.02


def _mapping(theta: np.ndarray, d: float) -> np.ndarray:
    return (1.0 - d) * np.tan(theta) + d * theta


def lens_model(hfov_deg: float, distortion: float, width: int, height: int) -> dict[str, Any]:
    """The lens of a frame: {"model": "pinhole", "focal_mm"} or {"model": "fisheye_polynomial", "k": [k0..k4]
    (Cycles' signs: theta = -(k0 + k1 r + ...)), "fov_rad", "focal_mm" (the drawn mapping's f)}, with
    sensor_width_mm, hfov_deg and distortion."""
    half = math.radians(hfov_deg) / 2.0
    if not 0.0 < half < math.radians(85.0):
        raise ValueError(f"horizontal field of view {hfov_deg} deg: must lie in (0, 170)")
    d = float(distortion)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"lens distortion {distortion}: must lie in [0, 1]")
    base = {"sensor_width_mm": SENSOR_WIDTH_MM, "hfov_deg": round(float(hfov_deg), 4), "distortion": round(d, 4)}
    half_w = SENSOR_WIDTH_MM / 2.0
    focal = half_w / float(_mapping(np.array(half), d))
    if d < PINHOLE_BELOW:
        return {**base, "model": "pinhole", "focal_mm": round(half_w / math.tan(half), 6)}
    r_corner = half_w * math.hypot(1.0, height / width)
    # angles out to just beyond the image corner (rays there are rendered too)
    theta = np.linspace(0.0, math.pi / 2 * 0.999, 20000)
    r = focal * _mapping(theta, d)
    keep = r <= r_corner * 1.02
    theta, r = theta[keep], r[keep]
    if r[-1] < r_corner:
        raise ValueError(f"lens {hfov_deg} deg, distortion {d}: the image corners lie beyond 90 deg off axis")
    # fitted in units of the corner radius (conditioning), then scaled to mm; the image's side edge
    # weighted heavily, so the horizontal field of view is the one drawn
    s = np.append(r, half_w) / r_corner
    w = np.append(np.ones(len(r)), 1e3 * math.sqrt(len(r)))
    A = np.stack([s, s**2, s**3, s**4], axis=1)
    a = np.linalg.lstsq(A * w[:, None], np.append(theta, half) * w, rcond=None)[0]
    c = a / r_corner ** np.arange(1, 5)
    # 10 significant digits: the spec (and the labels) hold exactly what Cycles gets, whatever the BLAS
    lens = {**base, "model": "fisheye_polynomial", "focal_mm": round(focal, 6),
            "k": [0.0] + [float(f"{-v:.10g}") for v in c]}
    # monotone over the image: one radius per angle (else the inverse, and the image, fold)
    rr = np.linspace(0.0, r_corner * 1.02, 2000)
    if np.any(np.diff(_theta(lens, rr)) <= 0):
        raise ValueError(f"lens {hfov_deg} deg, distortion {d}: its polynomial is not monotone over the image")
    lens["fov_rad"] = round(float(2.0 * _theta(lens, np.array(r_corner * 1.02))), 6)
    # Labels project further out than Cycles renders (amodal extents and truncation count the parts of
    # an object beyond the image): out to 1.5x the corner radius, or as far as the polynomial stays
    # monotone and below 89 deg off axis.
    far = np.linspace(r_corner * 1.02, r_corner * 1.5, 500)
    th = _theta(lens, far)
    ok = (np.diff(th, prepend=th[0] - 1) > 0) & (th < math.radians(89.0))
    last = int(np.argmin(ok)) - 1 if not ok.all() else len(far) - 1
    lens["label_fov_rad"] = round(float(2.0 * th[max(last, 0)]), 6)
    return lens


def _theta(lens: dict[str, Any], r: np.ndarray) -> np.ndarray:
    k = lens["k"]
    return -(k[0] + k[1] * r + k[2] * r**2 + k[3] * r**3 + k[4] * r**4)


def _radius(lens: dict[str, Any], theta: np.ndarray) -> np.ndarray:
    """Sensor radius (mm) of angles theta: the polynomial inverted by Newton's method (as Cycles does)."""
    k = lens["k"]
    r = theta / -k[1]
    for _ in range(30):
        f = _theta(lens, r) - theta
        df = -(k[1] + 2 * k[2] * r + 3 * k[3] * r**2 + 4 * k[4] * r**3)
        r = r - f / df
    return r


def project_camera(cam: np.ndarray, lens: dict[str, Any] | None, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points in OpenCV camera coordinates (3, N) -> pixels (N, 2), in front (inside the lens's field)."""
    if not lens or lens["model"] == "pinhole":
        uvw = K @ cam
        front = cam[2] > 1e-3
        return (uvw[:2] / np.where(front, uvw[2], 1.0)).T, front
    rho = np.hypot(cam[0], cam[1])
    theta = np.arctan2(rho, cam[2])
    front = theta < lens.get("label_fov_rad", lens["fov_rad"]) / 2.0
    r_px = _radius(lens, np.where(front, theta, 0.0)) * K[0, 0] / lens["focal_mm"]  # K[0,0]: px per mm * f
    unit = np.where(rho > 0, 1.0 / np.maximum(rho, 1e-12), 0.0)
    return np.stack([K[0, 2] + cam[0] * unit * r_px, K[1, 2] + cam[1] * unit * r_px], axis=1), front
