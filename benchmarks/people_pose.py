"""BlazePose on crops of rendered pedestrians and pallet jacks (runs in .people-venv, not the project venv).

    .people-venv/bin/python benchmarks/people_pose.py /tmp/people_bench/bodies/coco.json --out pose.json

A crop is square, 1.5x the longer side of the object's box, centred on it, padded with grey where it
leaves the image, resized to 256 px. A crop counts as recognised when BlazePose (static image mode,
model_complexity 1 = pose_landmark_full) finds a pose whose confident landmarks (visibility >= 0.5)
fall mostly (>= 60 %) inside the object's box. Only large, mostly visible objects are scored: box
height >= 80 px, visibility >= 0.8, truncation <= 0.05. On pallet jacks the same test counts false alarms.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

CROP_PX, SCALE, MIN_H, MIN_VIS, MAX_TRUNC, CONF, INSIDE = 256, 1.5, 80, 0.8, 0.05, 0.5, 0.6


def crop(image: np.ndarray, bbox: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Square crop around `bbox` (grey padding), resized to CROP_PX; and the box in crop pixels."""
    x, y, w, h = bbox
    side = SCALE * max(w, h)
    x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
    pad = int(side) + 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    xi, yi = int(round(x0)) + pad, int(round(y0)) + pad
    patch = padded[yi:yi + int(side), xi:xi + int(side)]
    k = CROP_PX / patch.shape[0]
    box = np.array([x - (xi - pad), y - (yi - pad), x + w - (xi - pad), y + h - (yi - pad)]) * k
    return cv2.resize(patch, (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA), box


def recognised(pose, rgb: np.ndarray, box: np.ndarray) -> tuple[bool, list]:
    res = pose.process(rgb)
    if not res.pose_landmarks:
        return False, []
    pts = [(lm.x * CROP_PX, lm.y * CROP_PX) for lm in res.pose_landmarks.landmark if lm.visibility >= CONF]
    if not pts:
        return False, []
    p = np.array(pts)
    inside = (p[:, 0] >= box[0]) & (p[:, 0] <= box[2]) & (p[:, 1] >= box[1]) & (p[:, 1] <= box[3])
    return bool(inside.mean() >= INSIDE), pts


def sheet(tiles: list[np.ndarray], path: Path, cols: int = 10) -> None:
    if not tiles:
        return
    size = 128
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * size, cols * size, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * size:(r + 1) * size, c * size:(c + 1) * size] = cv2.resize(t, (size, size), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("coco", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sheet", type=Path, help="PNG of every scored crop: green border recognised, red not")
    args = ap.parse_args(argv)
    coco = json.loads(args.coco.read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    images = {im["id"]: im for im in coco["images"]}
    counts = {"pedestrian": [0, 0], "pallet_jack": [0, 0]}
    sharpness = {"sharp": [0, 0], "motion_blurred": [0, 0]}  # pedestrians, by whether the frame has motion blur
    by_rig: dict[str, list[int]] = {}  # pedestrians, by the camera rig of their frame (COCO image "camera")
    by_processing = {"plain": [0, 0], "processed": [0, 0], "jpeg": [0, 0], "h264": [0, 0], "no_stream": [0, 0], "infrared": [0, 0]}  # scene.camera_image
    # pedestrians alone in their crop vs sharing it with another person (BlazePose finds one pose per image:
    # with two people in view it may follow the other one, a miss of the test, not of the renderer)
    by_company = {"alone": [0, 0], "with_others": [0, 0]}
    people = {}
    for a in coco["annotations"]:
        if names[a["category_id"]] == "pedestrian" and not a.get("iscrowd", 0):
            people.setdefault(a["image_id"], []).append(a)
    tiles: list[np.ndarray] = []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for ann in sorted(coco["annotations"], key=lambda a: (a["image_id"], a["id"])):
            name = names[ann["category_id"]]
            if (ann["bbox"][3] < MIN_H or ann.get("visibility", 1.0) < MIN_VIS or ann.get("iscrowd", 0)
                    or ann.get("truncation", 0.0) > MAX_TRUNC or name not in counts):
                continue
            bgr = cv2.imread(str(args.coco.parent / images[ann["image_id"]]["file_name"]))
            patch, box = crop(bgr, ann["bbox"])
            hit, pts = recognised(pose, cv2.cvtColor(patch, cv2.COLOR_BGR2RGB), box)
            counts[name][0] += hit
            counts[name][1] += 1
            meta = args.coco.parent / Path(images[ann["image_id"]]["file_name"]).parent.parent / "meta" / \
                f"{images[ann['image_id']]['frame']}.json"
            if name == "pedestrian":
                x, y, w, h = ann["bbox"]
                side = SCALE * max(w, h)
                cx0, cy0 = x + w / 2 - side / 2, y + h / 2 - side / 2
                crowded = any(max(0.0, min(cx0 + side, o["bbox"][0] + o["bbox"][2]) - max(cx0, o["bbox"][0]))
                              * max(0.0, min(cy0 + side, o["bbox"][1] + o["bbox"][3]) - max(cy0, o["bbox"][1]))
                              > 0.25 * o["bbox"][2] * o["bbox"][3] for o in people.get(ann["image_id"], []) if o is not ann)
                by_company["with_others" if crowded else "alone"][0] += hit
                by_company["with_others" if crowded else "alone"][1] += 1
                rig = (images[ann["image_id"]].get("camera") or {}).get("rig", "(not recorded)")
                by_rig.setdefault(rig, [0, 0])
                by_rig[rig][0] += hit
                by_rig[rig][1] += 1
            if name == "pedestrian" and meta.is_file():
                scene = json.loads(meta.read_text())["scene"]
                blurred = scene.get("exposure_s", 0) > 0
                sharpness["motion_blurred" if blurred else "sharp"][0] += hit
                sharpness["motion_blurred" if blurred else "sharp"][1] += 1
                steps = scene.get("camera_image") or {}
                groups = ["processed" if steps else "plain"] + [k for k in ("jpeg", "h264", "infrared") if k in steps]
                groups += ["no_stream"] if not {"jpeg", "h264"} & set(steps) else []
                for g in groups:
                    by_processing[g][0] += hit
                    by_processing[g][1] += 1
            if name == "pedestrian":
                tile = patch.copy()
                for x, y in pts:
                    cv2.circle(tile, (int(x), int(y)), 3, (255, 255, 0), -1)
                cv2.rectangle(tile, (0, 0), (CROP_PX - 1, CROP_PX - 1), (0, 200, 0) if hit else (0, 0, 230), 8)
                tiles.append(tile)
    ped, jack = counts["pedestrian"], counts["pallet_jack"]
    result = {"recognised": round(ped[0] / ped[1], 3) if ped[1] else None, "n": ped[1],
              "jack_false_alarms": jack[0], "jacks": jack[1],
              "by_frame": {k: {"recognised": round(h / n, 3) if n else None, "n": n} for k, (h, n) in sharpness.items()},
              "by_rig": {k: {"recognised": round(h / n, 3) if n else None, "n": n} for k, (h, n) in sorted(by_rig.items())},
              "by_camera_processing": {k: {"recognised": round(h / n, 3) if n else None, "n": n}
                                       for k, (h, n) in by_processing.items()},
              "by_company": {k: {"recognised": round(h / n, 3) if n else None, "n": n} for k, (h, n) in by_company.items()},
              "criteria": {"crop_px": CROP_PX, "crop_scale": SCALE, "min_box_height_px": MIN_H,
                           "min_visibility": MIN_VIS, "max_truncation": MAX_TRUNC,
                           "landmark_visibility": CONF, "inside_box_share": INSIDE},
              "model": f"mediapipe {mp.__version__} pose (static_image_mode, model_complexity 1)"}
    if args.sheet:
        sheet(tiles, args.sheet)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
