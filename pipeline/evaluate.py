"""Run the model on a split and score it with pycocotools COCOeval (bbox and segm)."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

from pipeline.analysis import error_analysis, pr_curves
from pipeline.io import read_json, write_json

log = logging.getLogger(__name__)
STAT_NAMES = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"]


def coco_eval(gt: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """COCOeval bbox and segm; returns {iou_type: {stat: value, per_class: {...}}}."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
    results: dict[str, Any] = {}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    for iou_type in ("bbox", "segm"):
        if not predictions or not gt["annotations"]:
            # pycocotools' loadRes cannot take an empty list: no prediction scores 0.
            results[iou_type] = {**{k: 0.0 for k in STAT_NAMES}, "per_class": {n: 0.0 for n in names.values()},
                                 "note": "no predictions" if not predictions else "no ground truth"}
            continue
        # segm from mask-only results, as torchvision's coco_eval.py and detectron2 do: with a bbox
        # present, loadRes sets each detection's area from its box, and unmatched masks land in the
        # wrong small/medium/large bucket.
        dets = [dict(p) if iou_type == "bbox" else {k: v for k, v in p.items() if k != "bbox"} for p in predictions]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            dt = coco_gt.loadRes(dets)
            ev = COCOeval(coco_gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
        per_class = {}
        precision = ev.eval["precision"]  # [T, R, K, A, M]
        for k, cat_id in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            per_class[names[cat_id]] = float(p[p > -1].mean()) if (p > -1).any() else -1.0
        # Only the table: pycocotools also prints timings, which would make the file differ run to run.
        summary = "\n".join(line for line in buf.getvalue().splitlines() if line.lstrip().startswith("Average"))
        results[iou_type] = {**stats, "per_class": per_class, "summary": summary, "pr": pr_curves(ev, names)}
    return results


def general_label_map(category_ids: dict[str, int], zero_shot_map: dict[str, str]) -> dict[int, int]:
    """COCO label of the general model -> category id of the evaluated file, e.g. COCO `person` -> `pedestrian`.

    Classes the map leaves out (pallet_jack: COCO has no such category) get no predictions.
    """
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    coco_names = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    out = {}
    for ours, theirs in zero_shot_map.items():
        if ours not in category_ids:
            raise ValueError(f"compare.zero_shot_map: {ours!r} is not one of the categories {sorted(category_ids)}")
        if theirs not in coco_names:
            raise ValueError(f"compare.zero_shot_map: {theirs!r} is not a COCO category of the general model")
        out[coco_names.index(theirs)] = category_ids[ours]
    return out


def predict(model, dataset, device, score_threshold: float, mask_threshold: float,
            label_map: dict[int, int] | None = None, batch_size: int = 4, workers: int = 0,
            amp: bool = True) -> list[dict[str, Any]]:
    """COCO-format results (bbox xywh, RLE segm, score) for every image of `dataset`.

    One forward pass per batch (float16 autocast on CUDA when `amp`); `dataset` may return
    images only (CocoInstances(targets=False)). The model keeps detections down to
    `score_threshold` (its own default cut is 0.05). `label_map`: model label -> category id
    of the evaluated file; labels it leaves out (the general model's other COCO classes) are dropped.
    """
    import torch
    from tqdm import tqdm

    from pipeline.data import collate
    from pipeline.model import set_score_threshold

    model.eval()
    set_score_threshold(model, score_threshold)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16,
                                                enabled=amp and device.type == "cuda"):
        for images, targets in tqdm(loader, desc="predict", unit="batch", file=sys.stderr):
            preds = model([im.to(device, non_blocking=True) for im in images])
            for target, pred in zip(targets, preds):
                out += [{"image_id": int(target["image_id"]), **a}
                        for a in to_results(pred, score_threshold, mask_threshold, label_map)]
    return out


def to_results(pred: dict[str, Any], score_threshold: float, mask_threshold: float,
               label_map: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """One torchvision detection output -> COCO-style results (category_id, score, xywh bbox, RLE mask)."""
    from pipeline.coco import encode_mask

    out = []
    for box, label, score, mask in zip(pred["boxes"].float().cpu().numpy(), pred["labels"].cpu().numpy(),
                                       pred["scores"].float().cpu().numpy(), pred["masks"].float().cpu().numpy()):
        if score < score_threshold or (label_map is not None and int(label) not in label_map):
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        out.append({"category_id": label_map[int(label)] if label_map is not None else int(label),
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score),
                    "segmentation": encode_mask(mask[0] >= mask_threshold)})
    return out


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import section_arg, section_defaults

    ap = argparse.ArgumentParser(prog="python -m pipeline evaluate", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="fine-tuned checkpoint (model_final.pth or best.pth)")
    src.add_argument("--general-weights", type=Path, metavar="WEIGHTS_JSON",
                     help="zero-shot: the general COCO model of weights.json, labels mapped by --zero-shot-map")
    ap.add_argument("--zero-shot-map", default=json.dumps(section_defaults("compare")["zero_shot_map"]),
                    help="JSON {our class: COCO class}")
    ap.add_argument("--input-size", type=int, nargs=2, metavar=("MIN", "MAX"),
                    help="model input size (shorter side, longer-side cap); default: model.min_size_px/max_size_px")
    ap.add_argument("--ann", type=Path, required=True, help="COCO JSON of the split to evaluate (polygons or RLE)")
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--eval-cfg", type=section_arg("evaluate"), default="{}",
                    help="`evaluate` config section as JSON; keys left out take configs/schema.yaml's defaults")
    ap.add_argument("--model-cfg", type=section_arg("model"), default="{}",
                    help="`model` config section as JSON; keys left out take configs/schema.yaml's defaults")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import torch

    from pipeline.coco import category_labels
    from pipeline.data import CocoInstances, eval_transforms
    from pipeline.model import build_model, load_checkpoint, model_from_checkpoint

    eval_cfg, model_cfg = args.eval_cfg, args.model_cfg
    gt = read_json(args.ann)
    size = tuple(args.input_size or (model_cfg["min_size_px"], model_cfg["max_size_px"]))
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        # categories matched by name: the evaluated file may number them differently (real photos)
        label_map = {label: cat for cat, label in category_labels(gt["categories"], ckpt["classes"], args.ann).items()}
        model = model_from_checkpoint(ckpt, size)
    else:
        info = read_json(args.general_weights)
        if info["kind"] == "none":
            raise ValueError(f"{args.general_weights}: zero-shot needs pretrained weights (model.weights coco or a "
                             "path), not none")
        model = build_model(91, info, 0, *size, replace_heads=False)
        label_map = general_label_map({c["name"]: c["id"] for c in gt["categories"]}, json.loads(args.zero_shot_map))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    dataset = CocoInstances(args.ann, args.image_root, eval_transforms(), targets=False)
    preds = predict(model, dataset, device, eval_cfg["score_threshold"], eval_cfg["mask_threshold"], label_map,
                    eval_cfg.get("batch_size", 4), eval_cfg.get("workers", 0), eval_cfg.get("amp", True))
    metrics = coco_eval(gt, preds)
    thr, iou = eval_cfg["confusion_score_threshold"], eval_cfg["match_iou"]
    metrics["confusion"], metrics["per_image"] = error_analysis(gt, preds, thr, iou)
    metrics["not_detectable"] = sorted(c["name"] for c in gt["categories"] if c["id"] not in label_map.values())
    metrics["num_images"] = len(dataset)
    metrics["num_predictions"] = len(preds)
    metrics["input_size_px"] = list(size)
    metrics["model"] = str(args.checkpoint or f"general COCO model ({args.general_weights})")
    write_json(args.out_dir / "predictions.json", preds, indent=None)
    write_json(args.out_dir / "metrics.json", metrics)
    log.info("segm AP %.3f, bbox AP %.3f over %d images", metrics["segm"]["AP"], metrics["bbox"]["AP"], len(dataset))
    return 0
