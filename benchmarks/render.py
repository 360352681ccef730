"""Render benchmark: images/minute, share of wall time outside Cycles, RSS over many frames.

    python benchmarks/render.py --frames 12 --out benchmarks/results/render.json      # speed at 640x480, 32 samples
    python benchmarks/render.py --frames 500 --resolution 160 120 --samples 4 \
        --out benchmarks/results/render_rss_500frames.json                         # memory over a long shard
    git worktree add /tmp/mannequin aa7453a                                          # before/after, same run:
    python benchmarks/render.py --code /tmp/mannequin --config /tmp/mannequin/configs/default.yaml \
        --frames 10 --out benchmarks/results/render_default_mannequin.json
    python benchmarks/render.py --config configs/default.yaml --frames 10 --out benchmarks/results/render_default_bodies.json
    python benchmarks/render.py --frames 100 --resolution 160 120 --samples 4 --persistent-data on \
        --out benchmarks/results/render_rss_100frames_persistent_on.json   # memory growth of the GPU setting, on CPU

Prints a table and writes JSON (and an RSS-curve PNG beside it) for later comparison.
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


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--resolution", type=int, nargs=2, default=[640, 480])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--motion-blur-prob", type=float, default=0.0)
    ap.add_argument("--sensor-noise-prob", type=float, default=0.0)
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="checkout whose renderer is timed (a worktree of an older commit for before/after)")
    ap.add_argument("--config", type=Path, help="time this config's render section (e.g. configs/default.yaml of "
                    "--code) instead of the options above; --frames and --resolution still apply")
    ap.add_argument("--persistent-data", choices=["on", "off"],
                    help="force Cycles' persistent data (the renderer turns it on for GPU renders only)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    from blender.render import _import_bpy, configure_render, render_frame
    from blender.spec import sample_scene
    from pipeline.config import load_config, validate

    if args.config:
        cfg = load_config(args.config)["render"]
        cfg["resolution_px"] = args.resolution
    else:
        cfg = validate({"name": "bench", "seed": 0, "classes": ["pedestrian", "pallet_jack"], "model": {"weights": "none"},
                        "render": {"resolution_px": args.resolution, "samples": args.samples,
                                   "motion_blur_prob": args.motion_blur_prob,
                                   "sensor_noise_prob": args.sensor_noise_prob}})["render"]
    bpy = _import_bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    configure_render(bpy, cfg)
    if args.persistent_data:
        bpy.context.scene.render.use_persistent_data = args.persistent_data == "on"
    rss, cycles_s = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.frames):
            spec = sample_scene(np.random.default_rng([0, 0, i]), cfg, f"b{i:05d}")
            meta = render_frame(bpy, spec, Path(tmp), [0, 0, i])
            cycles_s.append(meta["_render_s"])
            rss.append(rss_mb())
            print(f"frame {i + 1}/{args.frames}: cycles {cycles_s[-1]:.2f} s, rss {rss[-1]:.0f} MB", file=sys.stderr)
    wall = time.perf_counter() - t0
    half = len(rss) // 2
    result = {
        "frames": args.frames, "resolution_px": args.resolution, "samples": cfg["samples"],
        "code": str(args.code.resolve()), "config": str(args.config) if args.config else None,
        "persistent_data": bpy.context.scene.render.use_persistent_data,
        "wall_s": round(wall, 2), "images_per_minute": round(60 * args.frames / wall, 2),
        "cycles_s": round(sum(cycles_s), 2), "outside_cycles_share": round(1 - sum(cycles_s) / wall, 4),
        "rss_mb_first": round(rss[0], 1), "rss_mb_peak": round(max(rss), 1), "rss_mb_last": round(rss[-1], 1),
        "rss_growth_mb_second_half": round(rss[-1] - rss[half], 1) if args.frames > 1 else 0.0,
        "rss_mb_peak_first_200": round(max(rss[:200]), 1),
        # least-squares slope over the second half: flat memory means ~0
        "rss_slope_mb_per_100_frames_second_half": round(100 * float(np.polyfit(np.arange(half, len(rss)), rss[half:], 1)[0]), 3)
        if len(rss) - half > 1 else 0.0,
        "render": {k: cfg[k] for k in ("denoise", "max_bounces", "skylight_prob", "windows_per_wall",
                                       "motion_blur_prob", "sensor_noise_prob")},
        "rss_mb_per_frame": [round(r, 1) for r in rss],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "bpy": bpy.app.version_string},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(1, len(rss) + 1), rss)
    ax.set_xlabel("frame"); ax.set_ylabel("RSS (MB)"); ax.set_title("render process RSS per frame")
    fig.savefig(args.out.with_suffix(".rss.png"), dpi=90, bbox_inches="tight")
    for key in ("frames", "wall_s", "images_per_minute", "outside_cycles_share", "rss_mb_first", "rss_mb_peak",
                "rss_mb_peak_first_200", "rss_growth_mb_second_half", "rss_slope_mb_per_100_frames_second_half"):
        print(f"{key:28s} {result[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
