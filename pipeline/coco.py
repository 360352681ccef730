"""Rendered shard (ids/*.png + meta/*.json) -> COCO instances JSON with RLE masks."""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from blender.keypoints import KEYPOINTS
from pipeline.io import read_json, write_json

log = logging.getLogger(__name__)


PERSON = "pedestrian"  # the class that carries COCO person keypoints
# COCO's 1-based skeleton over KEYPOINTS (as in person_keypoints_*.json).
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
            [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def categories(classes: list[str]) -> list[dict[str, Any]]:
    """COCO categories: ids 1..N in config order (0 is background, never listed); the pedestrian
    category names its keypoints and skeleton like COCO's person."""
    out = [{"id": i + 1, "name": name, "supercategory": "warehouse"} for i, name in enumerate(classes)]
    for cat in out:
        if cat["name"] == PERSON:
            cat.update(keypoints=list(KEYPOINTS), skeleton=SKELETON)
    return out


def read_instance_map(path: Path) -> np.ndarray:
    """Read a uint16 instance-id PNG; raise naming the file if unreadable."""
    import cv2

    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if ids is None or ids.ndim != 2:
        raise ValueError(f"{path}: missing or unreadable instance map (expected a single-channel 16-bit PNG)")
    return ids


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Binary mask -> compressed RLE with a JSON-safe string `counts`."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def category_labels(cats: list[dict[str, Any]], classes: list[str], source: str | Path) -> dict[int, int]:
    """A COCO file's category id -> the model's label (1 + position of the name in `classes`).

    Matched by name, never by position: real annotation files number their categories as
    their tool did (e.g. pallet_jack 7, pedestrian 3). Any category that has no class, or
    class that has no category, stops with both names listed.
    """
    names = {c["name"]: c["id"] for c in cats}
    unknown = sorted(set(names) - set(classes))
    missing = [c for c in classes if c not in names]
    if unknown or missing:
        raise ValueError(f"{source}: categories {sorted(names)} do not match the model's classes {classes}"
                         + (f"; no class for {unknown}" if unknown else "")
                         + (f"; no category named {missing} (list it, even without annotations)" if missing else "")
                         + " (categories are matched by name)")
    return {names[c]: i + 1 for i, c in enumerate(classes)}


def segmentation_rle(seg: Any, height: int, width: int) -> dict[str, Any]:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) -> compressed RLE.

    Real annotations (CVAT, labelme exports) usually hold polygons; our renders hold RLE.
    """
    if isinstance(seg, list):  # polygons: one object may be several parts
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    if isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(seg, height, width)
    if isinstance(seg, dict) and "counts" in seg:
        return seg
    raise ValueError(f"unknown segmentation format {type(seg).__name__} (expected polygons or RLE)")


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """Any COCO segmentation -> binary HxW uint8 mask."""
    return mask_utils.decode(segmentation_rle(seg, height, width))


def camera_summary(camera: dict[str, Any]) -> dict[str, Any]:
    """A rendered frame's camera in numbers a site can compare with its own: rig, height (m), pitch below
    the horizon and horizontal field of view (degrees), lens distortion (blender/lens.py: 0 a pinhole)."""
    (x, y, z), (tx, ty, tz) = camera["location"], camera["look_at"]
    lens = camera.get("lens") or {}
    hfov = lens.get("hfov_deg", math.degrees(2 * math.atan(camera["sensor_width_mm"] / 2 / camera["focal_mm"])))
    return {"rig": camera.get("rig") or "default", "height_m": round(z, 3),
            "pitch_deg": round(math.degrees(math.atan2(z - tz, math.hypot(tx - x, ty - y))), 2),
            "hfov_deg": round(hfov, 2), "distortion": lens.get("distortion", 0.0)}


def annotate_shard(shard_dir: Path, classes: list[str], min_visible_pixels: int,
                   image_prefix: str = "", min_visibility: float = 0.0) -> dict[str, Any]:
    """Build the COCO dict for one shard; image file names are `image_prefix` + meta file_name."""
    manifest = read_json(shard_dir / "manifest.json")
    cat_ids = {c["name"]: c["id"] for c in categories(classes)}
    images, annotations = [], []
    dropped: list[dict[str, Any]] = []
    for frame in manifest["frames"]:
        meta_path = shard_dir / "meta" / f"{frame}.json"
        meta = read_json(meta_path)
        ids = read_instance_map(shard_dir / meta["ids_file"])
        if ids.shape != (meta["height"], meta["width"]):
            raise ValueError(f"{shard_dir / meta['ids_file']}: size {ids.shape[::-1]} != meta {meta['width']}x{meta['height']}")
        known = {inst["id"] for inst in meta["instances"]}
        unknown = sorted(set(np.unique(ids).tolist()) - known - {0})
        if unknown:
            raise ValueError(f"{meta_path}: instance map holds ids {unknown} that the metadata does not list")
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": image_prefix + meta["file_name"],
                       "width": meta["width"], "height": meta["height"], "frame": frame,
                       # what drew the image (blender/frame_key.py): a re-rendered frame changes every
                       # file downstream, so training notices new pixels even under the same labels
                       "frame_key": meta.get("input_key"),
                       # the camera that saw it (rig, height, pitch, field of view): dataset statistics, site sheets
                       "camera": camera_summary(meta["scene"]["camera"]) if "scene" in meta else {}})
        for inst in meta["instances"]:
            if inst["category"] not in cat_ids:
                raise ValueError(f"{meta_path}: instance {inst['id']} has category {inst['category']!r}, "
                                 f"not in classes {classes}")
            mask = ids == inst["id"]
            area = int(mask.sum())
            visibility = inst.get("visibility", 1.0)  # metadata of renders before amodal counts: visible
            crowd = bool(inst.get("crowd"))
            if crowd and area and inst.get("crowd_box"):
                # an ignore region covers where a detector may see the person, occluded parts too: COCOeval
                # ignores a detection lying (by its IoU threshold) inside it, so the visible pixels alone are too small
                x0, y0, x1, y1 = inst["crowd_box"]
                mask = mask.copy()
                mask[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
            # a crowd region is kept whenever any of it is visible: a missing one turns a detection into a false positive
            if not (crowd and area) and (area < max(1, min_visible_pixels) or visibility < min_visibility):
                dropped.append({"frame": frame, "instance_id": inst["id"], "category": inst["category"],
                                "visible_pixels": area, "visibility": visibility,
                                "reason": "min_visible_pixels" if area < max(1, min_visible_pixels) else "min_visibility"})
                continue
            rle = encode_mask(mask)
            annotations.append({
                "id": 0, "image_id": image_id, "category_id": cat_ids[inst["category"]],
                "segmentation": rle, "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": int(crowd),
                "instance_id": inst["id"],
                "visibility": visibility, "truncation": inst.get("truncation", 0.0),
            })
            if inst["category"] == PERSON:  # bodies without keypoints (assets) and crowd regions: none labelled
                kps = (not crowd and inst.get("keypoints")) or [0] * (3 * len(KEYPOINTS))
                annotations[-1].update(keypoints=kps, num_keypoints=sum(v > 0 for v in kps[2::3]))
            else:  # COCOeval(iouType="keypoints") over every category reads this field: 0 = ignored (crowd regions too)
                annotations[-1]["num_keypoints"] = 0
    for i, ann in enumerate(annotations):
        ann["id"] = i + 1
    log.info("%s: %d images, %d annotations, %d instances dropped (below %d px or visibility %.2f)",
             shard_dir, len(images), len(annotations), len(dropped), min_visible_pixels, min_visibility)
    return {"info": {"description": "hangar-synth synthetic warehouse", "shard": manifest["shard"],
                     "dropped": dropped},
            "images": images, "annotations": annotations, "categories": categories(classes)}


def main(argv: list[str] | None = None) -> int:
    import json

    from pipeline.config import PROCEDURAL_CLASSES, section_defaults

    defaults = section_defaults("annotate")  # configs/schema.yaml's `annotate` section
    ap = argparse.ArgumentParser(prog="python -m pipeline annotate", description="Rendered shard -> COCO JSON.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("shard_dir", type=Path)
    ap.add_argument("--classes", default=json.dumps(list(PROCEDURAL_CLASSES)),
                    help="JSON list of class names (COCO ids 1..N in this order)")
    ap.add_argument("--min-visible-pixels", type=int, default=defaults["min_visible_pixels"],
                    help="drop instances with fewer visible pixels")
    ap.add_argument("--min-visibility", type=float, default=defaults["min_visibility"],
                    help="drop instances less visible than this")
    ap.add_argument("--image-prefix", default="", help="prefix for file_name (path of the shard below the data root)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    coco = annotate_shard(args.shard_dir, json.loads(args.classes), args.min_visible_pixels, args.image_prefix,
                          args.min_visibility)
    write_json(args.out, coco, indent=None)
    return 0


def check_references(coco: dict[str, Any], source: str | Path) -> dict[int, dict[str, Any]]:
    """The three COCO lists exist, ids are unique and every annotation names a listed image and
    category; returns the images by id. The message names the file and the record."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{source}: missing or non-list '{key}' (is this a COCO instances file?)")
    cat_ids = {c["id"] for c in coco["categories"]}
    images = {}
    for im in coco["images"]:
        if im["id"] in images:
            raise ValueError(f"{source}: duplicate image id {im['id']}")
        images[im["id"]] = im
    seen = set()
    for ann in coco["annotations"]:
        where = f"{source}: annotation {ann.get('id')}"
        if ann["id"] in seen:
            raise ValueError(f"{source}: duplicate annotation id {ann['id']}")
        seen.add(ann["id"])
        if ann["image_id"] not in images:
            raise ValueError(f"{where}: image_id {ann['image_id']} is not in images")
        if ann["category_id"] not in cat_ids:
            raise ValueError(f"{where}: category_id {ann['category_id']} not in categories {sorted(cat_ids)}")
    return images


def check_coco(coco: dict[str, Any], source: str | Path) -> None:
    """Reject COCO data the trainer would choke on; the message names the file and the record."""
    images = check_references(coco, source)
    for ann in coco["annotations"]:
        where = f"{source}: annotation {ann.get('id')}"
        im = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        if x < 0 or y < 0 or x + w > im["width"] + 1e-3 or y + h > im["height"] + 1e-3:
            raise ValueError(f"{where}: bbox {ann['bbox']} lies outside the {im['width']}x{im['height']} image")
        if ann.get("area", 0) <= 0:
            raise ValueError(f"{where}: zero-area mask (annotate drops these; was the file edited?)")
