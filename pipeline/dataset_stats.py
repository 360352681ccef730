"""What the cameras of a dataset see, in numbers a site can hold against its own frames.

`python -m pipeline dataset-stats <coco.json ...> --image-root R [--real NAME=ann.json ...] --out-dir D`
writes D/dataset_stats.json and D/dataset_stats.png: per class the height in pixels of the labelled
objects (mask box height: what a detector must find) and their visibility; per camera rig the frames,
camera height, pitch below the horizon and horizontal field of view (from the COCO images' `camera`,
written by annotate). Real sets (`datasets:`, prepared) are drawn beside the synthetic objects' heights:
a site's people at 20 px and the synthetic ones at 90 px is a gap no training setting closes.
With --out-dir, also D/rig_samples.jpg: per rig a row of 4 of its frames, for the report.
With --site-sheets-dir S: S/site_sheet_<rig>.png, 16 full frames of each rig as its camera recorded them.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pipeline.io import atomic_path, read_json, write_json

QUANTILES = (1, 5, 25, 50, 75, 95)
CAMERA_KEYS = ("height_m", "pitch_deg", "hfov_deg", "distortion")


def _pct(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in QUANTILES} if values else {}


def object_heights(coco: dict[str, Any]) -> dict[str, list[float]]:
    """Box height (px) of every non-crowd annotation, per category name."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    out: dict[str, list[float]] = {n: [] for n in names.values()}
    for a in coco["annotations"]:
        if not a.get("iscrowd", 0):
            out[names[a["category_id"]]].append(float(a["bbox"][3]))
    return out


def collect(coco_files: list[Path]) -> dict[str, Any]:
    """Heights, visibilities and cameras of the rendered sets (their COCO files, one per shard)."""
    heights: dict[str, list[float]] = {}
    visibility: dict[str, list[float]] = {}
    rigs: dict[str, dict[str, list[float]]] = {}
    images: dict[str, list[str]] = {}
    for path in coco_files:
        coco = read_json(path)
        names = {c["id"]: c["name"] for c in coco["categories"]}
        for name, h in object_heights(coco).items():
            heights.setdefault(name, []).extend(h)
        for a in coco["annotations"]:
            if not a.get("iscrowd", 0):
                visibility.setdefault(names[a["category_id"]], []).append(float(a.get("visibility", 1.0)))
        for im in coco["images"]:
            cam = im.get("camera") or {}
            if not cam:
                continue
            r = rigs.setdefault(cam["rig"], {k: [] for k in CAMERA_KEYS})
            for k in CAMERA_KEYS:
                r[k].append(float(cam[k]))
            images.setdefault(cam["rig"], []).append(im["file_name"])
    return {"heights": heights, "visibility": visibility, "rigs": rigs, "images": images}


def summary(data: dict[str, Any], real: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    return {
        "objects": {name: {"count": len(h), "height_px": _pct(h),
                           "under_40px": round(float(np.mean(np.array(h) < 40)), 3) if h else None,
                           "visibility": _pct(data["visibility"].get(name, []))}
                    for name, h in sorted(data["heights"].items())},
        "cameras": {rig: {"frames": len(v["height_m"]), **{k: _pct(v[k]) for k in CAMERA_KEYS}}
                    for rig, v in sorted(data["rigs"].items())},
        "real": {set_name: {name: {"count": len(h), "height_px": _pct(h)} for name, h in sorted(hs.items())}
                 for set_name, hs in sorted(real.items())},
    }


def figure(data: dict[str, Any], real: dict[str, dict[str, list[float]]], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted(data["heights"])
    fig, axes = plt.subplots(2, max(3, len(classes) + 1), figsize=(5 * max(3, len(classes) + 1), 8))
    bins = np.geomspace(8, 1024, 36)
    for ax, name in zip(axes[0], classes):
        h = data["heights"][name]
        if h:
            ax.hist(h, bins=bins, density=True, alpha=0.6, label=f"synthetic ({len(h)})")
        for set_name, hs in sorted(real.items()):
            if hs.get(name):
                ax.hist(hs[name], bins=bins, density=True, histtype="step", linewidth=2,
                        label=f"{set_name} ({len(hs[name])})")
        ax.set_xscale("log")
        ax.set_xlabel("object height (px, mask box)")
        ax.set_title(f"{name}: height in pixels")
        ax.legend(fontsize=8)
    ax = axes[0][len(classes)]
    for name in classes:
        v = data["visibility"].get(name, [])
        if v:
            ax.hist(v, bins=np.linspace(0, 1, 21), alpha=0.5, label=name)
    ax.set_xlabel("visible share of the unoccluded silhouette")
    ax.set_title("visibility")
    ax.legend(fontsize=8)
    for ax in axes[0][len(classes) + 1:]:
        ax.axis("off")
    panels = (("height_m", "camera height (m)", np.linspace(0, 10, 21)),
              ("pitch_deg", "pitch below the horizon (deg)", np.linspace(0, 90, 19)),
              ("hfov_deg", "horizontal field of view (deg)", np.linspace(30, 130, 21)))
    for ax, (key, label, b) in zip(axes[1], panels):
        for rig, v in sorted(data["rigs"].items()):
            ax.hist(v[key], bins=b, alpha=0.5, label=f"{rig} ({len(v[key])})")
        ax.set_xlabel(label)
        ax.set_title(f"cameras: {label.split(' (')[0]}")
        if data["rigs"]:
            ax.legend(fontsize=8)
    for ax in axes[1][len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def site_sheet(files: list[str], image_root: Path, count: int = 16, columns: int = 4, width: int = 400) -> Image.Image:
    """`count` full frames (spread over the list: every shard, not its first frames), as recorded."""
    pick = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(count, len(files)))] if files else []
    if not pick:
        raise ValueError("no frames for the site sheet")
    tiles = []
    for f in pick:
        im = Image.open(image_root / f).convert("RGB")
        tiles.append(im.resize((width, round(im.height * width / im.width))))
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    cols = min(columns, len(tiles))
    sheet = Image.new("RGB", (cols * w + (cols - 1) * 6, rows * h + (rows - 1) * 6), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t.resize((w, h)), ((i % cols) * (w + 6), (i // cols) * (h + 6)))
    return sheet


def rig_samples(images: dict[str, list[str]], image_root: Path, per_rig: int = 4, width: int = 240) -> Image.Image:
    """One row per rig: its name and frame count over `per_rig` of its frames (spread over the list)."""
    if not images:
        raise ValueError("no image records a camera (COCO files written before annotate kept it)")
    rows = []
    for rig, files in sorted(images.items()):
        row = site_sheet(files, image_root, count=per_rig, columns=per_rig, width=width)
        band = Image.new("RGB", (row.width, 18), "white")
        ImageDraw.Draw(band).text((2, 3), f"{rig}: {len(files)} frames", fill="black")
        rows += [band, row]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 6 * len(images)), "white")
    y = 0
    for k, r in enumerate(rows):
        sheet.paste(r, (0, y))
        y += r.height + (6 if k % 2 else 0)
    return sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline dataset-stats", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("coco", nargs="+", type=Path, help="rendered COCO files (annotate's, one per shard)")
    ap.add_argument("--image-root", type=Path, required=True, help="folder the COCO file_name entries are relative to")
    ap.add_argument("--real", nargs="*", default=[], metavar="NAME=ANN_JSON",
                    help="a site's prepared sets, drawn beside the synthetic object heights")
    ap.add_argument("--site-sheets-dir", type=Path,
                    help="write only site_sheet_<rig>.png (16 full frames of each rig) into this folder")
    ap.add_argument("--title", default="hangar-synth: dataset statistics")
    ap.add_argument("--out-dir", type=Path, help="folder of dataset_stats.json and .png")
    args = ap.parse_args(argv)
    if not (args.out_dir or args.site_sheets_dir):
        raise SystemExit("give --out-dir (statistics) or --site-sheets-dir (sheets)")
    data = collect(args.coco)
    if args.site_sheets_dir:
        if not data["images"]:
            raise SystemExit(f"{args.coco[0]}: no image records a camera (COCO files written before annotate kept it)")
        # the folder appears whole or not at all: written beside it, then renamed
        args.site_sheets_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.site_sheets_dir.with_name(f".{args.site_sheets_dir.name}.{secrets.token_hex(6)}")
        tmp.mkdir()  # a plain mkdir: the mode the umask gives, as the folder itself would get
        try:
            for rig, files in sorted(data["images"].items()):
                site_sheet(files, args.image_root).save(tmp / f"site_sheet_{rig}.png", format="PNG")
            if args.site_sheets_dir.exists():
                shutil.rmtree(args.site_sheets_dir)
            os.replace(tmp, args.site_sheets_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.out_dir:
        return 0
    real = {}
    for item in args.real:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--real {item!r}: expected NAME=ANN_JSON")
        real[name] = object_heights(read_json(Path(path)))
    if not data["images"]:  # before anything is written: the three files come together or not at all
        raise SystemExit(f"{args.coco[0]}: no image records a camera (COCO files written before annotate kept it): "
                         "re-run annotate")
    stats = summary(data, real)
    write_json(args.out_dir / "dataset_stats.json", stats)
    figure(data, real, args.title, args.out_dir / "dataset_stats.png")
    with atomic_path(args.out_dir / "rig_samples.jpg") as tmp:
        rig_samples(data["images"], args.image_root).save(tmp, format="JPEG", quality=88)
    print(json.dumps(stats["objects"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
