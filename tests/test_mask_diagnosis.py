"""Jack-mask diagnosis on the example site's real jack masks (thin handles, several pieces at 160x120): exact
masks and filled boxes give the numbers they must; AP by visibility ignores the other bucket; the checkpoint
path runs a tiny real model and keeps its mask probabilities."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pipeline.__main__ import main as pipeline_main
from pipeline.coco import encode_mask
from pipeline.mask_diagnosis import diagnose, from_predictions
from tests.test_bootstrap import CLASSES, SITE, site_gt

JACK = 2


def with_visibility(gt: dict) -> dict:
    """Every other annotation 30 % visible, the rest 90 % (the `visibility` field annotate writes)."""
    for k, a in enumerate(gt["annotations"]):
        a["visibility"] = (0.3, 0.9)[k % 2]
    return gt


def exact(gt: dict, only=lambda a: True) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.5 + 0.01 * k,
             "bbox": a["bbox"], "segmentation": a["segmentation"]}
            for k, a in enumerate(gt["annotations"]) if not a["iscrowd"] and only(a)]


def filled_boxes(gt: dict) -> list[dict]:
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    out = []
    for p in exact(gt):
        m = np.zeros(size[p["image_id"]], np.uint8)
        x, y, w, h = (int(v) for v in p["bbox"])
        m[y:y + h, x:x + w] = 1
        out.append({**p, "segmentation": encode_mask(m)})
    return out


def test_exact_masks_and_filled_boxes_give_known_numbers():
    gt = with_visibility(site_gt())
    r = diagnose(gt, "pallet_jack", from_predictions(exact(gt), JACK, 0.05))
    rows = r["instances"]
    assert len(rows) == 10 and all(row["box_correct"] and row["mask_iou"] == 1.0 for row in rows)
    assert all(row["pred_fill"] == row["gt_fill"] for row in rows)
    assert np.median([row["gt_fill"] for row in rows]) < 0.2  # thin: a jack fills little of its box
    assert max(row["pieces"] for row in rows) > 1  # the example's handles are cut off from the forks
    for row in rows:  # gt_fill is the mask's area over its box's, measured independently here
        a = next(a for a in gt["annotations"] if a["id"] == row["ann_id"])
        assert row["gt_fill"] == pytest.approx(mask_utils.area(a["segmentation"]) / (a["bbox"][2] * a["bbox"][3]),
                                               abs=1e-4)
    assert r["summary"][0] == {**r["summary"][0], "group": "all", "n": 10, "box_correct": 10,
                               "share_mask_iou_50": 1.0, "median_mask_iou": 1.0}
    boxes = diagnose(gt, "pallet_jack", from_predictions(filled_boxes(gt), JACK, 0.05))["instances"]
    for row, ref in zip(boxes, rows):
        assert row["box_correct"] and row["pred_fill"] == 1.0
        assert row["mask_iou"] == pytest.approx(ref["gt_fill"], abs=1e-4)  # GT inside its box: IoU = GT fill
    assert not r["probabilities"] and all(row["max_prob"] is None for row in rows)
    # the same masks in boxes 1 px larger each side: the fill is over the predicted box
    grown = [{**p, "bbox": [x - 1, y - 1, w + 2, h + 2]} for p in exact(gt) for x, y, w, h in [p["bbox"]]]
    for row, ref in zip(diagnose(gt, "pallet_jack", from_predictions(grown, JACK, 0.05))["instances"], rows):
        a = next(a for a in gt["annotations"] if a["id"] == row["ann_id"])
        assert row["mask_iou"] == 1.0 and row["box_iou"] < 1.0 and row["gt_fill"] == ref["gt_fill"]
        assert row["pred_fill"] == pytest.approx(row["area"] / ((a["bbox"][2] + 2) * (a["bbox"][3] + 2)), abs=1e-4)


def test_pieces_counts_diagonal_strokes_as_one():
    from pipeline.mask_diagnosis import pieces

    m = np.eye(6, dtype=np.uint8)  # a one-pixel diagonal handle
    assert pieces(m) == 1
    m[0, 5] = 1
    assert pieces(m) == 2 and pieces(np.zeros((4, 4), np.uint8)) == 0


def test_ap_by_visibility_ignores_the_other_bucket():
    gt = with_visibility(site_gt())
    r = diagnose(gt, "pallet_jack", from_predictions(exact(gt), JACK, 0.05))
    assert {s["group"] for s in r["summary"]} >= {"visibility=visible", "visibility=occluded", "size=small"}
    ap = r["ap_by_visibility"]
    assert ap["visible"]["n"] == 5 and ap["occluded"]["n"] == 5
    # all jacks found: each bucket perfect, so the other bucket's detections are no false positives
    assert ap["visible"]["segm"] == {"AP": 1.0, "AP50": 1.0} == ap["occluded"]["bbox"]
    seen = {a["id"] for a in gt["annotations"] if a.get("visibility") == 0.9}
    only_seen = exact(gt, lambda a: a["id"] in seen)
    ap = diagnose(gt, "pallet_jack", from_predictions(only_seen, JACK, 0.05))["ap_by_visibility"]
    assert ap["visible"]["segm"]["AP"] == 1.0 and ap["occluded"]["segm"]["AP"] == 0.0
    # nothing tells visibility: size only, and it says so
    for a in gt["annotations"]:
        del a["visibility"]
    r = diagnose(gt, "pallet_jack", from_predictions(exact(gt), JACK, 0.05))
    assert list(r["ap_by_visibility"]) == ["all"] and "split by size only" in r["visibility"]
    assert r["ap_by_visibility"]["all"]["segm"] == {"AP": 1.0, "AP50": 1.0}


@pytest.mark.slow  # runs Mask R-CNN on 3 frames: ~7 s on one core
def test_checkpoint_path_keeps_probabilities(tmp_path, capsys):
    from pipeline.model import build_model

    gt = site_gt()
    keep = sorted({a["image_id"] for a in gt["annotations"] if a["category_id"] == JACK})[:3]  # ~1.5 s each
    gt["images"] = [im for im in gt["images"] if im["id"] in keep]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, 3, 48, 64, transfer="full")  # 160x120 frames run at 64x48
    torch.save({"model": model.state_dict(), "classes": CLASSES, "weights": json.dumps({"kind": "none"}),
                "config": json.dumps({"model": {"min_size_px": 48, "max_size_px": 64, "trainable_backbone_layers": 3,
                                                "transfer": "full"}})}, tmp_path / "tiny.pth")
    assert pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "gt.json"), "--checkpoint",
                          str(tmp_path / "tiny.pth"), "--image-root", str(SITE / "images"),
                          "--out", str(tmp_path / "d.json")]) == 0
    r = json.loads((tmp_path / "d.json").read_text())
    n_jacks = sum(a["category_id"] == JACK and not a["iscrowd"] for a in gt["annotations"])
    assert len(r["instances"]) == n_jacks > 0 and r["probabilities"]
    probs = [row[k] for row in r["instances"] for k in ("max_prob", "mean_prob_on_gt") if row[k] is not None]
    assert probs and all(0.0 <= p <= 1.0 for p in probs)
    assert "pallet_jack: instances whose best box" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a checkpoint needs its images
        pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "gt.json"), "--checkpoint", "x.pth", "--out", "y"])


def test_ideal_targets_are_torchvisions_own_projection_and_paste():
    """`--ideal M`: each instance on its own box, its mask the ground truth through torchvision's own
    `project_masks_on_boxes` (the training target of an M x M head) and `paste_masks_in_image`, recomputed
    here straight from torchvision; boxes are exact, so box AP is 1; the M changes the masks."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes

    from pipeline.coco import segmentation_rle
    from pipeline.mask_diagnosis import ideal_detections

    gt = site_gt()
    images = {im["id"]: im for im in gt["images"]}
    by_m = {}
    for m in (14, 28, 56):
        r = diagnose(gt, "pallet_jack", ideal_detections(gt, "pallet_jack", m))
        assert r["ap_by_visibility"]["all"]["bbox"] == {"AP": 1.0, "AP50": 1.0}
        for row in r["instances"]:
            a = next(a for a in gt["annotations"] if a["id"] == row["ann_id"])
            im = images[a["image_id"]]
            g = torch.from_numpy(mask_utils.decode(segmentation_rle(a["segmentation"], im["height"], im["width"])))
            x, y, w, h = a["bbox"]
            box = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32)
            target = project_masks_on_boxes(g[None], box, torch.zeros(1, dtype=torch.int64), m)
            pasted = paste_masks_in_image(target[:, None], box, g.shape, padding=1)[0, 0] >= 0.5
            iou = float((pasted & (g > 0)).sum() / (pasted | (g > 0)).sum())
            assert row["box_iou"] == 1.0 and row["mask_iou"] == pytest.approx(iou, abs=1e-4)
        by_m[m] = [row["mask_iou"] for row in r["instances"]]
    assert by_m[14] != by_m[56]


@pytest.mark.slow  # Mask R-CNN's backbone on 3 frames
def test_oracle_boxes_run_the_mask_branch_on_the_ground_truth_boxes(tmp_path):
    """`--oracle-boxes`: the checkpoint's mask branch (here a 56x56 one, model.mask_roi_size 28) on each
    ground-truth box. A mask predictor that says "jack" everywhere fills each box: the pasted mask
    holds the whole ground truth, so IoU = gt_fill / pred_fill exactly; one that says "no" everywhere
    gives empty masks (IoU 0). Wrongly scaled boxes (the model runs at 64x48, the frames are 160x120)
    would break the first."""
    from pipeline.model import build_model

    gt = site_gt()
    keep = sorted({a["image_id"] for a in gt["annotations"] if a["category_id"] == JACK})[:3]
    gt["images"] = [im for im in gt["images"] if im["id"] in keep]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    model_cfg = {"min_size_px": 48, "max_size_px": 64, "trainable_backbone_layers": 3, "transfer": "full",
                 "mask_roi_size": 28}
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, 3, 48, 64, transfer="full", recipe=model_cfg)
    rows = {}
    for name, bias in (("yes", 10.0), ("no", -10.0)):
        with torch.no_grad():
            model.roi_heads.mask_predictor.mask_fcn_logits.weight.zero_()
            model.roi_heads.mask_predictor.mask_fcn_logits.bias.fill_(bias)
        torch.save({"model": model.state_dict(), "classes": CLASSES, "weights": json.dumps({"kind": "none"}),
                    "config": json.dumps({"model": model_cfg})}, tmp_path / f"{name}.pth")
        assert pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "gt.json"), "--checkpoint",
                              str(tmp_path / f"{name}.pth"), "--image-root", str(SITE / "images"), "--oracle-boxes",
                              "--out", str(tmp_path / f"{name}.json")]) == 0
        rows[name] = json.loads((tmp_path / f"{name}.json").read_text())["instances"]
    n_jacks = sum(a["category_id"] == JACK and not a["iscrowd"] for a in gt["annotations"])
    assert len(rows["yes"]) == len(rows["no"]) == n_jacks > 0
    for row in rows["yes"]:
        assert row["box_iou"] == 1.0 and row["max_prob"] > 0.99 and row["pred_fill"] >= 1.0
        assert row["mask_iou"] == pytest.approx(row["gt_fill"] / row["pred_fill"], abs=2e-4)  # 4-decimal rounding
    assert all(row["mask_iou"] == 0.0 and row["max_prob"] < 0.01 for row in rows["no"])
    with pytest.raises(SystemExit):  # oracle boxes run a model
        pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "gt.json"), "--pred", "p.json", "--oracle-boxes",
                       "--out", "y"])
