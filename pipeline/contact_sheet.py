"""Sheets to look at: rendered images with their ground-truth masks overlaid in class colours, and
crops of one class's instances (people sheet, jack sheet) with mask outline and keypoints."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from pipeline.io import atomic_path, read_json

CLASS_RGB = [(230, 25, 75), (245, 130, 49), (60, 180, 75), (67, 99, 216), (145, 30, 180)]


def class_color(category_id: int) -> tuple[int, int, int]:
    """RGB colour of a COCO category id (1-based), shared by contact sheets, overlays and reports."""
    return CLASS_RGB[(category_id - 1) % len(CLASS_RGB)]


def overlay(image: np.ndarray, anns: list[dict], alpha: float = 0.5) -> np.ndarray:
    """Blend each annotation's mask in its class colour and outline its box ("crowd" on ignore regions)."""
    out = image.astype(np.float32)
    for ann in anns:
        m = mask_utils.decode(ann["segmentation"]).astype(bool)
        color = np.array(class_color(ann["category_id"]), np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * color
    img = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for ann in anns:
        x, y, w, h = ann["bbox"]
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=class_color(ann["category_id"]))
        if ann.get("iscrowd", 0):  # an ignore region (a seated driver), not an instance
            draw.text((x + 2, y + 1), "crowd", fill=class_color(ann["category_id"]))
    return np.asarray(img)


def contact_sheet(coco_files: list[Path], image_root: Path, max_images: int = 24, columns: int = 4,
                  thumb_width: int = 320) -> Image.Image:
    """Left: render; right: same render with masks; one row per pair of images."""
    tiles = []
    for path in coco_files:
        if len(tiles) >= max_images:  # the first shards fill the sheet: the rest are never read
            break
        coco = read_json(path)
        by_img: dict[int, list] = {}
        for a in coco["annotations"]:
            by_img.setdefault(a["image_id"], []).append(a)
        for im in coco["images"]:
            if len(tiles) >= max_images:
                break
            rgb = np.asarray(Image.open(image_root / im["file_name"]).convert("RGB"))
            pair = np.hstack([rgb, overlay(rgb, by_img.get(im["id"], []))])
            tile = Image.fromarray(pair)
            tile = tile.resize((thumb_width * 2, int(tile.height * thumb_width * 2 / tile.width)))
            tiles.append(tile)
    if not tiles:
        raise ValueError(f"{coco_files[0] if coco_files else '?'}: no images for the contact sheet")
    cols = min(columns // 2 or 1, len(tiles))
    rows = -(-len(tiles) // cols)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * w + (cols - 1) * 8, rows * h + (rows - 1) * 8), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * (w + 8), (i // cols) * (h + 8)))
    return sheet


def _crop_tile(rgb: np.ndarray, ann: dict, skeleton: list, size: int, scale: float = 1.3) -> Image.Image:
    """Square crop around an annotation (grey beyond the image), mask outline in its class colour,
    keypoints drawn: visible green, hidden red, skeleton lines between labelled points."""
    x, y, w, h = ann["bbox"]
    side = max(w, h) * scale
    x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
    m = mask_utils.decode(ann["segmentation"]).astype(bool)
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    img = rgb.copy()
    img[edge] = class_color(ann["category_id"])
    tile = Image.fromarray(img).crop((int(x0), int(y0), int(x0 + side), int(y0 + side)))  # pads with black
    k = size / tile.width
    tile = tile.resize((size, size), Image.BILINEAR)
    kps = ann.get("keypoints")
    if kps and ann.get("num_keypoints"):
        draw = ImageDraw.Draw(tile)
        pts = [((px - int(x0)) * k, (py - int(y0)) * k, v) for px, py, v in zip(kps[0::3], kps[1::3], kps[2::3])]
        for a, b in skeleton:
            if pts[a - 1][2] and pts[b - 1][2]:
                draw.line([pts[a - 1][:2], pts[b - 1][:2]], fill=(255, 255, 255), width=1)
        for px, py, v in pts:
            if v:
                draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=(40, 220, 40) if v == 2 else (230, 30, 30))
    return tile


def crop_sheet(coco_files: list[Path], image_root: Path, category: str, count: int = 24, columns: int = 8,
               tile_px: int = 160, min_height_px: int = 48, seed: int = 0) -> Image.Image:
    """`count` crops of `category` instances at least `min_height_px` tall and mostly visible (the
    largest others where too few are), over as many images as possible (one per image first, seeded
    order) so they span scenes and lighting."""
    cands, images, skeleton = [], {}, []
    for f, path in enumerate(coco_files):
        coco = read_json(path)
        cat = next((c for c in coco["categories"] if c["name"] == category), None)
        if cat is None:
            raise ValueError(f"{path}: no category {category!r} (categories: {[c['name'] for c in coco['categories']]})")
        skeleton = cat.get("skeleton", [])
        images.update({(f, im["id"]): im for im in coco["images"]})
        cands += [(f, a) for a in coco["annotations"] if a["category_id"] == cat["id"] and not a.get("iscrowd", 0)]
    if not cands:  # a dataset without this class still gets its (empty) sheet, saying so
        sheet = Image.new("RGB", (tile_px * 3, 40), "white")
        ImageDraw.Draw(sheet).text((8, 12), f"no {category} instances in this dataset", fill=(0, 0, 0))
        return sheet
    big = [c for c in cands if c[1]["bbox"][3] >= min_height_px and c[1].get("visibility", 1.0) >= 0.6]
    if len(big) < count:  # small renders: the largest of the rest
        rest = sorted((c for c in cands if not any(c is b for b in big)), key=lambda c: -c[1]["bbox"][3])
        big += rest[:count - len(big)]
    cands = big
    order = np.random.default_rng(seed).permutation(len(cands))
    seen: set = set()
    first = [i for i in order if (key := (cands[i][0], cands[i][1]["image_id"])) not in seen and not seen.add(key)]
    taken = set(first)
    picked = (first + [i for i in order if i not in taken])[:count]
    tiles = []
    for i in picked:
        f, ann = cands[i]
        rgb = np.asarray(Image.open(image_root / images[(f, ann["image_id"])]["file_name"]).convert("RGB"))
        tiles.append(_crop_tile(rgb, ann, skeleton, tile_px))
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * (tile_px + 4) - 4, rows * (tile_px + 4) - 4), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * (tile_px + 4), (i // cols) * (tile_px + 4)))
    return sheet


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import section_defaults

    ap = argparse.ArgumentParser(prog="python -m pipeline contact-sheet", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("coco", nargs="+", type=Path)
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--max-images", type=int, help="images (crops with --crops) on the sheet; default: "
                    "report.contact_sheet_images (report.crop_sheet_crops with --crops) of configs/schema.yaml")
    ap.add_argument("--crops", metavar="CATEGORY", help="a sheet of crops of this class instead (people, jack sheet)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.max_images is None:
        args.max_images = section_defaults("report")["crop_sheet_crops" if args.crops else "contact_sheet_images"]
    if args.crops:
        sheet = crop_sheet(args.coco, args.image_root, args.crops, args.max_images)
    else:
        sheet = contact_sheet(args.coco, args.image_root, args.max_images)
    with atomic_path(args.out) as tmp:
        sheet.save(tmp, format="PNG")
    return 0
