"""Cost of the camera's processing and encoding (blender/camera_image.py) per 640x480 frame, per step and
all together, against the render time of a frame at the default config.

    python benchmarks/camera_image.py --out benchmarks/results/camera_image_cost.json

Prints a table and writes JSON: the best of 5 repeats of each timing (the least disturbed by other load),
per step alone and all together, for the lens part (16-bit, linear light) and the processing part (8-bit).
The image is a rendered-like texture; the cost does not depend on content (fixed-size filters, lookups and a
JPEG round trip).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    import cv2

    from blender.camera_image import OPTICS, STEPS, draw, optics, process
    from pipeline.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--frame-s", type=float, default=11.8,
                    help="render time of one default frame to compare with (Cycles s/frame, render_fph_14spp_round*.json)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/camera_image_cost.json"))
    args = ap.parse_args(argv)
    cfg = load_config(ROOT / "configs/default.yaml")["render"]["camera_image"]
    img = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 1.5)
    every = draw(np.random.default_rng(0), {**cfg, **{f"{s}_prob": 1.0 for s in STEPS}})

    img16 = img.astype(np.uint16) * 257

    def run(steps: dict) -> None:
        process((optics(img16, steps) // 257).astype(np.uint8), steps)  # the 8-bit conversion between, as in render

    def ms(steps: dict) -> float:
        run(steps)  # warm-up (OpenCV's first calls, the lens's lookup table)
        return 1000 * min(timeit.repeat(lambda: run(steps), number=args.repeats, repeat=5)) / args.repeats

    rows = {step: round(ms({step: every[step]}), 2) for step in STEPS}
    rows["all steps"] = round(ms(every), 2)
    drawn = [draw(np.random.default_rng(k), cfg) for k in range(200)]
    rows["default mix (mean of 200 draws)"] = round(
        1000 * min(timeit.repeat(lambda: [run(steps) for steps in drawn], number=1, repeat=3)) / len(drawn), 2)
    for name, value in rows.items():
        print(f"{name:36s} {value:8.2f} ms  {100 * value / 1000 / args.frame_s:6.3f} % of a {args.frame_s} s frame")
    result = {"resolution_px": [640, 480], "ms": rows, "frame_s": args.frame_s,
              "share_of_frame_all_steps": round(rows["all steps"] / 1000 / args.frame_s, 5),
              "share_of_frame_default_mix": round(rows["default mix (mean of 200 draws)"] / 1000 / args.frame_s, 5),
              "optics_steps": list(OPTICS),
              "machine": f"{platform.processor() or platform.machine()}, {platform.platform()}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
