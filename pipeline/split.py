"""Merge shard COCO files and split images into train/val/test by a seeded rule."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import read_json, write_json

SPLITS = ("train", "val", "test")


def merge(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate shard COCO dicts, renumbering image and annotation ids."""
    images, anns = [], []
    cats = shards[0]["categories"] if shards else []
    for shard in shards:
        if shard["categories"] != cats:
            raise ValueError("shards disagree on categories: re-annotate them with the same classes")
        remap = {}
        for img in shard["images"]:
            remap[img["id"]] = len(images) + 1
            images.append({**img, "id": remap[img["id"]]})
        for ann in shard["annotations"]:
            anns.append({**ann, "id": len(anns) + 1, "image_id": remap[ann["image_id"]]})
    return {"images": images, "annotations": anns, "categories": cats}


def assign(file_names: list[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Deterministic split: sort names, permute with the seed, cut by fractions (val/test get >=1 if possible)."""
    names = sorted(file_names)
    order = np.random.default_rng([seed, 7]).permutation(len(names))
    n = len(names)
    n_val = int(round(fractions["val"] * n))
    n_test = int(round(fractions["test"] * n))
    if n >= 3:
        n_val = max(n_val, 1 if fractions["val"] > 0 else 0)
        n_test = max(n_test, 1 if fractions["test"] > 0 else 0)
    out = {}
    for rank, idx in enumerate(order):
        out[names[idx]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return out


def split(merged: dict[str, Any], fractions: dict[str, float], seed: int) -> dict[str, dict[str, Any]]:
    """COCO dict per split; annotations follow their image."""
    which = assign([im["file_name"] for im in merged["images"]], fractions, seed)
    out = {}
    for name in SPLITS:
        imgs = [im for im in merged["images"] if which[im["file_name"]] == name]
        keep = {im["id"] for im in imgs}
        out[name] = {"info": {"split": name, "seed": seed}, "images": imgs,
                     "annotations": [a for a in merged["annotations"] if a["image_id"] in keep],
                     "categories": merged["categories"]}
    return out


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import section_arg

    ap = argparse.ArgumentParser(prog="python -m pipeline split", description="Merge shards, split train/val/test.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("shards", nargs="+", type=Path)
    ap.add_argument("--fractions", type=section_arg("split"), default="{}",
                    help='`split` config section as JSON, like {"train":0.7,"val":0.15,"test":0.15}; keys left out '
                         "take configs/schema.yaml's defaults")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    if abs(sum(args.fractions.values()) - 1.0) > 1e-6:
        ap.error(f"--fractions: train + val + test must be 1, got {args.fractions} (give all three)")
    from pipeline.coco import check_coco

    shards = [read_json(p) for p in args.shards]
    for path, shard in zip(args.shards, shards):
        check_coco(shard, path)
    merged = merge(shards)
    if not merged["images"]:
        raise SystemExit(f"{args.shards[0]}: no images in any shard")
    for name, coco in split(merged, args.fractions, args.seed).items():
        write_json(args.out_dir / f"{name}.json", coco, indent=None)
    return 0


def subset(coco: dict[str, Any], num_images: int, source: Path) -> dict[str, Any]:
    """The first `num_images` images of a split (already shuffled by `split`) and their annotations.

    Nested: the 25-image set is part of the 50-image set, so a data-efficiency curve
    measures more data, not different data.
    """
    if num_images > len(coco["images"]):
        raise ValueError(f"{source}: asked for {num_images} training images, the split has only "
                         f"{len(coco['images'])} (lower compare.train_images or render more)")
    images = coco["images"][:num_images]
    keep = {im["id"] for im in images}
    return {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}


def subset_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline subset", description=subset.__doc__.splitlines()[0])
    ap.add_argument("split_json", type=Path)
    ap.add_argument("--images", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    write_json(args.out, subset(read_json(args.split_json), args.images, args.split_json), indent=None)
    return 0
