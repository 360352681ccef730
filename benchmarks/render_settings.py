"""Cycles settings: render time against image quality and label agreement, on the same scenes.

    python benchmarks/render_settings.py --frames 4 --out benchmarks/results/render_settings.json

Every variant renders the same scenes (the default config's scene distribution at 640x480 by default,
seeds [0, 9, i], no motion blur or sensor noise so that only the render settings differ). Frames are
interleaved (frame 0 of every variant, then frame 1, ...), so a change in the machine's load falls on
all variants alike. For each variant:
- s/frame: wall time of the whole frame (build, Cycles, labels, files) and Cycles' share, and the
  CPU time of the process (all threads) for the frame: on a shared machine wall time follows the
  other load, CPU time much less, so the speed-up column is the ratio of CPU times;
- PSNR and SSIM of its 8-bit RGB against a high-sample reference (`--ref-samples`, denoised, the
  settings of BEFORE), so a faster setting is judged by what it costs in noise, not by eye;
- mask IoU: each instance's mask against the reference render's, since the labels come from the
  same render (cryptomatte coverage) and must not degrade.
Variants are overrides of BEFORE (the defaults before issue #23), so the table keeps its meaning
when configs/default.yaml changes; "configs/default.yaml" is the current default. Prints a table and
writes JSON; `--ref-cache` keeps the reference renders for a rerun on the same machine.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender.render import _import_bpy, configure_render, render_frame  # noqa: E402
from blender.spec import sample_scene  # noqa: E402
from pipeline.config import load_config  # noqa: E402

# The render settings of configs/default.yaml before issue #23 (Cycles' own defaults for the knobs
# the config did not set then).
BEFORE = {"samples": 16, "denoise": True, "denoise_prefilter": "ACCURATE", "denoise_quality": "HIGH",
          "adaptive_threshold": 0.01, "clamp_indirect": 10.0, "caustics": True, "light_tree": True, "light_portals": False,
          "max_bounces": 4}
REFERENCE = {**BEFORE, "samples": 256}
NEW = {"denoise_prefilter": "NONE", "light_tree": False}  # the defaults #23 chose
COMBO = {"denoise_prefilter": "FAST", "denoise_quality": "BALANCED", "caustics": False}
VARIANTS = {
    "before #23: 16 spp, denoise": {},
    "prefilter FAST": {"denoise_prefilter": "FAST"},
    "prefilter NONE": {"denoise_prefilter": "NONE"},
    "denoise quality BALANCED": {"denoise_quality": "BALANCED"},
    "denoise quality FAST": {"denoise_quality": "FAST"},
    "no caustics": {"caustics": False},
    "clamp indirect 3": {"clamp_indirect": 3.0},
    "light portals": {"light_portals": True},
    "adaptive threshold 0.03": {"adaptive_threshold": 0.03},
    "FAST prefilter + BALANCED + no caustics": COMBO,
    "... + light portals": {**COMBO, "light_portals": True},
    "... + adaptive threshold 0.03": {**COMBO, "adaptive_threshold": 0.03},
    "... at 12 spp": {**COMBO, "samples": 12},
    "overhead: 1 spp, no denoise": {"samples": 1, "denoise": False},
    "16 spp, no denoise": {"denoise": False},
    "prefilter NONE + light tree off": {"denoise_prefilter": "NONE", "light_tree": False},
    "prefilter NONE + light tree off, 12 spp": {"denoise_prefilter": "NONE", "light_tree": False, "samples": 12},
    "prefilter NONE + light tree off, 10 spp": {"denoise_prefilter": "NONE", "light_tree": False, "samples": 10},
    "prefilter NONE + light tree off + portals, 10 spp": {"denoise_prefilter": "NONE", "light_tree": False,
                                                          "light_portals": True, "samples": 10},
    "prefilter NONE + path guiding": {"denoise_prefilter": "NONE", "_cycles": {"use_guiding": True}},
    "prefilter NONE + albedo only": {"denoise_prefilter": "NONE", "_cycles": {"denoising_input_passes": "RGB_ALBEDO"}},
    "prefilter NONE + portals": {"denoise_prefilter": "NONE", "light_portals": True},
    "prefilter NONE + portals, 12 spp": {"denoise_prefilter": "NONE", "light_portals": True, "samples": 12},
    "prefilter NONE + portals, 10 spp": {"denoise_prefilter": "NONE", "light_portals": True, "samples": 10},
    # round 4: light paths and samples on top of the new defaults (prefilter NONE, light tree off)
    "NEW: max bounces 3": {**NEW, "max_bounces": 3},
    "NEW: max bounces 2": {**NEW, "max_bounces": 2},
    "NEW: diffuse and glossy bounces 2": {**NEW, "_cycles": {"diffuse_bounces": 2, "glossy_bounces": 2}},
    "NEW: fast GI after 1 bounce": {**NEW, "_cycles": {"use_fast_gi": True, "fast_gi_method": "REPLACE",
                                                         "ao_bounces_render": 1}},
    "NEW: denoise quality BALANCED": {**NEW, "denoise_quality": "BALANCED"},
    "NEW: 14 spp": {**NEW, "samples": 14},
    "configs/default.yaml": None,  # the current default, whatever it is
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0 ** 2 / mse))  # 99: identical


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""
    import cv2

    x, y = (cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).astype(np.float64) for im in (a, b))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda im: cv2.GaussianBlur(im, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def mask_ious(ids: np.ndarray, ref_ids: np.ndarray) -> list[float]:
    """IoU of each instance's mask (ids > 0) with the reference render's mask of the same id."""
    out = []
    for k in np.union1d(np.unique(ids), np.unique(ref_ids)):
        if k == 0:
            continue
        a, b = ids == k, ref_ids == k
        out.append(float((a & b).sum() / (a | b).sum()))
    return out


def cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def render_one(bpy, cfg: dict, i: int, tmp: Path) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """(rgb, ids, wall s, Cycles s, CPU s) of scene i under render settings `cfg`."""
    import cv2

    bpy.ops.wm.read_factory_settings(use_empty=True)
    configure_render(bpy, cfg)
    for key, value in cfg.get("_cycles", {}).items():  # Cycles settings the config does not expose
        setattr(bpy.context.scene.cycles, key, value)
    spec = sample_scene(np.random.default_rng([0, 9, i]), cfg, f"q{i:03d}")
    t0, c0 = time.perf_counter(), cpu_s()
    meta = render_frame(bpy, spec, tmp, [0, 9, i], light_portals=cfg["light_portals"])
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    rgb = cv2.imread(str(tmp / meta["file_name"]))
    ids = cv2.imread(str(tmp / meta["ids_file"]), cv2.IMREAD_UNCHANGED)
    for sub in ("rgb", "ids", "meta"):
        for f in (tmp / sub).glob("*"):
            f.unlink()
    return rgb, ids, wall, meta["_render_s"], cpu


def main(argv: list[str] | None = None) -> int:
    import cv2
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--resolution", type=int, nargs=2, default=[640, 480])
    ap.add_argument("--ref-samples", type=int, default=256)
    ap.add_argument("--variants", nargs="*", help="names of VARIANTS to run (default: all)")
    ap.add_argument("--ref-cache", type=Path, help="folder keeping the reference renders (reused when present)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render_settings.json"))
    args = ap.parse_args(argv)
    default = load_config(ROOT / "configs/default.yaml")["render"]
    scene = {**default, "resolution_px": args.resolution, "motion_blur_prob": 0.0, "sensor_noise_prob": 0.0}
    names = args.variants or list(VARIANTS)
    configs = {n: scene if VARIANTS[n] is None else {**scene, **BEFORE, **VARIANTS[n]} for n in names}
    ref_cfg = {**scene, **REFERENCE, "samples": args.ref_samples}
    bpy = _import_bpy()
    rows = {n: {"wall": [], "cycles": [], "cpu": [], "psnr": [], "ssim": [], "iou": []} for n in names}
    ref_s = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in tqdm(range(args.frames), desc="scenes", file=sys.stderr):
            cached = args.ref_cache and args.ref_cache / f"ref_{args.resolution[0]}x{args.resolution[1]}_{args.ref_samples}_{i}"
            if cached and cached.with_suffix(".rgb.png").exists():
                ref = cv2.imread(str(cached.with_suffix(".rgb.png")))
                ref_ids = cv2.imread(str(cached.with_suffix(".ids.png")), cv2.IMREAD_UNCHANGED)
            else:
                ref, ref_ids, wall, _, _ = render_one(bpy, ref_cfg, i, tmp)
                ref_s.append(wall)
                if cached:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(cached.with_suffix(".rgb.png")), ref)
                    cv2.imwrite(str(cached.with_suffix(".ids.png")), ref_ids)
            for n in names:
                rgb, ids, wall, cyc, cpu = render_one(bpy, configs[n], i, tmp)
                r = rows[n]
                r["wall"].append(wall), r["cycles"].append(cyc), r["cpu"].append(cpu)
                r["psnr"].append(psnr(rgb, ref)), r["ssim"].append(ssim(rgb, ref)), r["iou"].extend(mask_ious(ids, ref_ids))
                print(f"scene {i} {n:42s} {wall:6.2f} s {cpu:6.2f} CPU s  PSNR {r['psnr'][-1]:5.2f} dB", file=sys.stderr)
    first = names[0]
    base_cpu = float(np.mean(rows[first]["cpu"]))
    table = []
    for n in names:
        r = rows[n]
        table.append({"variant": n, "render": {k: configs[n][k] for k in BEFORE},
                      "cycles_attrs": configs[n].get("_cycles", {}),
                      "wall_s_per_frame": round(float(np.mean(r["wall"])), 2),
                      "cycles_s_per_frame": round(float(np.mean(r["cycles"])), 2),
                      "cpu_s_per_frame": round(float(np.mean(r["cpu"])), 2),
                      "speedup_cpu": round(base_cpu / float(np.mean(r["cpu"])), 3),
                      "psnr_db_mean": round(float(np.mean(r["psnr"])), 2), "psnr_db_min": round(float(np.min(r["psnr"])), 2),
                      "ssim_mean": round(float(np.mean(r["ssim"])), 4),
                      "mask_iou_mean": round(float(np.mean(r["iou"])), 4) if r["iou"] else None,
                      "mask_iou_min": round(float(np.min(r["iou"])), 4) if r["iou"] else None,
                      "psnr_db_per_scene": [round(v, 2) for v in r["psnr"]],
                      "wall_s_per_scene": [round(v, 2) for v in r["wall"]],
                      "cpu_s_per_scene": [round(v, 2) for v in r["cpu"]]})
    result = {"frames": args.frames, "resolution_px": args.resolution, "reference": ref_cfg and {k: ref_cfg[k] for k in BEFORE},
              "reference_s_per_frame": round(float(np.mean(ref_s)), 2) if ref_s else None,
              "speedup_is_relative_to": first, "variants": table,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "bpy": bpy.app.version_string}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'variant':42s} {'s/frame':>8s} {'CPU s':>7s} {'speed':>6s} {'PSNR dB':>8s} {'SSIM':>7s} {'mask IoU':>8s}")
    for r in table:
        print(f"{r['variant']:42s} {r['wall_s_per_frame']:8.2f} {r['cpu_s_per_frame']:7.2f} {r['speedup_cpu']:6.2f} "
              f"{r['psnr_db_mean']:8.2f} {r['ssim_mean']:7.4f} {r['mask_iou_mean'] or 0:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
