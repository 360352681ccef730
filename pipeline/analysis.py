"""Where a detector goes wrong: PR curves, confusion matrix, per-image errors (COCO GT + results)."""
from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.coco import segmentation_rle

IOU_FOR_PR = (0.5, 0.75)


def pr_curves(ev, names: dict[int, str]) -> dict[str, Any]:
    """Precision at COCOeval's 101 recall points per class, at IoU 0.50 and 0.75 (all areas, 100 dets).

    A class without ground truth gets None (COCOeval's -1), not a curve at 0.
    """
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    curves: dict[str, Any] = {"recall": [float(r) for r in ev.params.recThrs]}
    for iou in IOU_FOR_PR:
        t = int(np.argmin(np.abs(ev.params.iouThrs - iou)))
        per = {}
        for k, cat_id in enumerate(ev.params.catIds):
            p = precision[t, :, k, 0, -1]
            per[names[cat_id]] = None if (p < 0).all() else [round(float(max(v, 0.0)), 4) for v in p]
        curves[f"iou{int(round(iou * 100))}"] = per
    return curves


def _ious(dets: list[dict], gts: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not dets or not gts:
        return np.zeros((len(dets), len(gts)))
    key = "segmentation" if iou_type == "segm" else "bbox"
    d = [a[key] for a in dets]
    g = [a[key] for a in gts]
    return np.asarray(mask_utils.iou(d, g, [0] * len(g))).reshape(len(dets), len(gts))


def match_image(gts: list[dict], dets: list[dict], iou_threshold: float, iou_type: str = "segm"
                ) -> tuple[list[tuple[int, int, float]], list[int], list[int]]:
    """Greedy class-agnostic matching by score: (det, gt, iou) pairs, unmatched dets, unmatched gts.

    Class-agnostic so that a pallet jack detected as a pedestrian shows up as a confusion,
    not as one miss plus one false positive.
    """
    order = sorted(range(len(dets)), key=lambda i: -dets[i]["score"])
    ious = _ious([dets[i] for i in order], gts, iou_type)
    taken: set[int] = set()
    pairs, lonely = [], []
    for row, i in enumerate(order):
        best, best_iou = -1, iou_threshold
        for j in range(len(gts)):
            if j not in taken and ious[row, j] >= best_iou:
                best, best_iou = j, ious[row, j]
        if best < 0:
            lonely.append(i)
        else:
            taken.add(best)
            pairs.append((i, best, float(best_iou)))
    return pairs, lonely, [j for j in range(len(gts)) if j not in taken]


def _matched_images(gt: dict[str, Any], preds: list[dict[str, Any]], score_threshold: float,
                    iou_threshold: float, iou_type: str):
    """Per image: (image, its ground truth, its detections above the threshold, match_image's result)."""
    by_gt: dict[int, list] = {im["id"]: [] for im in gt["images"]}
    by_dt: dict[int, list] = {im["id"]: [] for im in gt["images"]}
    for a in gt["annotations"]:
        by_gt[a["image_id"]].append(a)
    for p in preds:
        if p["score"] >= score_threshold and p["image_id"] in by_dt:
            by_dt[p["image_id"]].append(p)
    for im in gt["images"]:
        # real annotations hold polygons; mask IoU needs RLE of the image's size
        anns = [{**a, "segmentation": segmentation_rle(a["segmentation"], im["height"], im["width"])}
                for a in by_gt[im["id"]]] if iou_type == "segm" else by_gt[im["id"]]
        gts = [a for a in anns if not a.get("iscrowd", 0)]
        crowd = [a for a in anns if a.get("iscrowd", 0)]
        dets = by_dt[im["id"]]
        pairs, lonely, missed = match_image(gts, dets, iou_threshold, iou_type)
        in_crowd = _in_crowd([dets[i] for i in lonely], crowd, iou_threshold, iou_type)
        yield im, gts, dets, (pairs, [i for i, c in zip(lonely, in_crowd) if not c], missed), int(sum(in_crowd))


def _in_crowd(dets: list[dict], crowd: list[dict], iou_threshold: float, iou_type: str) -> list[bool]:
    """Whether each unmatched detection lies in a crowd region: COCOeval's rule (crowd IoU is the
    intersection over the detection's own area), so such a detection is ignored, not a false positive."""
    from pycocotools import mask as mask_utils

    if not dets or not crowd:
        return [False] * len(dets)
    key = "segmentation" if iou_type == "segm" else "bbox"
    ious = np.asarray(mask_utils.iou([d[key] for d in dets], [c[key] for c in crowd], [1] * len(crowd)))
    return [bool(v) for v in ious.reshape(len(dets), len(crowd)).max(axis=1) >= iou_threshold]


def error_analysis(gt: dict[str, Any], preds: list[dict[str, Any]], score_threshold: float,
                   iou_threshold: float = 0.5, iou_type: str = "segm") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The confusion matrix and the per-image error list from one matching pass.

    Confusion: counts of true class (rows, + 'background' for false positives) vs predicted
    class (columns, + 'missed' for ground truth nothing matched). Per image: tp, fp, fn,
    wrong class, mean IoU of hits; worst first (most errors). Crowd regions (`iscrowd`) are no
    objects: they are never missed, and detections in them count as `in_crowd`, not as errors.
    """
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    index = {c["id"]: k for k, c in enumerate(cats)}
    n = len(cats)
    m = np.zeros((n + 1, n + 1), dtype=int)
    rows = []
    for im, gts, dets, (pairs, lonely, missed), ignored in _matched_images(gt, preds, score_threshold,
                                                                            iou_threshold, iou_type):
        for i, j, _ in pairs:
            m[index[gts[j]["category_id"]], index[dets[i]["category_id"]]] += 1
        for i in lonely:
            m[n, index[dets[i]["category_id"]]] += 1
        for j in missed:
            m[index[gts[j]["category_id"]], n] += 1
        hits = [(i, j, iou) for i, j, iou in pairs if dets[i]["category_id"] == gts[j]["category_id"]]
        wrong = len(pairs) - len(hits)
        rows.append({"image_id": im["id"], "file_name": im["file_name"], "objects": len(gts),
                     "tp": len(hits), "fp": len(lonely), "fn": len(missed), "wrong_class": wrong,
                     "errors": len(lonely) + len(missed) + wrong, "in_crowd": ignored,
                     "mean_iou": round(float(np.mean([iou for *_, iou in hits])), 4) if hits else None})
    rows.sort(key=lambda r: (-r["errors"], -(r["objects"] - r["tp"]), r["file_name"]))
    names = [c["name"] for c in cats]
    confusion = {"true": names + ["background"], "predicted": names + ["missed"], "matrix": m.tolist(),
                 "score_threshold": score_threshold, "iou_threshold": iou_threshold, "iou_type": iou_type}
    return confusion, rows

