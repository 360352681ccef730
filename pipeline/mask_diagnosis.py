"""Why a class's masks fail where its boxes work: for each ground-truth instance of one class (pallet_jack by
default), the best-IoU same-class predicted box and, where that box is right (IoU >= 0.5), the predicted
mask's IoU with the ground truth, its fill of the box, the ground truth's own fill, the mask's highest
probability, and the ground truth's connected pieces; summarised by size (COCO small/medium/large) and
visibility, with the class's AP for visible and occluded instances apart.

Predictions come from a predictions.json (binary masks: no probabilities) or from running a checkpoint,
which keeps each mask's probabilities at full image resolution (torchvision pastes them before any cut).
Two controls take detection out: `--oracle-boxes` runs the checkpoint's mask branch on the ground-truth
boxes (the mask head alone), `--ideal M` needs no model and gives the ceiling of an M x M mask head (the
ground truth through torchvision's own target projection and paste).

    python -m pipeline mask-diagnosis --gt test.json --pred predictions.json --out jack_masks.json
    python -m pipeline mask-diagnosis --gt test.json --checkpoint model_final.pth --image-root data \
        --out jack_masks.json
    python -m pipeline mask-diagnosis --gt test.json --checkpoint model_final.pth --image-root data \
        --oracle-boxes --out jack_masks_oracle.json
    python -m pipeline mask-diagnosis --gt test.json --ideal 28 --out jack_masks_ideal28.json
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.io import provenance, read_json, write_json

log = logging.getLogger(__name__)
SMALL, MEDIUM = 32 ** 2, 96 ** 2  # COCOeval's area ranges
VISIBLE = 0.5  # visible fraction (pipeline/coco.py `visibility`: visible / unoccluded-in-frame pixels)


def size_bucket(area: float) -> str:
    return "small" if area < SMALL else "medium" if area < MEDIUM else "large"


def visibility_of(ann: dict[str, Any]) -> tuple[float | None, str]:
    """(visible fraction or None, bucket): renders carry `visibility`; CVAT exports `attributes.occluded`."""
    if ann.get("visibility") is not None:
        v = float(ann["visibility"])
        return v, "visible" if v >= VISIBLE else "occluded"
    occluded = (ann.get("attributes") or {}).get("occluded")
    if occluded is not None:
        return None, "occluded" if occluded else "visible"
    return None, "unknown"


def pieces(mask: np.ndarray) -> int:
    """Connected parts of a binary mask (8-connectivity): a jack's handle may be cut off from its forks."""
    import cv2

    return int(cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def image_rows(im: dict[str, Any], gts: list[dict[str, Any]], dets: list[dict[str, Any]],
               box_iou_min: float = 0.5) -> list[dict[str, Any]]:
    """One row per ground-truth instance of one image; `dets` of the same class: bbox, score, RLE
    segmentation and, from a model run, `prob` (HxW float mask probabilities)."""
    from pipeline.coco import segmentation_rle

    h, w = im["height"], im["width"]
    rles = [segmentation_rle(g["segmentation"], h, w) for g in gts]
    box_ious = (np.asarray(mask_utils.iou([d["bbox"] for d in dets], [g["bbox"] for g in gts], [0] * len(gts)))
                .reshape(len(dets), len(gts)) if dets and gts else np.zeros((len(dets), len(gts))))
    rows = []
    for j, (g, rle) in enumerate(zip(gts, rles)):
        gt_mask = mask_utils.decode(rle)
        area = float(gt_mask.sum())
        vis, bucket = visibility_of(g)
        gx, gy, gw, gh = g["bbox"]
        row = {"image_id": im["id"], "ann_id": g["id"], "area": area, "size": size_bucket(area), "visibility": vis,
               "visibility_bucket": bucket, "pieces": pieces(gt_mask), "gt_fill": _r(area / max(gw * gh, 1e-9)),
               "box_iou": 0.0, "box_correct": False, "score": None, "mask_iou": None, "pred_fill": None,
               "max_prob": None, "mean_prob_on_gt": None}
        if dets:
            i = int(np.argmax(box_ious[:, j]))
            d = dets[i]
            x, y, bw, bh = d["bbox"]
            pred = mask_utils.decode(d["segmentation"])
            row.update(box_iou=_r(box_ious[i, j]), box_correct=bool(box_ious[i, j] >= box_iou_min),
                       score=_r(d["score"]),
                       mask_iou=_r(mask_utils.iou([d["segmentation"]], [rle], [0])[0][0]),
                       pred_fill=_r(pred.sum() / max(bw * bh, 1e-9)))
            if d.get("prob") is not None:
                p = d["prob"]
                x0, y0 = min(max(int(np.floor(x)), 0), w - 1), min(max(int(np.floor(y)), 0), h - 1)
                x1, y1 = max(int(np.ceil(x + bw)), x0 + 1), max(int(np.ceil(y + bh)), y0 + 1)  # >= 1 pixel
                row.update(max_prob=_r(p[y0:y1, x0:x1].max()), mean_prob_on_gt=_r(p[gt_mask > 0].mean()))
        rows.append(row)
    return rows


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return _r(np.median(values)) if values else None


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per group (all, each size, each visibility bucket): counts, and medians over box-correct rows."""
    groups = [("all", rows)]
    groups += [(f"size={s}", [r for r in rows if r["size"] == s]) for s in ("small", "medium", "large")]
    groups += [(f"visibility={b}", [r for r in rows if r["visibility_bucket"] == b])
               for b in ("visible", "occluded", "unknown")]
    out = []
    for name, group in groups:
        ok = [r for r in group if r["box_correct"]]
        out.append({"group": name, "n": len(group), "box_correct": len(ok),
                    "share_mask_iou_50": _r(np.mean([r["mask_iou"] >= 0.5 for r in ok])) if ok else None,
                    **{f"median_{k}": _median([r[k] for r in ok])
                       for k in ("mask_iou", "pred_fill", "gt_fill", "max_prob", "mean_prob_on_gt", "pieces")}})
    return [o for o in out if o["n"]]


def _ignoring(cat_id: int, ignore: set[int]):
    """A COCOeval class over one category that treats the annotation ids in `ignore` as ignored ground truth.

    pycocotools' _prepare overwrites any `ignore` of the annotations with `iscrowd`, so the flag is set
    after it; evaluateImg then handles it as ground truth out of the area range: a detection on it is
    neither hit nor false positive."""
    from pycocotools.cocoeval import COCOeval

    class Ignoring(COCOeval):
        def __init__(self, *args):
            super().__init__(*args)
            self.params.catIds = [cat_id]

        def _prepare(self):
            super()._prepare()
            for anns in self._gts.values():
                for g in anns:
                    g["ignore"] = int(g["ignore"] or g["id"] in ignore)

    return Ignoring


def visibility_ap(gt: dict[str, Any], preds: list[dict[str, Any]], cat_id: int,
                  groups: tuple[str, ...] = ("all", "visible", "occluded")) -> dict[str, Any]:
    """AP and AP50 (segm, bbox) of one class over all its instances, then its visible and its occluded
    instances apart, the other bucket's ground truth ignored."""
    from pipeline.bootstrap import Tables, coco_gt, evaluated

    # crowd regions (a seated driver, say) stay crowd in both: COCOeval already ignores them
    buckets = {a["id"]: visibility_of(a)[1] for a in gt["annotations"]
               if a["category_id"] == cat_id and not a.get("iscrowd", 0)}
    coco = coco_gt(gt)
    img_ids = sorted(coco.getImgIds())
    index = {i: k for k, i in enumerate(img_ids)}
    preds = [p for p in preds if p["category_id"] == cat_id]
    out: dict[str, Any] = {}
    for bucket in groups:
        ignore = {i for i, b in buckets.items() if b != bucket and bucket != "all"}
        n = sum(b == bucket or bucket == "all" for b in buckets.values())
        counts = {cat_id: np.zeros(len(img_ids))}  # only read when no detection of the class exists
        for a in gt["annotations"]:
            if a["category_id"] == cat_id and a["id"] not in ignore and not a.get("iscrowd", 0):
                counts[cat_id][index[a["image_id"]]] += 1
        out[bucket] = {"n": n}
        for iou_type in ("segm", "bbox"):
            ev = evaluated(coco, preds, iou_type, _ignoring(cat_id, ignore))
            s = Tables(ev, [cat_id], img_ids, counts).scores(np.ones(len(img_ids)))
            out[bucket][iou_type] = {"AP": _r(s[0, 0]) if n else None, "AP50": _r(s[1, 0]) if n else None}
    return out


def _by_image(gt: dict[str, Any], cat_id: int):
    gts: dict[int, list] = {im["id"]: [] for im in gt["images"]}
    for a in gt["annotations"]:
        if a["category_id"] == cat_id and not a.get("iscrowd", 0):
            gts[a["image_id"]].append(a)
    return gts


def from_predictions(preds: list[dict[str, Any]], cat_id: int, score_threshold: float
                     ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(image id, its detections of the class) from COCO results; masks only binary."""
    by: dict[int, list] = {}
    for p in preds:
        if p["category_id"] == cat_id and p["score"] >= score_threshold:
            by.setdefault(p["image_id"], []).append(p)
    yield from by.items()


def from_checkpoint(checkpoint: Path, gt_path: Path, image_root: Path, category: str, score_threshold: float,
                    mask_threshold: float = 0.5, device: str = "cpu") -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(image id, its detections of the class with `prob` maps) from running the checkpoint on each image."""
    import torch

    from pipeline.coco import category_labels, encode_mask
    from pipeline.data import CocoInstances, eval_transforms
    from pipeline.export import load_model
    from pipeline.model import set_score_threshold

    model = load_model(checkpoint, device)
    set_score_threshold(model, score_threshold)
    dataset = CocoInstances(gt_path, image_root, eval_transforms(), targets=False)
    labels = category_labels(dataset.coco["categories"], model.categories[1:], gt_path)
    cat_id = next(c["id"] for c in dataset.coco["categories"] if c["name"] == category)
    with torch.inference_mode():
        for k in range(len(dataset)):
            image, meta = dataset[k]
            out = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
            dets = []
            for box, label, score, prob in zip(out["boxes"].numpy(), out["labels"].numpy(), out["scores"].numpy(),
                                               out["masks"][:, 0].numpy()):
                if int(label) != labels[cat_id]:
                    continue
                x0, y0, x1, y1 = (float(v) for v in box)
                dets.append({"image_id": meta["image_id"], "category_id": cat_id, "score": float(score),
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": encode_mask(prob >= mask_threshold),
                             "prob": prob})
            yield meta["image_id"], dets


def _gt_boxes(anns: list[dict[str, Any]]):
    import torch

    return torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32)


def ideal_detections(gt: dict[str, Any], category: str, resolution: int, aligned: bool = False
                     ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """What a mask head of `resolution` x `resolution` outputs gives when it reproduces its training target
    exactly: for every ground-truth instance of the class, its own box, and as its mask the ground truth
    projected onto the box's grid the way torchvision builds the target (`project_masks_on_boxes`: roi_align
    of the mask over the box), pasted back with `paste_masks_in_image` and cut at 0.5, as a prediction
    would be. Not a strict bound (another soft mask could cut better), but the head's loss optimum. At the
    frames' own resolution: the model's input scale where min_size_px is the frame height (the configs'
    default input size), not for an upscaled input. `aligned=True` projects with the half-pixel correction
    (RoIAlign's `aligned`, detectron2's ROIAlignV2) instead of torchvision's `aligned=False`: a what-if."""
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    from torchvision.ops import roi_align

    from pipeline.coco import encode_mask, segmentation_rle

    cat_id = {c["name"]: c["id"] for c in gt["categories"]}[category]
    images = {im["id"]: im for im in gt["images"]}
    for i, anns in _by_image(gt, cat_id).items():
        if not anns:
            continue
        h, w = images[i]["height"], images[i]["width"]
        masks = torch.from_numpy(np.stack([mask_utils.decode(segmentation_rle(a["segmentation"], h, w))
                                           for a in anns])).float()
        boxes = _gt_boxes(anns)
        rois = torch.cat([torch.arange(len(anns), dtype=torch.float32)[:, None], boxes], dim=1)
        targets = roi_align(masks[:, None], rois, (resolution, resolution), 1.0, aligned=aligned)[:, 0]
        probs = paste_masks_in_image(targets[:, None], boxes, (h, w), padding=1)[:, 0].numpy()
        yield i, [{"image_id": i, "category_id": cat_id, "score": 1.0, "bbox": a["bbox"],
                   "segmentation": encode_mask(p >= 0.5), "prob": p} for a, p in zip(anns, probs)]


def oracle_detections(checkpoint: Path, gt_path: Path, image_root: Path, category: str,
                      mask_threshold: float = 0.5, device: str = "cpu") -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The checkpoint's mask branch on the ground-truth boxes: its own transform, backbone, mask RoIAlign,
    mask head and predictor (the class's channel), pasted as its postprocess pastes. Detection is taken
    out of the question: every instance has its right box, so what is left is the mask head alone."""
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    from pipeline.coco import category_labels, encode_mask
    from pipeline.data import CocoInstances, eval_transforms
    from pipeline.export import load_model

    model = load_model(checkpoint, device)
    dataset = CocoInstances(gt_path, image_root, eval_transforms(), targets=False)
    labels = category_labels(dataset.coco["categories"], model.categories[1:], gt_path)
    cat_id = next(c["id"] for c in dataset.coco["categories"] if c["name"] == category)
    gts = _by_image(dataset.coco, cat_id)
    heads = model.roi_heads
    with torch.inference_mode():
        for k in range(len(dataset)):
            image, meta = dataset[k]
            anns = gts.get(meta["image_id"], [])
            if not anns:
                continue
            h, w = image.shape[-2:]
            images, _ = model.transform([image.to(device)])
            (rh, rw), = images.image_sizes
            boxes = _gt_boxes(anns)
            scaled = (boxes * torch.tensor([rw / w, rh / h, rw / w, rh / h])).to(device)
            features = model.backbone(images.tensors)
            x = heads.mask_head(heads.mask_roi_pool(features, [scaled], images.image_sizes))
            probs = heads.mask_predictor(x)[:, labels[cat_id]].sigmoid().cpu()
            probs = paste_masks_in_image(probs[:, None], boxes, (h, w), padding=1)[:, 0].numpy()
            yield meta["image_id"], [{"image_id": meta["image_id"], "category_id": cat_id, "score": 1.0,
                                      "bbox": a["bbox"], "segmentation": encode_mask(p >= mask_threshold),
                                      "prob": p} for a, p in zip(anns, probs)]


def diagnose(gt: dict[str, Any], category: str, detections: Iterable[tuple[int, list[dict[str, Any]]]],
             box_iou_min: float = 0.5) -> dict[str, Any]:
    """Per-instance rows, the summary table and the class's AP: of all its instances and, where visibility
    is known, of the visible and the occluded ones apart."""
    cats = {c["name"]: c["id"] for c in gt["categories"]}
    if category not in cats:
        raise ValueError(f"--category {category!r} is not a category of the ground truth ({sorted(cats)})")
    cat_id = cats[category]
    images = {im["id"]: im for im in gt["images"]}
    gts = _by_image(gt, cat_id)
    rows, results, seen = [], [], set()
    for i, ds in detections:  # one image at a time: a model run's probability maps are dropped after it
        if i not in images:
            log.warning("predictions for image %s, which the ground truth does not list: skipped", i)
            continue
        seen.add(i)
        rows += image_rows(images[i], gts[i], ds, box_iou_min) if gts[i] else []
        results += [{k: v for k, v in d.items() if k != "prob"} for d in ds]
    rows += [r for i, anns in gts.items() if anns and i not in seen for r in image_rows(images[i], anns, [])]
    rows.sort(key=lambda r: (r["image_id"], r["ann_id"]))
    known = any(r["visibility_bucket"] != "unknown" for r in rows)
    out = {"category": category, "box_iou_min": box_iou_min, "summary": summarize(rows), "instances": rows,
           "probabilities": any(r["max_prob"] is not None for r in rows),
           "visibility": "known" if known else "no visibility or attributes.occluded in the ground truth: "
                                               "split by size only"}
    out["ap_by_visibility"] = visibility_ap(gt, results, cat_id, ("all", "visible", "occluded") if known else ("all",))
    return out


def table(result: dict[str, Any]) -> str:
    """The summary as aligned text, then AP by visibility."""
    cols = ["n", "box_correct", "share_mask_iou_50", "median_mask_iou", "median_pred_fill", "median_gt_fill",
            "median_max_prob", "median_pieces"]
    heads = ["n", "box_ok", "mIoU>=.5", "mask_iou", "pred_fill", "gt_fill", "max_prob", "pieces"]
    lines = [f"{result['category']}: instances whose best box has IoU >= {result['box_iou_min']}",
             f"{'group':22}" + "".join(f"{h:>10}" for h in heads)]
    for s in result["summary"]:
        lines.append(f"{s['group']:22}" + "".join(f"{'-' if s[c] is None else s[c]:>10}" for c in cols))
    for bucket, v in result.get("ap_by_visibility", {}).items():
        lines.append(f"AP {bucket} (n={v['n']}): segm {v['segm']['AP']} (AP50 {v['segm']['AP50']}), "
                     f"bbox {v['bbox']['AP']} (AP50 {v['bbox']['AP50']})")
    if result["visibility"] != "known":
        lines.append(result["visibility"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline mask-diagnosis", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", type=Path, required=True, help="COCO ground truth (RLE or polygons)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path, help="predictions.json of `evaluate` (binary masks)")
    src.add_argument("--checkpoint", type=Path, help="model checkpoint: run it and keep mask probabilities")
    src.add_argument("--ideal", type=int, metavar="M",
                     help="no model: the ground truth through an M x M mask target and back (28: torchvision's "
                          "default mask head, 56: model.mask_roi_size 28), what a head that reproduces its "
                          "training targets gives")
    ap.add_argument("--oracle-boxes", action="store_true",
                    help="with --checkpoint: run its mask branch on the ground-truth boxes (the mask head alone)")
    ap.add_argument("--image-root", type=Path, help="images of --gt (with --checkpoint)")
    ap.add_argument("--category", default="pallet_jack", help="class to diagnose (default pallet_jack)")
    ap.add_argument("--score-threshold", type=float, default=0.05, help="detections kept from this score (0.05)")
    ap.add_argument("--box-iou", type=float, default=0.5, help="box IoU that makes a box correct (0.5)")
    ap.add_argument("--device", default=None, help="where a checkpoint runs (default: cuda when present, else cpu)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.checkpoint and not args.image_root:
        ap.error("--checkpoint needs --image-root")
    if args.oracle_boxes and not args.checkpoint:
        ap.error("--oracle-boxes needs --checkpoint")
    if args.ideal is not None and args.ideal < 1:
        ap.error(f"--ideal: a mask side of at least 1, got {args.ideal}")
    def device() -> str:
        import torch

        return args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    gt = read_json(args.gt)
    cats = {c["name"]: c["id"] for c in gt.get("categories", [])}
    if args.category not in cats:
        ap.error(f"{args.gt}: no category {args.category!r} (it has {sorted(cats)})")
    if args.pred:
        dets = from_predictions(read_json(args.pred), cats[args.category], args.score_threshold)
        source = str(args.pred)
    elif args.ideal is not None:
        dets = ideal_detections(gt, args.category, args.ideal)
        source = f"ideal: ground truth through {args.ideal}x{args.ideal} mask targets on its own boxes"
    elif args.oracle_boxes:
        dets = oracle_detections(args.checkpoint, args.gt, args.image_root, args.category, device=device())
        source = f"{args.checkpoint}: mask branch on the ground-truth boxes"
    else:
        dets = from_checkpoint(args.checkpoint, args.gt, args.image_root, args.category, args.score_threshold,
                               device=device())
        source = str(args.checkpoint)
    result = diagnose(gt, args.category, dets, args.box_iou)
    result.update(gt=str(args.gt), source=source, provenance=provenance())
    write_json(args.out, result)
    print(table(result), file=sys.stdout)
    return 0
