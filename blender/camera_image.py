"""How a site's camera forms and compresses the image, after Cycles and before the PNG is written.

Pure numpy/OpenCV, no bpy. `draw` picks a frame's steps and their settings from the `render.camera_image`
config (each step with its own share of frames and ranges) and a seeded generator; the result lives in
the scene spec, so the metadata records it and a re-render repeats it. `apply` runs them on the 8-bit
BGR image in the order a CCTV camera does (optics, colour processing, encoding). Labels never pass
through here: masks, boxes and keypoints come from the render's passes and stay as they are.

Steps, in order:
- lateral chromatic aberration: red and blue scaled about the centre by +/- `px` at the corner;
- vignetting: brightness times 1 - strength * (r / r_corner)^2;
- white balance error: per-channel gains (blue, green, red);
- tone curve: gamma, then contrast about mid-grey (a camera's response);
- infrared night mode: monochrome, brightness falling off from the centre (the illuminator's cone);
- sharpening: unsharp mask (the halos of in-camera sharpening);
- stream resolution: down to `scale` and back up (a 720p stream shown at 1080p);
- on-screen overlay: a timestamp and a camera name, burnt in;
- JPEG at `quality` (encode, decode).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from blender.draw import uniform as _u

# the order `apply` runs the steps in; `draw` keeps this order in the spec
STEPS = ("chromatic_aberration", "vignetting", "white_balance", "tone", "infrared", "sharpen", "resample",
         "overlay", "jpeg")


def draw(rng: np.random.Generator, cfg: dict[str, Any]) -> dict[str, Any]:
    """The steps of one frame and their settings ({} when none is drawn), from `render.camera_image`."""
    out: dict[str, Any] = {}
    for step in STEPS:
        on = rng.random() < cfg[f"{step}_prob"]
        # each step draws the same numbers whether or not it is on, so one share's change moves no other step
        values = {
            "chromatic_aberration": lambda: {"px": round(_u(rng, cfg["chromatic_aberration_px"]), 3)},
            "vignetting": lambda: {"strength": round(_u(rng, cfg["vignetting_strength"]), 3)},
            "white_balance": lambda: {"gains": [round(_u(rng, cfg["white_balance_gain"]), 3) for _ in range(3)]},
            "tone": lambda: {"gamma": round(_u(rng, cfg["gamma"]), 3), "contrast": round(_u(rng, cfg["contrast"]), 3)},
            "infrared": lambda: {"falloff": round(_u(rng, cfg["infrared_falloff"]), 3)},
            "sharpen": lambda: {"amount": round(_u(rng, cfg["sharpen_amount"]), 3)},
            "resample": lambda: {"scale": round(_u(rng, cfg["resample_scale"]), 3)},
            "overlay": lambda: {"camera": f"CAM {int(rng.integers(1, 40)):02d}",
                                "time": f"2026-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
                                        f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:"
                                        f"{int(rng.integers(0, 60)):02d}",
                                "top": bool(rng.random() < 0.5)},
            "jpeg": lambda: {"quality": int(rng.integers(cfg["jpeg_quality"][0], cfg["jpeg_quality"][1] + 1))},
        }[step]()
        if on:
            out[step] = values
    return out


def _scale_about_centre(channel: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    h, w = channel.shape
    m = np.array([[factor, 0, (1 - factor) * (w - 1) / 2], [0, factor, (1 - factor) * (h - 1) / 2]], np.float32)
    return cv2.warpAffine(channel, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _radius2(h: int, w: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the corners."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    return ((y - cy) ** 2 + (x - cx) ** 2) / (cy ** 2 + cx ** 2)


def apply(bgr: np.ndarray, steps: dict[str, Any]) -> np.ndarray:
    """The 8-bit BGR image as the camera delivers it after `steps` (draw's dict); same shape and dtype."""
    import cv2

    if not steps:
        return bgr
    h, w = bgr.shape[:2]
    x = bgr.astype(np.float32)
    if "chromatic_aberration" in steps:
        px = steps["chromatic_aberration"]["px"]
        factor = 1 + px / (0.5 * float(np.hypot(h, w)))
        x[..., 2] = _scale_about_centre(x[..., 2], factor)  # red outward, blue inward, as a lateral CA
        x[..., 0] = _scale_about_centre(x[..., 0], 1 / factor)
    if "vignetting" in steps:
        x *= (1 - steps["vignetting"]["strength"] * _radius2(h, w))[..., None]
    if "white_balance" in steps:
        x *= np.array(steps["white_balance"]["gains"], np.float32)
    if "tone" in steps:
        t = steps["tone"]
        x = 255 * (np.clip(x, 0, 255) / 255) ** t["gamma"]
        x = 127.5 + (x - 127.5) * t["contrast"]
    if "infrared" in steps:
        grey = np.clip(x, 0, 255) @ np.array([0.114, 0.587, 0.299], np.float32)
        grey *= 1 - steps["infrared"]["falloff"] * _radius2(h, w)
        x = np.repeat(grey[..., None], 3, axis=2)
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if "sharpen" in steps:
        blur = cv2.GaussianBlur(x, (0, 0), 1.2)
        x = cv2.addWeighted(x, 1 + steps["sharpen"]["amount"], blur, -steps["sharpen"]["amount"], 0)
    if "resample" in steps:
        s = steps["resample"]["scale"]
        small = cv2.resize(x, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if "overlay" in steps:
        o = steps["overlay"]
        size = max(0.3, h / 960)
        thick = max(1, round(h / 480))
        y = round(22 * size / 0.5) if o["top"] else h - round(10 * size / 0.5)
        for text, pos in ((o["time"], (round(8 * size / 0.5), y)),
                          (o["camera"], (w - round(150 * size / 0.5), y))):
            cv2.putText(x, text, pos, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
            cv2.putText(x, text, pos, cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), thick, cv2.LINE_AA)
    if "jpeg" in steps:
        ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, steps["jpeg"]["quality"]])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode the frame")
        x = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return x
