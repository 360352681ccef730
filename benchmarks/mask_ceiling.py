"""What torchvision's mask representation allows on a dataset, with no model: every instance on its own
ground-truth box, its mask the ground truth through the M x M training target and back (pipeline/mask_diagnosis.py
`ideal_detections`: torchvision's `project_masks_on_boxes` and `paste_masks_in_image`), for M = 28 (torchvision's
head) and 56 (model.mask_roi_size 28), with torchvision's RoIAlign `aligned=False` and, as a what-if, `aligned=True`
(the half-pixel correction of detectron2's ROIAlignV2, which torchvision's Mask R-CNN does not use). Per class:
median mask IoU, shares at IoU >= 0.5 / 0.75, and mask AP (COCOeval; boxes exact, so box AP is 1).

    python benchmarks/mask_ceiling.py --gt results/proof_cpu/dataset/test.json --out benchmarks/results/mask_ceiling.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.io import provenance, read_json, write_json  # noqa: E402
from pipeline.mask_diagnosis import diagnose, ideal_detections  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[28, 56])
    args = ap.parse_args()
    gt = read_json(args.gt)
    frames = sorted({(im["width"], im["height"]) for im in gt["images"]})
    result = {"gt": str(args.gt), "frames_wh": frames, "classes": {}, "provenance": provenance()}
    for cat in (c["name"] for c in gt["categories"]):
        rows = {}
        for m in args.sizes:
            for aligned in (False, True):
                r = diagnose(gt, cat, ideal_detections(gt, cat, m, aligned))
                ious = np.array([x["mask_iou"] for x in r["instances"]])
                if not ious.size:
                    continue
                key = f"{m}x{m} aligned={aligned}"
                rows[key] = {"n": int(ious.size), "median_mask_iou": round(float(np.median(ious)), 4),
                             "iou>=0.5": round(float(np.mean(ious >= 0.5)), 4),
                             "iou>=0.75": round(float(np.mean(ious >= 0.75)), 4),
                             "median_gt_fill": r["summary"][0]["median_gt_fill"],
                             "mask_AP": r["ap_by_visibility"]["all"]["segm"]["AP"],
                             "mask_AP_by_visibility": {b: v["segm"]["AP"] for b, v in r["ap_by_visibility"].items()}}
                print(f"{cat:12} {key:20} " + "  ".join(f"{k} {v}" for k, v in rows[key].items()
                                                         if k != "mask_AP_by_visibility"), flush=True)
        result["classes"][cat] = rows
    write_json(args.out, result)


if __name__ == "__main__":
    main()
