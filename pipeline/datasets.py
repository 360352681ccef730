"""A site's own labelled frames: a named `datasets:` entry of the config -> (image root, COCO file in
our categories, name map), the one reading of a real set that evaluation, training and the report share.

A CVAT, Label Studio or Roboflow COCO export numbers and names its categories its own way ("person" 1,
"pallet truck" 2), holds polygons, uncompressed RLE for crowd regions, boxes a little past the image
edge and sometimes box-only annotations. `normalize` turns it into a file the rest of the pipeline
reads like a rendered split, following pycocotools' and torchvision's references' conventions:
- categories renamed by `category_map` (their name -> our class; a name equal to one of our classes
  maps to itself), renumbered to ours (1..N in config order); unmapped categories are dropped with one
  log line listing them (or refused, `unmapped: error`);
- `iscrowd` kept (0 when absent): COCOeval ignores crowd regions, training never uses them as
  instances (torchvision's ConvertCocoPolysToMask drops them), error analysis ignores detections in them;
- boxes clipped to the image like the references' ConvertCocoPolysToMask, and annotations left with
  no area, no mask (box-only) or a box under 1 px dropped, each counted in the summary;
- image and annotation ids kept, so a result can be traced back to the export.
"""
from __future__ import annotations

import argparse
import json
import logging
import posixpath
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.coco import categories, check_references, segmentation_rle
from pipeline.io import read_json, write_json

log = logging.getLogger(__name__)


def _category_targets(cats: list[dict[str, Any]], classes: list[str], category_map: dict[str, str],
                      source: str) -> tuple[dict[int, str], list[str]]:
    """(their category id -> our class name, their category names left unmapped)."""
    bad = {k: v for k, v in category_map.items() if v not in classes}
    if bad:
        raise ValueError(f"{source}: category_map {bad} maps to names that are not classes {classes}")
    names = {c["name"] for c in cats}
    stale = sorted(set(category_map) - names)
    if stale:
        log.warning("%s: category_map names %s are not categories of the file (it has %s)", source, stale,
                    sorted(names))
    target, unmapped = {}, []
    for c in cats:
        ours = category_map.get(c["name"], c["name"] if c["name"] in classes else None)
        if ours is None:
            unmapped.append(c["name"])
        else:
            target[c["id"]] = ours
    return target, sorted(unmapped)


def normalize(coco: dict[str, Any], classes: list[str], category_map: dict[str, str], source: str | Path,
              unmapped: str = "drop") -> tuple[dict[str, Any], dict[str, Any]]:
    """(COCO dict in our categories, summary of what was kept, clipped and dropped); see the module doc."""
    source = str(source)
    check_references(coco, source)
    target, left_out = _category_targets(coco["categories"], classes, category_map, source)
    if left_out and unmapped == "error":
        raise ValueError(f"{source}: categories {left_out} map to none of the classes {classes}: add them to "
                         f"category_map or set unmapped: drop")
    ours = {c["name"]: c["id"] for c in categories(classes)}
    their_name = {c["id"]: c["name"] for c in coco["categories"]}
    images = [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in coco["images"]]
    size = {im["id"]: (im["width"], im["height"]) for im in images}
    dropped: Counter = Counter()
    clipped = 0
    annotations = []
    for a in coco["annotations"]:
        where = f"{source}: annotation {a.get('id')}"
        if a["category_id"] not in target:
            dropped[f"category {their_name[a['category_id']]!r}"] += 1
            continue
        w, h = size[a["image_id"]]
        seg = a.get("segmentation")
        if not seg:
            dropped["box only (no mask)"] += 1
            continue
        try:
            rle = segmentation_rle(seg, h, w)
        except (ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"{where}: unreadable segmentation ({exc})") from None
        from pycocotools import mask as mask_utils

        area = float(mask_utils.area(rle))
        x, y, bw, bh = a.get("bbox") or mask_utils.toBbox(rle).tolist()
        x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)
        clipped += (x0, y0, x1, y1) != (x, y, x + bw, y + bh)
        if area <= 0 or x1 - x0 < 1 or y1 - y0 < 1:
            dropped["empty mask or box under 1 px"] += 1
            continue
        annotations.append({"id": a["id"], "image_id": a["image_id"],
                            "category_id": ours[target[a["category_id"]]], "segmentation": seg,
                            "area": area, "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": int(a.get("iscrowd", 0))})
    if left_out:
        log.info("%s: categories %s have no class: their %d annotations are dropped", source, left_out,
                 sum(v for k, v in dropped.items() if k.startswith("category")))
    for why in ("box only (no mask)", "empty mask or box under 1 px"):
        if dropped[why]:
            log.warning("%s: %d annotations dropped: %s", source, dropped[why], why)
    summary = {"images": len(images), "annotations": len(annotations),
               "crowd": sum(a["iscrowd"] for a in annotations),
               "per_class": {c: sum(a["category_id"] == ours[c] and not a["iscrowd"] for a in annotations)
                             for c in classes},
               "category_map": {their_name[i]: n for i, n in target.items()}, "unmapped_categories": left_out,
               "dropped": dict(sorted(dropped.items())), "boxes_clipped": int(clipped)}
    return {"images": images, "annotations": annotations, "categories": categories(classes)}, summary


def check_images(coco: dict[str, Any], root: Path, source: str | Path) -> None:
    """Every image exists under `root` at the size the file says; each image entry gets its file's sha256,
    so a replaced frame changes every file made from the set (and the run key of what trains on it)."""
    from PIL import Image

    from pipeline.io import file_sha256

    for im in coco["images"]:
        path = root / im["file_name"]
        try:
            with Image.open(path) as img:
                w, h = img.size
        except (OSError, FileNotFoundError) as exc:
            raise ValueError(f"{source}: image {im['id']} {path}: cannot read ({exc})") from None
        if (w, h) != (im["width"], im["height"]):
            raise ValueError(f"{source}: image {im['id']} {path} is {w}x{h}, the file says "
                             f"{im['width']}x{im['height']} (rotated by EXIF, or resized after labelling?)")
        im["sha256"] = file_sha256(path)


def split_units(images: list[dict[str, Any]], by: str) -> list[str]:
    """The unit of each image for `split_set`: its file name (by image), or its folder below the folder all
    images share (by folder: `cam1`, `cam2` of `images/cam1/x.png`, `images/cam2/y.png`); an image lying
    in that shared folder itself is a unit of its own (a flat export splits by image)."""
    if by != "folder":
        return [im["file_name"] for im in images]
    dirs = [posixpath.dirname(im["file_name"]) for im in images]
    common = posixpath.commonpath(dirs) if dirs else ""
    units = [d[len(common):].lstrip("/") for d in dirs]
    return [unit or im["file_name"] for unit, im in zip(units, images)]


def split_set(coco: dict[str, Any], fractions: dict[str, float], seed: int, by: str = "folder") -> dict[str, dict[str, Any]]:
    """A prepared set cut into train/val/test by `fractions` (pipeline.split.assign's seeded rule).

    `by: folder` keeps every frame of one folder (a camera, a sequence; `split_units`) in one part:
    consecutive frames of one camera are near copies, and a test frame whose neighbour was trained on
    measures memory, not generalisation. The train part lists its images in a seeded random order, so
    the first N (`subset`, the real-label efficiency curve) are spread over the set rather than its
    first minutes."""
    import numpy as np

    from pipeline.split import SPLITS, assign

    units = dict(zip((im["id"] for im in coco["images"]), split_units(coco["images"], by)))
    which = assign(sorted(set(units.values())), fractions, seed)
    out = {}
    for name in SPLITS:
        imgs = sorted((im for im in coco["images"] if which[units[im["id"]]] == name), key=lambda im: im["file_name"])
        if name == "train":
            imgs = [imgs[i] for i in np.random.default_rng([seed, 11]).permutation(len(imgs))]
        keep = {im["id"] for im in imgs}
        out[name] = {"info": {"split": name, "seed": seed, "by": by,
                              "units": len({units[i] for i in keep})}, "images": imgs,
                     "annotations": [a for a in coco["annotations"] if a["image_id"] in keep],
                     "categories": coco["categories"]}
    return out


def split_main(argv: list[str] | None = None) -> int:
    from pipeline.config import section_defaults

    ap = argparse.ArgumentParser(prog="python -m pipeline split-dataset", description=split_set.__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("ann", type=Path, help="a prepared set (prepare-dataset --out)")
    ap.add_argument("--fractions", type=lambda text: section_defaults("real_train", {"split": json.loads(text)},
                                                                       "--fractions")["split"], default="{}",
                    help='JSON {"train": .., "val": .., "test": ..} summing to 1; keys left out take real_train.split\'s defaults')
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--by", choices=["image", "folder"], default="folder",
                    help="unit of the split: single images, or whole folders (cameras) below the folder all images share")
    ap.add_argument("--out-dir", type=Path, required=True, help="writes train.json, val.json, test.json")
    args = ap.parse_args(argv)
    if abs(sum(args.fractions.values()) - 1.0) > 1e-6 or not args.fractions["train"] or not args.fractions["test"]:
        ap.error(f"--fractions: train + val + test must be 1 with train and test above 0, got {args.fractions}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    coco = read_json(args.ann)
    parts = split_set(coco, args.fractions, args.seed, args.by)
    log.info("%s: %s (split by %s)", args.ann, ", ".join(f"{n} {len(c['images'])} images in {c['info']['units']} units"
                                                     for n, c in parts.items()), args.by)
    for name in ("train", "test"):
        if not parts[name]["images"]:
            raise SystemExit(f"{args.ann}: the split leaves no {name} images ({len(coco['images'])} images in "
                             f"{len(set(split_units(coco['images'], args.by)))} units, by {args.by}): label more frames, "
                             "change real_train.split or use real_train.split_by: image")
    for name, part in parts.items():
        write_json(args.out_dir / f"{name}.json", part, indent=None)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline prepare-dataset", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", type=Path, required=True, help="the set's COCO instances JSON (CVAT/Label Studio export)")
    ap.add_argument("--images", type=Path, required=True, help="folder its file_name entries are relative to")
    ap.add_argument("--classes", required=True, help='the model\'s classes as JSON, e.g. ["pedestrian", "pallet_jack"]')
    ap.add_argument("--category-map", default="{}", help="JSON {their category name: our class} (default: {}, "
                    "names equal to a class map to it)")
    ap.add_argument("--unmapped", choices=["drop", "error"], default="drop",
                    help="categories with no class: drop their annotations (logged) or stop (default: drop)")
    ap.add_argument("--out", type=Path, required=True, help="normalized COCO JSON to write")
    ap.add_argument("--summary", type=Path, help="summary JSON to write (default: beside --out)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    coco, summary = normalize(read_json(args.ann), json.loads(args.classes), json.loads(args.category_map),
                              args.ann, args.unmapped)
    check_images(coco, args.images, args.ann)
    summary = {"source": str(args.ann), "images_root": str(args.images), **summary}
    write_json(args.out, coco, indent=None)
    write_json(args.summary or args.out.with_name("summary.json"), summary)
    log.info("%s: %d images, %d annotations (%d crowd) -> %s", args.ann, summary["images"],
             summary["annotations"], summary["crowd"], args.out)
    return 0
