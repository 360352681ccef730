"""What a wide lens with barrel distortion (or the aisle layout) costs per frame: the same scenes rendered
through their drawn fisheye-polynomial lens and through a pinhole of the same horizontal field of view
(--what layout: with and without their rack rows), back to back.

Scenes are drawn from a config (its camera rigs; frames whose lens is already a pinhole are skipped),
rendered in one Blender session per variant with `python -m blender.render --specs`, alternating
variant order per round so that neither always runs on a warm or a cold machine. Prints and writes
s/frame per variant and the ratio.

    python benchmarks/lens_cost.py --config configs/default.yaml --frames 6 --rounds 2 \
        --out benchmarks/results/lens_cost.json
    python benchmarks/lens_cost.py --what layout --frames 6 --rounds 2 --out benchmarks/results/layout_cost.json
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender.lens import lens_model  # noqa: E402
from blender.spec import sample_scene  # noqa: E402
from pipeline.config import load_config  # noqa: E402


def render(render_cfg: dict, specs: list, out: Path, threads: int) -> dict:
    path = out.with_suffix(".specs.json")
    path.write_text(json.dumps([s.to_dict() for s in specs]))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "blender.render", "--render-json", json.dumps(render_cfg), "--seed", "0",
                          "--shard", "0", "--out", str(out), "--specs", str(path), "--threads", str(threads)],
                         cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    m = re.search(r"rendered (\d+) frames in ([\d.]+) s \(([\d.]+) s in Cycles\)", res.stderr)
    n, total, cycles = int(m.group(1)), float(m.group(2)), float(m.group(3))
    return {"frames": n, "s_per_frame": round(total / n, 3), "cycles_s_per_frame": round(cycles / n, 3),
            "process_wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--what", choices=["lens", "layout"], default="lens")
    ap.add_argument("--out", default="benchmarks/results/lens_cost.json")
    args = ap.parse_args()
    cfg = load_config(args.config)
    render_cfg = cfg["render"]
    width, height = render_cfg["resolution_px"]
    fisheye, pinhole = [], []
    i = 0
    while len(fisheye) < args.frames:
        spec = sample_scene(np.random.default_rng([cfg["seed"], 0, i]), render_cfg, f"s000_{i:05d}")
        i += 1
        if args.what == "layout":  # "fisheye": with its rack rows, "pinhole": the same scene without them
            if not any(o.name.startswith("ctx_row") for o in spec.objects):
                continue
            fisheye.append(spec)
            bare = copy.deepcopy(spec)
            bare.objects = [o for o in bare.objects if not o.name.startswith("ctx_row")]
            pinhole.append(bare)
            continue
        if spec.camera.lens.get("model") != "fisheye_polynomial":
            continue
        fisheye.append(spec)
        flat = copy.deepcopy(spec)
        lens = lens_model(spec.camera.lens["hfov_deg"], 0.0, width, height)
        flat.camera.lens, flat.camera.focal_mm = lens, lens["focal_mm"]
        pinhole.append(flat)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = (("fisheye", fisheye), ("pinhole", pinhole)) if r % 2 == 0 else (("pinhole", pinhole), ("fisheye", fisheye))
            row = {}
            for name, specs in order:
                row[name] = render(render_cfg, specs, Path(tmp) / f"{name}_{r}", args.threads)
                print(name, row[name], flush=True)
            rounds.append(row)
    fish = np.mean([r["fisheye"]["s_per_frame"] for r in rounds])
    pin = np.mean([r["pinhole"]["s_per_frame"] for r in rounds])
    result = {"config": args.config, "what": args.what, "frames": args.frames, "rounds": rounds, "threads": args.threads,
              "variants": {"lens": "fisheye: drawn lens, pinhole: same hfov", "layout": "fisheye: with rack rows, "
                           "pinhole: the same scene without them"}[args.what],
              "lenses": [s.camera.lens for s in fisheye],
              "fisheye_s_per_frame": round(float(fish), 3), "pinhole_s_per_frame": round(float(pin), 3),
              "fisheye_over_pinhole": round(float(fish / pin), 4)}
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "lenses")}, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
