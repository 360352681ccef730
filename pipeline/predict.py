"""Run a trained checkpoint on images, folders (with their subfolders) or videos: overlays and COCO results.

    python -m pipeline predict --checkpoint results/smoke/train/model_final.pth cameras/ one.jpg clip.mp4 --out-dir preds/

Everything is named by its path relative to the folder given (a file given itself: its name), and the
subfolder tree is mirrored under --out-dir, so cameras/cam1/frame_0001.png and cameras/cam2/frame_0001.png
do not collide:
  preds/cam1/frame_0001.overlay.png   masks and boxes in class colours (cam2/... beside it)
  preds/clip.overlay.mp4              every frame of a video, overlaid
  preds/images.json                   COCO `images` (id, file_name = that relative path, width, height;
                                      video frames add `frame`) and `categories`: what the ids mean
  preds/results.json                  COCO results: image_id, category_id, bbox [x, y, w, h], score,
                                      segmentation (RLE, counts a str), plus category (name), file_name
                                      (the path as given) and frame (videos)
Load them with pycocotools: COCO("preds/images.json").loadRes("preds/results.json").
Two inputs that would write the same name (two folders both holding x.png) stop before anything runs.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np

from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def collect_inputs(inputs: list[Path], exclude: Path | None = None) -> list[tuple[Path, PurePosixPath]]:
    """Image and video files with their output names: folders searched recursively (sorted, hidden files
    and folders and anything under `exclude` skipped), each file named by its path below the folder
    given; a file given itself is named by its name. Unknown paths and name collisions are errors."""
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    out: list[tuple[Path, PurePosixPath]] = []
    for p in inputs:
        if p.is_dir():
            found = []
            for f in p.rglob("*"):
                rel = f.relative_to(p)
                if (f.suffix.lower() in known and f.is_file() and not any(part.startswith(".") for part in rel.parts)
                        and not (exclude is not None and f.resolve().is_relative_to(exclude.resolve()))):
                    found.append((f, PurePosixPath(rel.as_posix())))
            out += sorted(found, key=lambda item: item[1])
        elif p.is_file() and p.suffix.lower() in known:
            out.append((p, PurePosixPath(p.name)))
        else:
            raise FileNotFoundError(f"{p}: not an image or video file, nor a folder "
                                    f"(images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))})")
    if not out:
        raise FileNotFoundError(f"{', '.join(map(str, inputs))}: no images or videos found")
    seen: dict[PurePosixPath, Path] = {}
    for path, rel in out:
        key = overlay_name(rel)
        if key in seen:
            raise ValueError(f"{seen[key]} and {path} would both be written as {key}: give their common parent "
                             "folder instead, or run predict once per input with its own --out-dir")
        seen[key] = path
    return out


def overlay_name(rel: PurePosixPath) -> PurePosixPath:
    """Where an input's overlay goes below --out-dir (its subfolders kept): x.png -> x.overlay.png, v.mp4 -> v.overlay.mp4."""
    kind = ".mp4" if rel.suffix.lower() in VIDEO_SUFFIXES else ".png"
    return rel.with_name(f"{rel.stem}.overlay{kind}")


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


def predict_images(det: Detector, items: list[tuple[Path, PurePosixPath]], out_dir: Path, batch_size: int,
                   first_id: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """COCO images (ids from `first_id`) and results of `items`; an overlay PNG for each, subfolders kept."""
    from PIL import Image
    from tqdm import tqdm

    from pipeline.contact_sheet import overlay

    images, results = [], []
    for chunk in tqdm(list(batched(items, batch_size)), desc="predict images", unit="batch", file=sys.stderr):
        arrays = [np.asarray(Image.open(p).convert("RGB")).copy() for p, _ in chunk]
        for (path, rel), array, anns in zip(chunk, arrays, det(arrays)):
            image_id = first_id + len(images)
            images.append({"id": image_id, "file_name": str(rel), "width": array.shape[1], "height": array.shape[0]})
            results += [{"image_id": image_id, "file_name": str(path), **a} for a in anns]
            with atomic_path(out_dir / overlay_name(rel)) as tmp:
                Image.fromarray(overlay(array, anns)).save(tmp, format="PNG")
    return images, results


def predict_video(det: Detector, path: Path, rel: PurePosixPath, out_dir: Path, batch_size: int,
                  first_id: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every frame an image (ids from `first_id`, with its `frame` index): COCO images, results, overlay video."""
    import cv2
    from tqdm import tqdm

    from pipeline.contact_sheet import overlay

    frames, fps, count = video_frames(path)
    images, results, writer = [], [], None
    with atomic_path(out_dir / overlay_name(rel)) as tmp:
        bar = tqdm(total=count or None, desc=f"predict {path.name}", unit="frame", file=sys.stderr)
        for chunk in batched(frames, batch_size):
            for array, anns in zip(chunk, det(chunk)):
                k, image_id = len(images), first_id + len(images)
                images.append({"id": image_id, "file_name": str(rel), "frame": k, "width": array.shape[1],
                               "height": array.shape[0]})
                results += [{"image_id": image_id, "file_name": str(path), "frame": k, **a} for a in anns]
                if writer is None:
                    h, w = array.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(np.ascontiguousarray(overlay(array, anns)[:, :, ::-1]))
                bar.update()
        bar.close()
        if writer is None:
            raise ValueError(f"{path}: video has no readable frames")
        writer.release()
    return images, results


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; the description's layout kept."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.required else super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline predict", description=__doc__, formatter_class=_HelpFormatter)
    ap.add_argument("inputs", nargs="+", type=Path,
                    help="image or video files and/or folders of them (searched with their subfolders)")
    ap.add_argument("--checkpoint", type=Path, required=True,
                    help="trained checkpoint: results/<name>/train/model_final.pth or best.pth")
    ap.add_argument("--out-dir", type=Path, required=True,
                    help="folder for the overlays (input subfolders mirrored), images.json and results.json")
    ap.add_argument("--score-threshold", type=float, default=0.5,
                    help="keep detections scoring at least this (0-1)")
    ap.add_argument("--mask-threshold", type=float, default=0.5,
                    help="a pixel belongs to an instance where its mask probability is at least this (0-1)")
    ap.add_argument("--batch-size", type=int, default=4, help="images (or video frames) per forward pass")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from pipeline.coco import categories

    inputs = collect_inputs(args.inputs, exclude=args.out_dir)
    det = Detector(args.checkpoint, args.score_threshold, args.mask_threshold)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    still = [item for item in inputs if item[0].suffix.lower() in IMAGE_SUFFIXES]
    images, results = predict_images(det, still, args.out_dir, args.batch_size) if still else ([], [])
    for path, rel in (item for item in inputs if item[0].suffix.lower() in VIDEO_SUFFIXES):
        more_images, more_results = predict_video(det, path, rel, args.out_dir, args.batch_size, len(images) + 1)
        images += more_images
        results += more_results
    write_json(args.out_dir / "images.json",
               {"info": {"description": f"python -m pipeline predict, {args.checkpoint}"}, "images": images,
                "annotations": [], "categories": categories(det.classes)}, indent=None)
    write_json(args.out_dir / "results.json", results, indent=None)
    log.info("%d inputs, %d images/frames, %d detections -> %s", len(inputs), len(images), len(results), args.out_dir)
    return 0
