"""Run a trained checkpoint on images, folders or videos: overlays and COCO-format results JSON.

    python -m pipeline predict --checkpoint results/smoke/train/model_final.pth photos/ one.jpg clip.mp4 --out-dir preds/
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Expand folders (sorted, non-recursive) into image and video files; unknown paths are an error."""
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in known)
        elif p.is_file() and p.suffix.lower() in known:
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: not an image or video file, nor a folder "
                                    f"(images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))})")
    if not out:
        raise FileNotFoundError(f"{', '.join(map(str, inputs))}: no images or videos found")
    return out


def video_frames(path: Path) -> tuple[Iterator[np.ndarray], float, int]:
    """RGB frames of a video (OpenCV), its frame rate and frame count."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames():
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield bgr[:, :, ::-1].copy()
        finally:
            cap.release()
    return frames(), fps, count


def batched(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Detector:
    """A checkpoint ready for inference on RGB uint8 arrays, batched on the GPU when present."""

    def __init__(self, checkpoint: Path, score_threshold: float, mask_threshold: float) -> None:
        import torch

        from pipeline.model import load_checkpoint, model_from_checkpoint, set_score_threshold

        ckpt = load_checkpoint(checkpoint)
        self.classes = list(ckpt["classes"])
        self.model = model_from_checkpoint(ckpt)
        set_score_threshold(self.model, score_threshold)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.score_threshold, self.mask_threshold = score_threshold, mask_threshold

    def __call__(self, arrays: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        import torch

        from pipeline.evaluate import to_results

        batch = [torch.from_numpy(a).permute(2, 0, 1).float().div(255).to(self.device) for a in arrays]
        with torch.inference_mode():
            preds = self.model(batch)
        return [[{**r, "category": self.classes[r["category_id"] - 1], "score": round(r["score"], 4)}
                 for r in to_results(pred, self.score_threshold, self.mask_threshold)] for pred in preds]


def predict_images(det: Detector, paths: list[Path], out_dir: Path, batch_size: int) -> list[dict[str, Any]]:
    from PIL import Image
    from tqdm import tqdm

    from pipeline.contact_sheet import overlay

    results = []
    for chunk in tqdm(list(batched(paths, batch_size)), desc="predict images", unit="batch", file=sys.stderr):
        arrays = [np.asarray(Image.open(p).convert("RGB")).copy() for p in chunk]
        for path, array, anns in zip(chunk, arrays, det(arrays)):
            results += [{"file_name": str(path), **a} for a in anns]
            with atomic_path(out_dir / f"{path.stem}.overlay.png") as tmp:
                Image.fromarray(overlay(array, anns)).save(tmp, format="PNG")
    return results


def predict_video(det: Detector, path: Path, out_dir: Path, batch_size: int) -> list[dict[str, Any]]:
    """Every frame: results with the frame index, and an overlay video (mp4v) beside the PNGs."""
    import cv2
    from tqdm import tqdm

    from pipeline.contact_sheet import overlay

    frames, fps, count = video_frames(path)
    results, writer, k = [], None, 0
    with atomic_path(out_dir / f"{path.stem}.overlay.mp4") as tmp:
        bar = tqdm(total=count or None, desc=f"predict {path.name}", unit="frame", file=sys.stderr)
        for chunk in batched(frames, batch_size):
            for array, anns in zip(chunk, det(chunk)):
                results += [{"file_name": str(path), "frame": k, **a} for a in anns]
                if writer is None:
                    h, w = array.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(np.ascontiguousarray(overlay(array, anns)[:, :, ::-1]))
                k += 1
                bar.update()
        bar.close()
        if writer is None:
            raise ValueError(f"{path}: video has no readable frames")
        writer.release()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline predict", description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="image or video files and/or folders of them")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--score-threshold", type=float, default=0.5)
    ap.add_argument("--mask-threshold", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    inputs = collect_inputs(args.inputs)
    det = Detector(args.checkpoint, args.score_threshold, args.mask_threshold)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    images = [p for p in inputs if p.suffix.lower() in IMAGE_SUFFIXES]
    results = predict_images(det, images, args.out_dir, args.batch_size) if images else []
    for video in (p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES):
        results += predict_video(det, video, args.out_dir, args.batch_size)
    write_json(args.out_dir / "results.json", results, indent=None)
    log.info("%d inputs, %d detections -> %s", len(inputs), len(results), args.out_dir)
    return 0
