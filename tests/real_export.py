"""A hand-made "real" labelled set in the shape a CVAT / Label Studio COCO export has: rendered frames
copied into camera subfolders, masks redrawn as polygons, the tool's own category names and ids, other
image and annotation ids, one crowd region (uncompressed RLE), a category we have no class for, a
box-only annotation and a box a little past the image edge. No real photos exist here; the mechanics
are the ones a user's export goes through."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

# their names and ids, as their labelling tool numbered them
THEIR_CATEGORIES = [{"id": 7, "name": "pallet truck", "supercategory": ""},
                    {"id": 3, "name": "person", "supercategory": ""},
                    {"id": 12, "name": "forklift", "supercategory": ""}]
CATEGORY_MAP = {"person": "pedestrian", "pallet truck": "pallet_jack"}
OUR_TO_THEIRS = {"pedestrian": 3, "pallet_jack": 7}


def polygons(mask: np.ndarray) -> list[list[float]]:
    """A binary mask as COCO polygons (one per outer contour of at least 3 points), as CVAT draws them."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def crowd_region(h: int, w: int) -> np.ndarray:
    """A crowd region: the top-left quarter of the frame (people behind a window, say)."""
    region = np.zeros((h, w), dtype=np.uint8)
    region[: h // 2, : w // 2] = 1
    return region


def make_export(shard_coco: dict, shard_dir: Path, out: Path) -> tuple[Path, Path, dict]:
    """(annotation file, images folder, the rendered annotation behind each of theirs: their id -> ours)."""
    images_dir = out / "images"
    names = {c["id"]: c["name"] for c in shard_coco["categories"]}
    images, annotations, behind = [], [], {}
    ann_id = 500
    for k, im in enumerate(shard_coco["images"]):
        rel = f"cam{k + 1}/frame_0001.png"  # same file name in every camera folder
        (images_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shard_dir / im["file_name"], images_dir / rel)
        image_id = 1001 + k
        images.append({"id": image_id, "file_name": rel, "width": im["width"], "height": im["height"],
                       "license": 0, "date_captured": ""})
        for a in (a for a in shard_coco["annotations"] if a["image_id"] == im["id"]):
            mask = mask_utils.decode(a["segmentation"])
            polys = polygons(mask)
            if not polys:
                continue
            ann_id += 1
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, im["height"], im["width"]))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": OUR_TO_THEIRS[names[a["category_id"]]],
                                "segmentation": polys, "area": float(mask_utils.area(rle)), "bbox": [x, y, w, h],
                                "iscrowd": 0, "attributes": {"occluded": False}})
            behind[ann_id] = a["id"]
    first = images[0]
    h, w = first["height"], first["width"]
    # crowd: uncompressed RLE (column-major run lengths), as CVAT writes iscrowd masks
    fortran = np.asfortranarray(crowd_region(h, w))
    counts = mask_utils.encode(fortran)
    uncompressed = {"size": [h, w], "counts": rle_counts(fortran)}
    assert mask_utils.decode(mask_utils.frPyObjects(uncompressed, h, w)).sum() == mask_utils.area(counts)
    extra = [
        {"id": 900, "image_id": first["id"], "category_id": 3, "segmentation": uncompressed,
         "area": float(mask_utils.area(counts)), "bbox": [0.0, 0.0, w // 2, h // 2], "iscrowd": 1},
        {"id": 901, "image_id": first["id"], "category_id": 12,  # forklift: no class of ours
         "segmentation": [[10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]], "area": 400.0,
         "bbox": [10.0, 10.0, 20.0, 20.0], "iscrowd": 0},
        {"id": 902, "image_id": first["id"], "category_id": 3, "segmentation": [], "area": 300.0,  # box only
         "bbox": [40.0, 20.0, 10.0, 30.0], "iscrowd": 0},
    ]
    # a polygon drawn to the edge: its box reaches half a pixel past the right border
    edge = next(a for a in annotations if a["image_id"] == first["id"])
    x, y, bw, bh = edge["bbox"]
    edge["bbox"] = [x, y, w + 0.5 - x, bh]
    coco = {"info": {"description": "CVAT export"}, "licenses": [], "images": images,
            "annotations": annotations + extra, "categories": THEIR_CATEGORIES}
    ann = out / "instances_default.json"
    ann.write_text(json.dumps(coco))
    return ann, images_dir, {"edge_id": edge["id"], "behind": behind}


def rle_counts(fortran: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a binary mask: alternating run lengths in column-major order,
    starting with a run of zeros."""
    flat = fortran.reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs
