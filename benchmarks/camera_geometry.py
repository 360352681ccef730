"""Camera and object-size statistics of a config's scenes, from their specs alone (no render).

For N scene specs drawn as the render does (blender/spec.py, seeds of shard 000), prints and writes:
camera height, pitch below the horizon and horizontal field of view per rig, and the height in pixels
of every labelled person and pallet jack whose centre projects into the image. An object's pixel height
is the vertical extent of its 3-D box (person: 0.5 x 0.3 m x its height; jack: its footprint x 1.2 m)
projected through the frame's lens (blender/lens.py, the same projection as the labels), so it is the
box's and not the mask's: a few pixels taller than a tight mask box, the same for both configs compared.

    python benchmarks/camera_geometry.py --config configs/default.yaml --n 400 \
        --compare-before --out benchmarks/results/camera_geometry.json
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender.lens import project_camera  # noqa: E402
from blender.spec import PALLET_JACK, PEDESTRIAN, sample_scene  # noqa: E402
from pipeline.coco import camera_summary  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.dataset_stats import CAMERA_KEYS  # noqa: E402


def _camera(spec, width: int, height: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """OpenCV world->camera (4x4), K and lens of a spec's camera (as blender/render.camera_matrices)."""
    c = spec.camera
    pos, target = np.array(c.location, float), np.array(c.look_at, float)
    fwd = (target - pos) / np.linalg.norm(target - pos)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = R, -R @ pos
    fx = c.focal_mm / c.sensor_width_mm * width
    K = np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])
    return w2c, K, c.lens or {"model": "pinhole"}


def _box(o) -> np.ndarray:
    if o.category == PEDESTRIAN:
        sx, sy, sz = 0.5, 0.3, o.params.get("height_m", 1.75)
    else:
        sx, sy, sz = 1.55, 0.55, 1.2
    cs, sn = math.cos(o.yaw_rad), math.sin(o.yaw_rad)
    pts = []
    for dx in (-sx / 2, sx / 2):
        for dy in (-sy / 2, sy / 2):
            for z in (0.0, sz):
                pts.append((o.location[0] + cs * dx - sn * dy, o.location[1] + sn * dx + cs * dy, z))
    return np.array(pts + [(o.location[0], o.location[1], sz / 2)])


def measure(render_cfg: dict, n: int, seed: int) -> dict:
    width, height = render_cfg["resolution_px"]
    stats = {"rigs": {}, PEDESTRIAN: [], PALLET_JACK: []}
    for i in range(n):
        spec = sample_scene(np.random.default_rng([seed, 0, i]), render_cfg, f"{i:06d}")
        w2c, K, lens = _camera(spec, width, height)
        cam = camera_summary(asdict(spec.camera))  # as annotate records it ("default": no rigs)
        rig = stats["rigs"].setdefault(cam["rig"], {"frames": 0, **{k: [] for k in CAMERA_KEYS}})
        rig["frames"] += 1
        for k in CAMERA_KEYS:
            rig[k].append(cam[k])
        for o in spec.objects:
            if o.category not in (PEDESTRIAN, PALLET_JACK) or o.params.get("drives"):  # seated drivers: not standing people
                continue
            cam = (w2c @ np.c_[_box(o), np.ones(9)].T)[:3]
            uv, front = project_camera(cam, lens, K)
            if not front.all() or not (0 <= uv[-1, 0] < width and 0 <= uv[-1, 1] < height):
                continue
            stats[o.category].append(float(uv[:-1, 1].max() - uv[:-1, 1].min()))
    return stats


def summary(stats: dict) -> dict:
    def pct(v):
        return {f"p{q}": round(float(np.percentile(v, q)), 1) for q in (1, 5, 25, 50, 75, 95)} if len(v) else {}

    out = {"objects": {cls: {"count": len(stats[cls]), "pixel_height": pct(stats[cls]),
                             "under_40px": round(float(np.mean(np.array(stats[cls]) < 40)), 3) if stats[cls] else None}
                       for cls in (PEDESTRIAN, PALLET_JACK)}, "rigs": {}}
    for name, r in stats["rigs"].items():
        out["rigs"][name] = {"frames": r["frames"], **{k: pct(r[k]) for k in CAMERA_KEYS}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--compare-before", action="store_true",
                    help="also measure the same config with the camera and layout before #25 (render.camera_rigs: {}, aisles_prob, group_prob and lookalike_prob 0, "
                         "object_area_m: 4.5)")
    ap.add_argument("--out", default="benchmarks/results/camera_geometry.json")
    args = ap.parse_args()
    cfg = load_config(args.config)
    result = {"config": args.config, "n_specs": args.n, "seed": cfg["seed"],
              "note": "pixel height: vertical extent of the object's projected 3-D box (person 0.5 x 0.3 m x its height, "
                      "jack 1.55 x 0.55 x 1.2 m); objects whose centre projects into the image",
              "config_as_is": summary(measure(cfg["render"], args.n, cfg["seed"]))}
    if args.compare_before:
        off = copy.deepcopy(cfg["render"])
        off.update(camera_rigs={}, object_area_m=4.5, aisles_prob=0.0, group_prob=0.0, lookalike_prob=0.0)
        result["before"] = summary(measure(off, args.n, cfg["seed"]))
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
