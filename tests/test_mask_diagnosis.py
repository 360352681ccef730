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
from pipeline.model import build_model
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
    here straight from torchvision; boxes are exact, so box AP is 1; the M changes the masks. The aligned
    what-if (benchmarks/mask_ceiling.py) is RoIAlign with the half-pixel correction, the same paste."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes
    from torchvision.ops import roi_align

    from pipeline.coco import segmentation_rle
    from pipeline.mask_diagnosis import ideal_detections

    gt = site_gt()
    images = {im["id"]: im for im in gt["images"]}

    def check(result: dict, project) -> list[float]:
        """Each row's mask IoU against the reference: `project(mask, box)` -> [1, M, M] target, pasted."""
        for row in result["instances"]:
            a = next(a for a in gt["annotations"] if a["id"] == row["ann_id"])
            im = images[a["image_id"]]
            g = torch.from_numpy(mask_utils.decode(segmentation_rle(a["segmentation"], im["height"], im["width"])))
            x, y, w, h = a["bbox"]
            box = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32)
            pasted = paste_masks_in_image(project(g, box)[:, None], box, g.shape, padding=1)[0, 0] >= 0.5
            iou = float((pasted & (g > 0)).sum() / (pasted | (g > 0)).sum())
            assert row["box_iou"] == 1.0 and row["mask_iou"] == pytest.approx(iou, abs=1e-4)
        return [row["mask_iou"] for row in result["instances"]]

    by_m = {}
    for m in (14, 28, 56):
        r = diagnose(gt, "pallet_jack", ideal_detections(gt, "pallet_jack", m))
        assert r["ap_by_visibility"]["all"]["bbox"] == {"AP": 1.0, "AP50": 1.0}
        by_m[m] = check(r, lambda g, box, m=m: project_masks_on_boxes(g[None], box, torch.zeros(1, dtype=torch.int64), m))
    assert by_m[14] != by_m[56]
    check(diagnose(gt, "pallet_jack", ideal_detections(gt, "pallet_jack", 28, aligned=True)),
          lambda g, box: roi_align(g[None, None].float(), torch.cat([torch.zeros(1, 1), box], 1), (28, 28), 1.0,
                                   aligned=True)[:, 0])


@pytest.mark.slow  # Mask R-CNN on one frame, twice
def test_oracle_boxes_give_the_models_own_masks_for_its_own_boxes(tmp_path):
    """`--oracle-boxes` runs the checkpoint's mask branch (here a 56x56 one, model.mask_roi_size 28) on given
    boxes. Given the model's own jack detections as the ground truth, its probability maps must be the
    masks the model itself returned for them (torchvision's full inference path: resize 160x120 -> 64x48,
    RoIAlign, head, paste at 160x120), up to float rounding of the box scaling; a wrong box scale, class
    channel or paste would not match."""
    from pipeline.coco import encode_mask
    from pipeline.export import load_model
    from pipeline.mask_diagnosis import oracle_detections

    gt = site_gt()
    im = next(im for im in gt["images"] if any(a["image_id"] == im["id"] and a["category_id"] == JACK
                                                for a in gt["annotations"]))
    model_cfg = {"min_size_px": 48, "max_size_px": 64, "trainable_backbone_layers": 3, "transfer": "full",
                 "mask_roi_size": 28}
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, 3, 48, 64, transfer="full", recipe=model_cfg)
    torch.save({"model": model.state_dict(), "classes": CLASSES, "weights": json.dumps({"kind": "none"}),
                "config": json.dumps({"model": model_cfg})}, tmp_path / "m.pth")
    from pipeline.data import CocoInstances, eval_transforms

    (tmp_path / "one.json").write_text(json.dumps({**gt, "images": [im], "annotations": []}))
    image, _ = CocoInstances(tmp_path / "one.json", SITE / "images", eval_transforms(), targets=False)[0]
    net = load_model(tmp_path / "m.pth")
    net.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        out = net([image])[0]
    keep = [k for k in range(len(out["labels"])) if out["labels"][k] == JACK][:5]
    assert keep, "the random model returned no jack detection"
    anns = []
    for n, k in enumerate(keep):
        x0, y0, x1, y1 = out["boxes"][k].tolist()
        anns.append({"id": n + 1, "image_id": im["id"], "category_id": JACK, "iscrowd": 0, "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "area": 1.0, "segmentation": encode_mask((out["masks"][k, 0] >= 0.5).numpy())})
    (tmp_path / "own.json").write_text(json.dumps({**gt, "images": [im], "annotations": anns}))
    (_, dets), = list(oracle_detections(tmp_path / "m.pth", tmp_path / "own.json", SITE / "images", "pallet_jack"))
    assert len(dets) == len(keep)
    for d, k in zip(dets, keep):
        assert np.abs(d["prob"] - out["masks"][k, 0].numpy()).max() < 1e-4
        assert d["prob"].shape == tuple(image.shape[-2:])
    with pytest.raises(SystemExit):  # oracle boxes run a model
        pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "own.json"), "--pred", "p.json", "--oracle-boxes",
                       "--out", "y"])
    with pytest.raises(SystemExit):
        pipeline_main(["mask-diagnosis", "--gt", str(tmp_path / "own.json"), "--ideal", "0", "--out", "y"])
