"""Cycles settings: render time against image quality, on the same scenes.

    python benchmarks/render_settings.py --frames 4 --resolution 320 240 \
        --out benchmarks/results/render_settings.json

Every variant renders the same scenes (default config, seeds [0, 9, i]); quality is the
PSNR of its 8-bit RGB against a high-sample reference (`--ref-samples`, denoised), so a
faster setting can be judged by what it costs in noise, not by eye. Prints a table and
writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blender.render import _import_bpy, configure_render, render_frame  # noqa: E402
from blender.spec import sample_scene  # noqa: E402
from pipeline.config import validate  # noqa: E402

# name -> (render config overrides, extra Cycles attributes)
VARIANTS = {
    "32 spp (benchmarks/render.py)": ({}, {}),
    "32 spp, denoise (configs/default.yaml)": ({"denoise": True}, {}),
    "16 spp, denoise": ({"samples": 16, "denoise": True}, {}),
    "8 spp, denoise": ({"samples": 8, "denoise": True}, {}),
    "16 spp, denoise, 2 bounces": ({"samples": 16, "denoise": True, "max_bounces": 2}, {}),
    "16 spp, denoise, fast GI, no caustics": ({"samples": 16, "denoise": True},
                                              {"use_fast_gi": True, "caustics_reflective": False,
                                               "caustics_refractive": False}),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0 ** 2 / mse))  # 99: identical


def render_set(bpy, base: dict, over: dict, extra: dict, frames: int, tmp: Path) -> tuple[list[np.ndarray], float]:
    import cv2

    cfg = {**base, **over}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    configure_render(bpy, cfg)
    for key, value in extra.items():
        setattr(bpy.context.scene.cycles, key, value)
    images, cycles_s = [], 0.0
    for i in range(frames):
        spec = sample_scene(np.random.default_rng([0, 9, i]), base, f"q{i:03d}")
        meta = render_frame(bpy, spec, tmp, [0, 9, i])
        cycles_s += meta["_render_s"]
        images.append(cv2.imread(str(tmp / meta["file_name"])))
        for sub in ("rgb", "ids", "meta"):
            for f in (tmp / sub).glob("*"):
                f.unlink()
    return images, cycles_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--resolution", type=int, nargs=2, default=[320, 240])
    ap.add_argument("--ref-samples", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render_settings.json"))
    args = ap.parse_args(argv)
    from pipeline.config import load_config

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs/default.yaml")["render"]
    base = {**validate({"name": "b", "seed": 0, "classes": ["pedestrian", "pallet_jack"],
                        "model": {"weights": "none"}, "render": {}})["render"],
            **{k: cfg[k] for k in cfg if k not in ("samples", "denoise", "max_bounces")},
            "resolution_px": args.resolution, "samples": 32, "denoise": False, "max_bounces": 4,
            "motion_blur_prob": 0.0, "sensor_noise_prob": 0.0}
    bpy = _import_bpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ref, ref_s = render_set(bpy, base, {"samples": args.ref_samples, "denoise": True}, {}, args.frames, Path(tmp))
        print(f"reference {args.ref_samples} spp denoised: {ref_s / args.frames:.1f} s/frame", file=sys.stderr)
        for name, (over, extra) in VARIANTS.items():
            t0 = time.perf_counter()
            images, cycles_s = render_set(bpy, base, over, extra, args.frames, Path(tmp))
            wall = time.perf_counter() - t0
            quality = [psnr(a, b) for a, b in zip(images, ref)]
            rows.append({"variant": name, "render_over": over, "cycles_attrs": extra,
                         "cycles_s_per_frame": round(cycles_s / args.frames, 2),
                         "wall_s_per_frame": round(wall / args.frames, 2),
                         "psnr_db_mean": round(float(np.mean(quality)), 2),
                         "psnr_db_min": round(float(np.min(quality)), 2)})
            print(f"{name:40s} {rows[-1]['cycles_s_per_frame']:6.2f} s/frame  PSNR {rows[-1]['psnr_db_mean']:5.2f} dB "
                  f"(min {rows[-1]['psnr_db_min']:5.2f})", file=sys.stderr)
    result = {"frames": args.frames, "resolution_px": args.resolution, "reference_samples": args.ref_samples,
              "reference_s_per_frame": round(ref_s / args.frames, 2), "variants": rows,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "bpy": bpy.app.version_string}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'variant':40s} {'s/frame':>8s} {'PSNR dB':>8s}")
    for r in rows:
        print(f"{r['variant']:40s} {r['cycles_s_per_frame']:8.2f} {r['psnr_db_mean']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
