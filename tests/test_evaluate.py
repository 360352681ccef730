"""COCOeval through pipeline.evaluate on real annotations."""
import copy
import json

import numpy as np
import pytest

from pipeline.coco import encode_mask
from pipeline.evaluate import coco_eval

pytestmark = pytest.mark.slow


def as_predictions(coco, shift=0.0):
    preds = []
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                      "bbox": [x + shift * w, y, w, h], "segmentation": copy.deepcopy(a["segmentation"])})
    return preds


def test_perfect_predictions_score_one(shard_coco):
    m = coco_eval(shard_coco, as_predictions(shard_coco))
    assert m["bbox"]["AP"] == pytest.approx(1.0) and m["segm"]["AP"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in m["segm"]["per_class"].values())


def test_shifted_boxes_score_lower(shard_coco):
    m = coco_eval(shard_coco, as_predictions(shard_coco, shift=0.3))
    assert m["bbox"]["AP"] < 0.7
    assert m["segm"]["AP"] == pytest.approx(1.0)  # masks were not shifted


def test_no_predictions_is_zero_not_a_crash(shard_coco):
    m = coco_eval(shard_coco, [])
    assert m["segm"]["AP"] == 0.0 and m["segm"]["note"] == "no predictions"


def test_segm_size_buckets_use_mask_areas_not_boxes():
    """A false positive with a small mask in a big box belongs to AP_small for masks (pycocotools sets a
    result's area from its bbox when one is present; torchvision's coco_eval passes masks only)."""
    from benchmarks.review_cpu import small_object_case  # the case whose before/after figures are recorded

    gt, preds = small_object_case(encode_mask)
    m = coco_eval(gt, preds)
    assert m["segm"]["AP_small"] == pytest.approx(0.5)  # the stray mask ranks first among small objects
    assert m["bbox"]["AP_small"] == pytest.approx(1.0)  # its box is medium: not a small-object error


def polygon_file(shard_coco, path, min_area=60):
    """The fixture's annotations as polygons (as CVAT exports them), categories numbered 7 and 3."""
    import cv2
    from pycocotools import mask as mask_utils

    ids = {1: 3, 2: 7}  # pedestrian -> 3, pallet_jack -> 7
    anns = []
    for a in shard_coco["annotations"]:
        if a["area"] < min_area:
            continue
        # traced on the mask upsampled 8x, so the outline runs along pixel edges (COCO's corner coordinates)
        big = cv2.resize(mask_utils.decode(a["segmentation"]), None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polys = [((c.reshape(-1) + 0.5) / 8).tolist() for c in contours if len(c) >= 3]
        anns.append({**a, "category_id": ids[a["category_id"]], "segmentation": polys})
    coco = {"images": shard_coco["images"], "annotations": anns,
            "categories": [{"id": 7, "name": "pallet_jack"}, {"id": 3, "name": "pedestrian"}]}
    path.write_text(json.dumps(coco))
    return coco


def test_polygon_file_with_other_category_ids(shard_coco, rendered_shard, tmp_path):
    from pipeline.analysis import error_analysis
    from pipeline.coco import decode_segmentation
    from pipeline.data import CocoInstances

    poly = polygon_file(shard_coco, tmp_path / "poly.json")
    assert {a["category_id"] for a in poly["annotations"]} == {3, 7}
    # Training/eval dataset: labels by name (pedestrian 1, pallet_jack 2), polygons decoded to masks.
    ds = CocoInstances(tmp_path / "poly.json", rendered_shard, classes=["pedestrian", "pallet_jack"])
    _, target = ds[0]
    first = [a for a in poly["annotations"] if a["image_id"] == poly["images"][0]["id"]]
    assert target["labels"].tolist() == [{3: 1, 7: 2}[a["category_id"]] for a in first]
    for a, m in zip(first, target["masks"]):
        orig = next(o for o in shard_coco["annotations"] if o["id"] == a["id"])
        rle_mask = decode_segmentation(orig["segmentation"], *m.shape)
        iou = (m.numpy() & rle_mask).sum() / (m.numpy() | rle_mask).sum()
        assert iou > 0.85, iou
    # Scoring: the exact masks as predictions, under the file's own ids, score AP50 1 on polygons.
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"],
              "segmentation": next(o for o in shard_coco["annotations"] if o["id"] == a["id"])["segmentation"]}
             for a in poly["annotations"]]
    m = coco_eval(poly, preds)
    assert m["segm"]["AP50"] == pytest.approx(1.0) and set(m["segm"]["per_class"]) == {"pedestrian", "pallet_jack"}
    confusion, _ = error_analysis(poly, preds, 0.5)
    assert confusion["true"] == ["pedestrian", "pallet_jack", "background"]  # sorted by id: 3 then 7
    assert np.trace(np.array(confusion["matrix"])[:2, :2]) == len(preds)


def test_evaluate_cli_maps_categories_by_name(shard_coco, rendered_shard, tmp_path):
    from pipeline import evaluate
    from pipeline.train import train
    from tests.test_train import CLASSES, MODEL_CFG, train_cfg

    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    train(train_cfg(iterations=1), CLASSES, MODEL_CFG, {"kind": "none"}, ann, rendered_shard, tmp_path / "run")
    polygon_file(shard_coco, tmp_path / "poly.json")
    eval_cfg = {"score_threshold": 0.0, "mask_threshold": 0.5, "confusion_score_threshold": 0.5, "match_iou": 0.5,
                "batch_size": 2, "workers": 0}
    args = ["--checkpoint", str(tmp_path / "run/model_final.pth"), "--image-root", str(rendered_shard),
            "--eval-cfg", json.dumps(eval_cfg), "--model-cfg", json.dumps(MODEL_CFG)]
    assert evaluate.main([*args, "--ann", str(tmp_path / "poly.json"), "--out-dir", str(tmp_path / "e")]) == 0
    preds = json.loads((tmp_path / "e/predictions.json").read_text())
    assert preds and {p["category_id"] for p in preds} <= {3, 7}
    metrics = json.loads((tmp_path / "e/metrics.json").read_text())
    assert set(metrics["segm"]["per_class"]) == {"pedestrian", "pallet_jack"} and metrics["not_detectable"] == []
    bad = json.loads((tmp_path / "poly.json").read_text())
    bad["categories"] = [{"id": 3, "name": "pedestrian"}, {"id": 7, "name": "forklift"}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"bad.json: .*no class for \['forklift'\]; no category named \['pallet_jack'\] \(list it"):
        evaluate.main([*args, "--ann", str(tmp_path / "bad.json"), "--out-dir", str(tmp_path / "b")])


def test_score_threshold_reaches_below_the_models_own_cut(shard_coco, rendered_shard, tmp_path):
    import torch

    from pipeline.data import CocoInstances, eval_transforms
    from pipeline.evaluate import predict
    from pipeline.model import build_model

    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(shard_coco))
    ds = CocoInstances(ann, rendered_shard, eval_transforms(), targets=False)
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    with torch.no_grad():  # background logit far ahead: every object score 0.0025, under the default 0.05 cut
        model.roi_heads.box_predictor.cls_score.weight.zero_()
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([6.0, 0.0, 0.0]))
    low = predict(model, ds, torch.device("cpu"), 0.0, 0.5, batch_size=2)
    assert low and max(p["score"] for p in low) < 0.05
    assert predict(model, ds, torch.device("cpu"), 0.05, 0.5, batch_size=2) == []
    # one forward pass per batch gives what one image at a time gives
    one = predict(model, ds, torch.device("cpu"), 0.0, 0.5, batch_size=1)
    assert [(p["image_id"], p["category_id"]) for p in one] == [(p["image_id"], p["category_id"]) for p in low]
    assert np.allclose([p["bbox"] for p in one], [p["bbox"] for p in low], atol=1e-2)
