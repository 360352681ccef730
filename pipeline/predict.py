"""Run a trained checkpoint on images or folders: overlays (PNG) and COCO-format results JSON.

    python -m pipeline predict --checkpoint results/smoke/train/model_final.pth photos/ one.jpg --out-dir preds/
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def collect_images(inputs: list[Path]) -> list[Path]:
    """Expand folders (sorted, non-recursive) into image files; unknown paths are an error."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: not an image file or folder (video is not supported yet)")
    if not out:
        raise FileNotFoundError(f"{', '.join(map(str, inputs))}: no images found")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline predict", description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders of images")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--score-threshold", type=float, default=0.5)
    ap.add_argument("--mask-threshold", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import torch
    from PIL import Image
    from tqdm import tqdm

    from pipeline.coco import encode_mask
    from pipeline.contact_sheet import overlay
    from pipeline.model import load_checkpoint, model_from_checkpoint

    images = collect_images(args.inputs)
    ckpt = load_checkpoint(args.checkpoint)
    model_cfg = json.loads(ckpt["config"])["model"]
    classes = list(ckpt["classes"])
    model = model_from_checkpoint(ckpt, model_cfg)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    results = []
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), args.batch_size), desc="predict", unit="batch", file=sys.stderr):
            paths = images[start:start + args.batch_size]
            arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
            batch = [torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255).to(device) for a in arrays]
            for path, array, pred in zip(paths, arrays, model(batch)):
                anns = []
                for box, label, score, mask in zip(pred["boxes"].cpu().numpy(), pred["labels"].cpu().numpy(),
                                                   pred["scores"].cpu().numpy(), pred["masks"].cpu().numpy()):
                    if score < args.score_threshold:
                        continue
                    x0, y0, x1, y1 = (float(v) for v in box)
                    anns.append({"file_name": str(path), "category_id": int(label),
                                 "category": classes[int(label) - 1], "score": round(float(score), 4),
                                 "bbox": [x0, y0, x1 - x0, y1 - y0],
                                 "segmentation": encode_mask(mask[0] >= args.mask_threshold)})
                results += anns
                with atomic_path(args.out_dir / f"{path.stem}.overlay.png") as tmp:
                    Image.fromarray(overlay(array, anns)).save(tmp, format="PNG")
    write_json(args.out_dir / "results.json", results, indent=None)
    log.info("%d images, %d detections -> %s", len(images), len(results), args.out_dir)
    return 0
