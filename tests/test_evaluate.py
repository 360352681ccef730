"""COCOeval through pipeline.evaluate on real annotations."""
import copy

import pytest

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
