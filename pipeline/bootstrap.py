"""95 % bootstrap intervals of COCO AP (AP@[.5:.95], AP50; segm and bbox; overall and per class) over test
images, and of the paired difference AP(A) - AP(B) of two prediction files on the same ground truth.

COCOeval.evaluate() runs once per file; each resample re-accumulates its per-image results (evalImgs)
over a multiset of images, the way COCOeval.accumulate does (101-point interpolated precision, area
"all", 100 detections), so 1000 resamples cost about as much as one more accumulate per resample.

    python -m pipeline bootstrap --gt test.json --pred predictions.json [--pred-b other.json] --out intervals.json
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import provenance, read_json, write_json

log = logging.getLogger(__name__)
IOU_TYPES = ("segm", "bbox")
METRICS = ("AP", "AP50")


def coco_gt(gt: dict[str, Any]):
    """A pycocotools COCO object over a copy of an in-memory GT dict (COCOeval rewrites annotations in place)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
    return coco


def evaluated(coco, predictions: list[dict[str, Any]], iou_type: str, evaluator=None):
    """COCOeval (or the `evaluator` subclass) after evaluate(), not accumulated; None when no result has the key."""
    from pycocotools.cocoeval import COCOeval

    # segm from mask-only results, as pipeline.evaluate.coco_eval does (loadRes would take areas from boxes)
    key = "segmentation" if iou_type == "segm" else "bbox"
    dets = [dict(p) if iou_type == "bbox" else {k: v for k, v in p.items() if k != "bbox"}
            for p in predictions if key in p]
    if not dets:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        ev = (evaluator or COCOeval)(coco, coco.loadRes(dets), iou_type)
        ev.evaluate()
    return ev


class Tables:
    """Per category, COCOeval's per-image results (area all, last maxDet) flattened for fast re-accumulation.

    Detections of all images in COCOeval's order (scores descending, stable over image order, as
    accumulate's mergesort over the concatenation); `tp`/`fp` [T, D], `image` [D] its image index,
    `npig` [I] non-ignored GT per image, `present` [I] whether COCOeval has a result for the image.
    """

    def __init__(self, ev, cat_ids: list[int], img_ids: list[int], gt_counts: dict[int, np.ndarray]) -> None:
        from pycocotools.cocoeval import Params

        params = Params() if ev is None else ev.params  # ev None: no detection at all
        self.n_thr, self.rec_thrs = len(params.iouThrs), params.recThrs
        self.t50 = int(np.argmin(np.abs(params.iouThrs - 0.5)))
        self.per_cat = []
        n_img = len(img_ids)
        for k, cat in enumerate(cat_ids):
            if ev is None:  # only the ground truth counts: COCOeval gives 0 where it has some, -1 elsewhere
                npig = gt_counts[cat]
                self.per_cat.append((np.zeros((self.n_thr, 0), bool), np.zeros((self.n_thr, 0), bool),
                                     np.zeros(0, int), npig, npig > 0))
                continue
            n_area = len(ev.params.areaRng)
            max_det = ev.params.maxDets[-1]
            scores, tps, fps, image = [], [], [], []
            npig, present = np.zeros(n_img), np.zeros(n_img, bool)
            for i in range(n_img):
                e = ev.evalImgs[k * n_area * n_img + i]  # area index 0 = "all"
                if e is None:
                    continue
                present[i] = True
                dtm, dtig = e["dtMatches"][:, :max_det], e["dtIgnore"][:, :max_det]
                scores.append(np.asarray(e["dtScores"][:max_det], float))
                tps.append(np.logical_and(dtm, np.logical_not(dtig)))
                fps.append(np.logical_and(np.logical_not(dtm), np.logical_not(dtig)))
                image.append(np.full(len(scores[-1]), i))
                npig[i] = np.count_nonzero(e["gtIgnore"] == 0)
            if scores:
                order = np.argsort(-np.concatenate(scores), kind="mergesort")
                tp, fp = np.concatenate(tps, axis=1)[:, order], np.concatenate(fps, axis=1)[:, order]
                img = np.concatenate(image)[order]
            else:
                tp = fp = np.zeros((self.n_thr, 0), bool)
                img = np.zeros(0, int)
            self.per_cat.append((tp, fp, img, npig, present))

    def precision(self, weights: np.ndarray) -> np.ndarray:
        """COCOeval.accumulate's precision [T, R, K] (area all, last maxDet) with image i counted weights[i] times."""
        R = len(self.rec_thrs)
        out = -np.ones((self.n_thr, R, len(self.per_cat)))
        for k, (tp, fp, img, npig, present) in enumerate(self.per_cat):
            n_gt = float(np.dot(weights, npig))
            if not (present & (weights > 0)).any() or n_gt == 0:
                continue  # COCOeval: no result for any image of the sample, or no GT to recall: -1
            w = weights[img]
            keep = w > 0
            # image i counted w times = each of its detections w times in a row (copies kept together; a tie
            # of scores across images is broken by image order, as accumulate's stable sort does); precision
            # rises within a run of true positives and falls within false positives, so the envelope and the
            # recall thresholds only ever read a run's last element: cumulative sums at run ends suffice.
            tp_sum = np.cumsum(tp[:, keep] * w[keep], axis=1, dtype=float)
            fp_sum = np.cumsum(fp[:, keep] * w[keep], axis=1, dtype=float)
            nd = tp_sum.shape[1]
            q = np.zeros((self.n_thr, R))
            if nd:
                rc = tp_sum / n_gt
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(self.n_thr):
                    inds = np.searchsorted(rc[t], self.rec_thrs, side="left")
                    ok = inds < nd
                    q[t, ok] = pr[t, inds[ok]]
            out[:, :, k] = q
        return out

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """[metric (AP, AP50), class index + 1 overall at 0] under image weights; NaN where COCOeval gives -1."""
        p = self.precision(weights)
        out = np.full((2, len(self.per_cat) + 1), np.nan)
        for m, s in enumerate((p, p[self.t50:self.t50 + 1])):
            valid = s > -1
            if valid.any():
                out[m, 0] = s[valid].mean()
            for k in range(s.shape[2]):
                if valid[:, :, k].any():
                    out[m, k + 1] = s[:, :, k][valid[:, :, k]].mean()
        return out


def tables(gt: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str, coco=None) -> Tables:
    """Evaluate one prediction file once and keep what resampling needs."""
    coco = coco or coco_gt(gt)
    img_ids = sorted(coco.getImgIds())
    cat_ids = sorted(coco.getCatIds())
    index = {i: n for n, i in enumerate(img_ids)}
    counts = {c: np.zeros(len(img_ids)) for c in cat_ids}
    for a in gt["annotations"]:
        if not a.get("iscrowd", 0):
            counts[a["category_id"]][index[a["image_id"]]] += 1
    ev = evaluated(coco, predictions, iou_type)
    if ev is None and predictions:
        log.warning("no prediction has a %s: %s AP counts as 0", "segmentation" if iou_type == "segm" else "bbox",
                    iou_type)
    return Tables(ev, cat_ids, img_ids, counts)


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_images]: how often each test image is drawn, with replacement, from a seeded Generator."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n_images, n_images), minlength=n_images)
                     for _ in range(resamples)]).astype(float)


def _interval(point: float, samples: np.ndarray, level: float) -> dict[str, Any]:
    ok = samples[~np.isnan(samples)]
    lo, hi = (np.percentile(ok, [50 * (1 - level), 50 * (1 + level)]) if ok.size else (np.nan, np.nan))
    clean = (lambda v: None if np.isnan(v) else round(float(v), 6))
    return {"value": clean(point), "lo": clean(lo), "hi": clean(hi),
            "undefined_resamples": int(samples.size - ok.size)}


def bootstrap(gt: dict[str, Any], pred: list[dict[str, Any]], pred_b: list[dict[str, Any]] | None = None,
              resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """{iou_type: {metric: {all|class: {value, lo, hi}}}} and, with `pred_b`, the same for AP(pred) - AP(pred_b)
    over the same resampled images. A class absent from a resample (no GT drawn) leaves that resample out."""
    coco = coco_gt(gt)
    names = ["all"] + [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    weights = resample_weights(len(coco.getImgIds()), resamples, seed)
    identity = np.ones(weights.shape[1])
    out: dict[str, Any] = {"resamples": resamples, "seed": seed, "level": level, "num_images": weights.shape[1]}
    diff: dict[str, Any] = {}
    for iou_type in IOU_TYPES:
        runs = [tables(gt, p, iou_type, coco) for p in ([pred] if pred_b is None else [pred, pred_b])]
        points = [t.scores(identity) for t in runs]
        samples = [np.stack([t.scores(w) for w in weights]) for t in runs]  # [resample, metric, class]
        block = (lambda point, s: {m: {n: _interval(point[i, j], s[:, i, j], level) for j, n in enumerate(names)}
                                   for i, m in enumerate(METRICS)})
        out[iou_type] = block(points[0], samples[0])
        if pred_b is not None:
            out.setdefault("b", {})[iou_type] = block(points[1], samples[1])
            diff[iou_type] = block(points[0] - points[1], samples[0] - samples[1])
    if pred_b is not None:
        out["difference"] = diff
    return out


def table(result: dict[str, Any]) -> str:
    """Plain-text table: one row per IoU type, metric and class (A, then B and A - B when given)."""
    cols = [("A", result)] + ([("B", result["b"]), ("A-B", result["difference"])] if "difference" in result else [])
    fmt = (lambda c: "      n/a        " if c["value"] is None else
           f"{c['value']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]" if c["lo"] is not None else f"{c['value']:.3f} [n/a]")
    lines = [f"{'iou':5} {'metric':6} {'class':14} " + " ".join(f"{name:>22}" for name, _ in cols)]
    for iou_type in IOU_TYPES:
        for m in METRICS:
            for n in result[iou_type][m]:
                cells = " ".join(f"{fmt(src[iou_type][m][n]):>22}" for _, src in cols)
                lines.append(f"{iou_type:5} {m:6} {n:14} {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline bootstrap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", type=Path, required=True, help="COCO ground truth of the test split")
    ap.add_argument("--pred", type=Path, required=True, help="predictions.json (COCO results, RLE segmentation)")
    ap.add_argument("--pred-b", type=Path, help="a second model's predictions on the same images: paired A - B")
    ap.add_argument("--out", type=Path, required=True, help="intervals.json")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="numpy Generator seed (default 0)")
    ap.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.resamples < 1 or not 0 < args.level < 1:
        ap.error(f"--resamples must be >= 1 and --level in (0, 1), got {args.resamples} and {args.level}")
    gt, pred = read_json(args.gt), read_json(args.pred)
    pred_b = read_json(args.pred_b) if args.pred_b else None
    for path, p in ((args.pred, pred), (args.pred_b, pred_b)):
        if p is not None and not isinstance(p, list):
            raise ValueError(f"{path}: expected a list of COCO results, got {type(p).__name__}")
    result = bootstrap(gt, pred, pred_b, args.resamples, args.seed, args.level)
    result.update(gt=str(args.gt), pred=str(args.pred), pred_b=str(args.pred_b) if args.pred_b else None,
                  provenance=provenance())
    write_json(args.out, result)
    print(table(result), file=sys.stdout)
    return 0
