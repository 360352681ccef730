"""Grid of rendered images with their ground-truth masks overlaid in class colours (a PNG to look at)."""
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
    """Blend each annotation's mask in its class colour and outline its box."""
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
    return np.asarray(img)


def contact_sheet(coco_files: list[Path], image_root: Path, max_images: int = 24, columns: int = 4,
                  thumb_width: int = 320) -> Image.Image:
    """Left: render; right: same render with masks; one row per pair of images."""
    tiles = []
    for path in coco_files:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline contact-sheet", description=__doc__)
    ap.add_argument("coco", nargs="+", type=Path)
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--max-images", type=int, default=24)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    sheet = contact_sheet(args.coco, args.image_root, args.max_images)
    with atomic_path(args.out) as tmp:
        sheet.save(tmp, format="PNG")
    return 0
