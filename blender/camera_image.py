"""How a site's camera forms and compresses the image, around the render's conversion to 8 bits.

Pure numpy/OpenCV, no bpy. `draw` picks a frame's steps and their settings from the `render.camera_image`
config (each step with its own share of frames and ranges) and a seeded generator; the result lives in
the scene spec, so the metadata records it and a re-render repeats it. Labels never pass through here:
masks, boxes and keypoints come from the render's passes and stay as they are.

Two stages, as in a camera:
- `optics` on the 16-bit render, in linear light, before auto-exposure meters it and before sensor noise:
  lateral chromatic aberration (red scaled outward and blue inward about the centre, each by `px` at the
  corner) and vignetting (linear gain 1 - strength * (r / r_corner)^2);
- `process` on the 8-bit image after the noise: white balance error (a colour-temperature shift along
  blue-amber and a small green-magenta tint, as gains), tone curve (gamma, then contrast about mid-grey),
  night infrared mode (monochrome; brightness falling off from the centre: a crude stand-in for an IR
  illuminator's cone, not a model of near-infrared reflectance), sharpening (unsharp-mask halos), then the
  stream: scaled down to `scale` (a sub-stream), the timestamp and camera name burnt in, H.264-encoded
  (libx264, an intra frame at a constant rate factor) and/or JPEG-encoded at that size, decoded and scaled
  back up as a viewer shows it.

Grey and tone use integer-exact paths (OpenCV's fixed-point grey, a lookup table) so that bytes do not
depend on the CPU's floating-point functions.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from blender.draw import uniform as _u

# every step, in the order they run (optics first)
OPTICS = ("chromatic_aberration", "vignetting")
STEPS = OPTICS + ("white_balance", "tone", "infrared", "sharpen", "resample", "overlay", "jpeg", "h264")


def draw(rng: np.random.Generator, cfg: dict[str, Any]) -> dict[str, Any]:
    """The steps of one frame and their settings ({} when none is drawn), from `render.camera_image`."""
    out: dict[str, Any] = {}
    for step in STEPS:
        on = rng.random() < cfg[f"{step}_prob"]
        # each step draws the same numbers whether or not it is on, so one share's change moves no other step
        values = {
            "chromatic_aberration": lambda: {"px": round(_u(rng, cfg["chromatic_aberration_px"]), 3)},
            "vignetting": lambda: {"strength": round(_u(rng, cfg["vignetting_strength"]), 3)},
            "white_balance": lambda: _gains(_u(rng, cfg["white_balance_shift"]), _u(rng, cfg["white_balance_tint"])),
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
            "h264": lambda: {"crf": int(rng.integers(cfg["h264_crf"][0], cfg["h264_crf"][1] + 1))},
        }[step]()
        if on:
            out[step] = values
    return out


def _gains(shift: float, tint: float) -> dict[str, Any]:
    """White balance error as channel gains: `shift` in stops along blue-amber, `tint` green-magenta."""
    return {"shift_stops": round(shift, 3), "tint_stops": round(tint, 3),
            "gains_bgr": [round(2 ** -shift, 4), round(2 ** tint, 4), round(2 ** shift, 4)]}


def _scale_about_centre(channel: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    h, w = channel.shape
    m = np.array([[factor, 0, (1 - factor) * (w - 1) / 2], [0, factor, (1 - factor) * (h - 1) / 2]], np.float64)
    return cv2.warpAffine(channel, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _radius2(h: int, w: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the corners (float64 arithmetic only: exact everywhere)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    return ((y - cy) ** 2 + (x - cx) ** 2) / (cy ** 2 + cx ** 2)


def _srgb_table(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(code -> linear) for `bits`-bit sRGB codes, and the sorted linear values at which codes change."""
    x = np.arange(2 ** bits, dtype=np.float64) / (2 ** bits - 1)
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return lin, (lin[1:] + lin[:-1]) / 2


_LIN16 = None


def optics(rgb16: np.ndarray, steps: dict[str, Any]) -> np.ndarray:
    """The lens's part on the 16-bit render (BGR, sRGB-encoded): chromatic aberration and vignetting, in linear
    light; same shape and dtype. Runs before auto-exposure, so metering sees the vignetted image, and before
    sensor noise, so the corners are noisier relative to their signal, as on a sensor."""
    global _LIN16
    if not any(s in steps for s in OPTICS):
        return rgb16
    if _LIN16 is None:
        _LIN16 = _srgb_table(16)
    lin_of, edges = _LIN16
    h, w = rgb16.shape[:2]
    lin = lin_of[rgb16]
    if "chromatic_aberration" in steps:
        factor = 1 + steps["chromatic_aberration"]["px"] / (0.5 * math.hypot(h - 1, w - 1))
        lin[..., 2] = _scale_about_centre(lin[..., 2], factor)  # red outward, blue inward
        lin[..., 0] = _scale_about_centre(lin[..., 0], 1 / factor)
    if "vignetting" in steps:
        lin *= (1 - steps["vignetting"]["strength"] * _radius2(h, w))[..., None]
    return np.searchsorted(edges, lin).astype(np.uint16)  # back to the nearest 16-bit code, exactly


def process(bgr: np.ndarray, steps: dict[str, Any]) -> np.ndarray:
    """The camera's processing and encoding of the 8-bit BGR image (after sensor noise); same shape and dtype."""
    import cv2

    if not any(s in steps for s in STEPS if s not in OPTICS):
        return bgr
    h, w = bgr.shape[:2]
    x = bgr
    if "white_balance" in steps:
        x = np.clip(np.rint(x * np.array(steps["white_balance"]["gains_bgr"], np.float64)), 0, 255).astype(np.uint8)
    if "tone" in steps:
        t = steps["tone"]
        v = 255 * (np.arange(256, dtype=np.float64) / 255) ** t["gamma"]
        x = cv2.LUT(x, np.clip(np.rint(127.5 + (v - 127.5) * t["contrast"]), 0, 255).astype(np.uint8))
    if "infrared" in steps:
        grey = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float64)
        grey = np.clip(np.rint(grey * (1 - steps["infrared"]["falloff"] * _radius2(h, w))), 0, 255).astype(np.uint8)
        x = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if "sharpen" in steps:
        blur = cv2.GaussianBlur(x, (0, 0), 1.2)
        x = cv2.addWeighted(x, 1 + steps["sharpen"]["amount"], blur, -steps["sharpen"]["amount"], 0)
    scale = steps["resample"]["scale"] if "resample" in steps else 1.0
    if scale != 1.0:  # the stream: text and encoding happen at its size, the viewer scales it up
        x = cv2.resize(x, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if "overlay" in steps:
        x = _overlay(x, steps["overlay"])
    if "h264" in steps:  # the video stream, then (with jpeg too) a JPEG snapshot exported from it
        x = h264(x, steps["h264"]["crf"])
    if "jpeg" in steps:
        ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, steps["jpeg"]["quality"]])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode the frame")
        x = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if scale != 1.0:
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    return x


def h264(bgr: np.ndarray, crf: int) -> np.ndarray:
    """The frame through an H.264 encoder and decoder (libx264 in PyAV's FFmpeg): an intra frame at
    constant rate factor `crf` (23 good, 40+ a starved CCTV stream: blocks, smeared texture, the
    deblocking filter's blur) in 4:2:0 chroma, one thread and a fixed preset, so bytes repeat."""
    import av

    h, w = bgr.shape[:2]
    even = np.pad(bgr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # 4:2:0 needs even sizes
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = even.shape[1], even.shape[0]
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"crf": str(int(crf)), "preset": "veryfast", "threads": "1", "keyint": "1"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="bgr24").reformat(format="yuv420p")
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    decoder = av.CodecContext.create("h264", "r")
    decoder.options = {"threads": "1"}
    frames = [f for p in packets for f in decoder.decode(p)] + list(decoder.decode(None))
    if len(frames) != 1:
        raise RuntimeError(f"H.264 round trip gave {len(frames)} frames, expected 1")
    return frames[0].to_ndarray(format="bgr24")[:h, :w]


def _overlay(x: np.ndarray, o: dict[str, Any]) -> np.ndarray:
    """Timestamp (left) and camera name (right), white on a dark outline, along the top or bottom edge."""
    import cv2

    x = x.copy()
    h, w = x.shape[:2]
    size = max(0.15, h / 960)  # in proportion to the stream it is burnt into
    thick = max(1, round(h / 480))
    margin = max(2, round(h / 60))
    for text, right in ((o["time"], False), (o["camera"], True)):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, thick + 2)
        pos = (w - tw - margin if right else margin, margin + th if o["top"] else h - margin - base)
        cv2.putText(x, text, pos, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(x, text, pos, cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), thick, cv2.LINE_AA)
    return x
