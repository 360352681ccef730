"""RPN anchors against a training set's boxes: per class, box sizes and aspects after the model's resize, and
the share of ground-truth boxes whose best anchor has IoU >= 0.7 (the RPN's positive threshold) and >= 0.5,
for torchvision's default FPN anchors and for anchors fitted to the boxes. It prints the fitted set as the
config keys that use it (model.anchor_sizes, model.anchor_aspect_ratios); whether they help is for a
training run to show (benchmarks/recipe_search.py compares them on val).

Anchors come from torchvision's own AnchorGenerator on the padded input of each image size, with the
feature-map grid and strides the FPN gives it (P6 by integer division, as torchvision computes it),
so coverage is what the RPN sees, not centred idealisations.

    python -m pipeline anchors --coco results/default/dataset/train.json --out anchors.json
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.io import provenance, read_json, write_json

log = logging.getLogger(__name__)
DEFAULT_SIZES = ((32,), (64,), (128,), (256,), (512,))
DEFAULT_RATIOS = ((0.5, 1.0, 2.0),) * 5
PERCENTILES = (5, 25, 50, 75, 95)
THRESHOLDS = (0.7, 0.5)


def feature_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """FPN output sizes (P2-P5 and the max-pooled P6) of a padded input of ResNet-50's strides."""
    shapes = [(-(-height // s), -(-width // s)) for s in (4, 8, 16, 32)]
    h, w = shapes[-1]
    return shapes + [(-(-h // 2), -(-w // 2))]  # max_pool2d(kernel 1, stride 2): ceil


def resized_groups(coco: dict[str, Any], min_size: int, max_size: int) -> list[dict[str, Any]]:
    """Per image size: the padded input size and the boxes (xyxy) and category ids after the model's resize,
    computed by torchvision's GeneralizedRCNNTransform itself (eval mode, padding to 32)."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    transform = GeneralizedRCNNTransform(min_size, max_size, [0.0] * 3, [1.0] * 3).eval()
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    by_size: dict[tuple[int, int], list] = {}
    for a in coco["annotations"]:
        if a.get("iscrowd", 0) or a["bbox"][2] < 1 or a["bbox"][3] < 1:
            continue
        by_size.setdefault(sizes[a["image_id"]], []).append(a)
    groups = []
    for (h, w), anns in sorted(by_size.items()):
        boxes = torch.tensor([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in anns)],
                             dtype=torch.float32)
        with torch.no_grad():
            images, targets = transform([torch.zeros(3, h, w)], [{"boxes": boxes}])
        groups.append({"padded": tuple(images.tensors.shape[-2:]), "boxes": targets[0]["boxes"],
                       "category_ids": np.array([a["category_id"] for a in anns])})
    return groups


def best_anchor_iou(groups: list[dict[str, Any]], sizes, ratios, max_elements: int = 1 << 24) -> np.ndarray:
    """Each box's highest IoU with any anchor of AnchorGenerator(sizes, ratios) on its input's grid
    (boxes taken in chunks so that one IoU matrix holds at most `max_elements` values)."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import box_iou

    gen = AnchorGenerator(tuple(tuple(s) for s in sizes), tuple(tuple(r) for r in ratios))
    out = []
    for g in groups:
        h, w = g["padded"]
        feats = [torch.zeros(1, 1, fh, fw) for fh, fw in feature_shapes(h, w)]
        anchors = gen(ImageList(torch.zeros(1, 3, h, w), [(h, w)]), feats)[0]
        chunk = max(1, max_elements // len(anchors))
        out += [box_iou(g["boxes"][i:i + chunk], anchors).max(dim=1).values for i in range(0, len(g["boxes"]), chunk)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, probs) -> np.ndarray:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) - 0.5 * weights[order]
    return np.interp(np.asarray(probs) * weights.sum(), cum, values[order])


def fit(sizes_px: np.ndarray, aspects: np.ndarray, cats: np.ndarray, n_ratios: int = 3,
        span: tuple[float, float] = (0.1, 0.9), spacing: str = "quantiles") -> tuple[tuple, tuple]:
    """Five per-level sizes and `n_ratios` aspect ratios (h/w, the same on every level, as RPNHead needs).

    Sizes: at 5 evenly spaced quantiles over `span` of log sqrt(wh) ("quantiles"), or log-evenly between
    the two quantiles that bound `span` ("geometric": no level is spent twice on one crowded size);
    ratios: at the centres of `n_ratios` equal shares of log(h/w). Every class weighs the same, so a rare
    class's shapes are not outvoted.
    """
    counts = {c: n for c, n in zip(*np.unique(cats, return_counts=True))}
    weights = np.array([1.0 / counts[c] for c in cats])
    if spacing == "quantiles":
        log_s = _weighted_quantiles(np.log(sizes_px), weights, np.linspace(*span, 5))
    else:
        log_s = np.linspace(*_weighted_quantiles(np.log(sizes_px), weights, span), 5)
    levels = []
    for s in np.exp(log_s):
        levels.append(max(int(round(s)), levels[-1] + 1 if levels else 1))
    r = np.exp(_weighted_quantiles(np.log(aspects), weights, (np.arange(n_ratios) + 0.5) / n_ratios))
    ratios = []
    for v in r:
        ratios.append(max(round(float(v), 2), ratios[-1] + 0.01 if ratios else 0.01))
    return tuple((s,) for s in levels), (tuple(round(v, 2) for v in ratios),) * 5


def coverage(best: np.ndarray, cats: np.ndarray, names: dict[int, str]) -> dict[str, Any]:
    """Per class and over all boxes: share with best anchor IoU >= each threshold, and the median best IoU."""
    out = {}
    for name, sel in [("all", np.ones(len(cats), bool))] + [(n, cats == c) for c, n in names.items()]:
        if sel.any():
            out[name] = {**{f"iou>={t}": round(float((best[sel] >= t).mean()), 4) for t in THRESHOLDS},
                         "median_best_iou": round(float(np.median(best[sel])), 4), "n": int(sel.sum())}
    return out


def analyse(coco: dict[str, Any], min_size: int, max_size: int, n_ratios: tuple[int, ...] = (3,)) -> dict[str, Any]:
    """Box statistics per class, coverage of the default anchors, and the best-covering fitted candidate."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    groups = resized_groups(coco, min_size, max_size)
    if not groups:
        raise ValueError("no non-crowd boxes of at least 1 px in the COCO file: nothing to fit anchors to")
    boxes = torch.cat([g["boxes"] for g in groups]).numpy()
    cats = np.concatenate([g["category_ids"] for g in groups])
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size, aspect = np.sqrt(bw * bh), bh / bw
    pct = (lambda v, digits: {f"p{p}": round(float(np.percentile(v, p)), digits) for p in PERCENTILES})
    stats = {n: {"n": int((cats == c).sum()), "size_px": pct(size[cats == c], 1),
                 "aspect_h_over_w": pct(aspect[cats == c], 3)}
             for c, n in names.items() if (cats == c).any()}
    default = {"sizes": DEFAULT_SIZES, "ratios": DEFAULT_RATIOS,
               "coverage": coverage(best_anchor_iou(groups, DEFAULT_SIZES, DEFAULT_RATIOS), cats, names)}
    candidates = []
    for k in n_ratios:
        for spacing, span in (("quantiles", (0.1, 0.9)), ("quantiles", (0.02, 0.98)), ("geometric", (0.02, 0.98))):
            sizes, ratios = fit(size, aspect, cats, k, span, spacing)
            candidates.append({"sizes": sizes, "ratios": ratios, "spacing": spacing, "quantile_span": span,
                               "coverage": coverage(best_anchor_iou(groups, sizes, ratios), cats, names)})
    # best by the worst class's share at 0.7 (the rare class is the point), then by the overall shares
    fitted = max(candidates, key=lambda c: (min(v["iou>=0.7"] for k, v in c["coverage"].items() if k != "all"),
                                            c["coverage"]["all"]["iou>=0.7"], c["coverage"]["all"]["iou>=0.5"]))
    return {"input_size_px": [min_size, max_size], "boxes": stats, "default": default, "fitted": fitted,
            "candidates": candidates}


def table(result: dict[str, Any]) -> str:
    """Box statistics and the two anchor sets' coverage as aligned text."""
    lines = [f"boxes after resize to {result['input_size_px'][0]}/{result['input_size_px'][1]} px:",
             f"{'class':14}{'n':>7}  sqrt(wh) px p5/25/50/75/95          aspect h/w p5/25/50/75/95"]
    for name, s in result["boxes"].items():
        lines.append(f"{name:14}{s['n']:>7}  " + "/".join(f"{v:g}" for v in s["size_px"].values()).ljust(36)
                     + "/".join(f"{v:g}" for v in s["aspect_h_over_w"].values()))
    for key in ("default", "fitted"):
        a = result[key]
        how = f" ({a['spacing']} over quantiles {a['quantile_span']})" if "spacing" in a else ""
        lines.append(f"{key} anchors: sizes {[s[0] for s in a['sizes']]}, ratios {list(a['ratios'][0])}{how}")
        for name, c in a["coverage"].items():
            lines.append(f"  {name:14} IoU>=0.7 {c['iou>=0.7']:.3f}  IoU>=0.5 {c['iou>=0.5']:.3f}  "
                         f"median best {c['median_best_iou']:.3f}  (n={c['n']})")
    fitted = result["fitted"]
    lines.append(f"config for the fitted set: model: {{anchor_sizes: {[s[0] for s in fitted['sizes']]}, "
                 f"anchor_aspect_ratios: {list(fitted['ratios'][0])}}}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pipeline.coco import check_references
    from pipeline.config import section_defaults

    model = section_defaults("model")
    ap = argparse.ArgumentParser(prog="python -m pipeline anchors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coco", type=Path, required=True, help="COCO file of the training set")
    ap.add_argument("--out", type=Path, required=True, help="anchors.json")
    ap.add_argument("--input-size", type=int, nargs=2, metavar=("MIN", "MAX"),
                    default=(model["min_size_px"], model["max_size_px"]),
                    help=f"model input size (default model.min_size_px/max_size_px: {model['min_size_px']} "
                         f"{model['max_size_px']})")
    ap.add_argument("--ratios", type=int, nargs="+", default=[3], choices=[3, 4, 5],
                    help="numbers of aspect ratios to try for the fitted set (default 3)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    coco = read_json(args.coco)
    check_references(coco, args.coco)
    result = analyse(coco, *args.input_size, n_ratios=tuple(args.ratios))
    result.update(coco=str(args.coco), provenance=provenance())
    write_json(args.out, result)
    print(table(result), file=sys.stdout)
    return 0
