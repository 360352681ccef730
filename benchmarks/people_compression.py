"""Stream compression alone against BlazePose: frames rendered with the camera processing off (a
people.py-style set: its COCO file and images) sent through one JPEG quality or one H.264 rate factor
at a time (blender/camera_image.py's own steps), then scored by benchmarks/people_pose.py.

    python benchmarks/people_compression.py --coco /tmp/people_plain/coco.json --work /tmp/compress
    -> benchmarks/results/people_compression.json

How the plain set of the measured figure was made: the frames of `people.py --label site_layout` holding
its large visible people, re-rendered from their saved scenes with `camera_image` emptied (the scene is
otherwise the same: camera_image is drawn from its own generator), then annotated.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {**{f"jpeg_q{q}": {"jpeg": {"quality": q}} for q in (30, 50, 70, 90)},
            **{f"h264_crf{c}": {"h264": {"crf": c}} for c in (26, 32, 38, 44)}}


def main(argv: list[str] | None = None) -> int:
    import cv2

    sys.path.insert(0, str(ROOT))
    from blender.camera_image import process

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, required=True, help="COCO file of the plain set (file names relative to it)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/people_compression"))
    ap.add_argument("--venv", type=Path, default=ROOT / ".people-venv")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "people_compression.json")
    args = ap.parse_args(argv)
    coco = json.loads(args.coco.read_text())
    result = {"coco": str(args.coco), "variants": {}}
    for name, steps in VARIANTS.items():
        d = args.work / name
        shutil.rmtree(d, ignore_errors=True)
        for im in coco["images"]:
            (d / im["file_name"]).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / im["file_name"]), process(cv2.imread(str(args.coco.parent / im["file_name"])), steps))
        (d / "coco.json").write_text(json.dumps(coco))
        subprocess.run([str(args.venv / "bin" / "python"), str(ROOT / "benchmarks" / "people_pose.py"), str(d / "coco.json"),
                        "--out", str(d / "pose.json")], check=True, capture_output=True)
        r = json.loads((d / "pose.json").read_text())
        result["variants"][name] = {"recognised": r["recognised"], "n": r["n"], "alone": r["by_company"]["alone"]}
        print(name, result["variants"][name], flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
