"""Evaluation analysis on handmade COCO data: known AP, PR curves, confusion matrix, per-image errors,
the general model's class mapping, training subsets, and the report built from fixtures."""
import json
import types

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.analysis import error_analysis
from pipeline.coco import encode_mask
from pipeline.evaluate import coco_eval, general_label_map, predict
from pipeline.split import subset

CATS = [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}]


def box_mask(x, y, w, h, size=(40, 60)):
    m = np.zeros(size, bool)
    m[y:y + h, x:x + w] = True
    return m


def ann(ann_id, image_id, cat, x, y, w, h, score=None):
    a = {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": [x, y, w, h], "area": w * h,
         "iscrowd": 0, "segmentation": encode_mask(box_mask(x, y, w, h))}
    if score is not None:
        a["score"] = score
        del a["id"], a["area"], a["iscrowd"]
    return a


def make_gt(anns, images=(1,)):
    return {"images": [{"id": i, "file_name": f"img_{i}.png", "width": 60, "height": 40} for i in images],
            "categories": CATS, "annotations": anns}


def test_box_shifted_by_known_iou_gives_known_ap():
    gt = make_gt([ann(1, 1, 1, 10, 10, 10, 10)])
    # 2 px shift: IoU = 80 / 120 = 0.667 -> a match at IoU thresholds 0.50..0.65 (4 of 10) -> AP 0.4
    m = coco_eval(gt, [ann(0, 1, 1, 12, 10, 10, 10, score=0.9)])
    assert m["bbox"]["AP"] == pytest.approx(0.4) and m["segm"]["AP"] == pytest.approx(0.4)
    assert m["bbox"]["AP50"] == pytest.approx(1.0) and m["bbox"]["AP75"] == pytest.approx(0.0)
    pr = m["segm"]["pr"]
    assert len(pr["recall"]) == 101 and pr["iou50"]["pedestrian"][0] == 1.0 and pr["iou75"]["pedestrian"][0] == 0.0
    assert pr["iou50"]["pallet_jack"] is None  # no ground truth of that class: no curve, not a curve at 0
    assert "DONE (t=" not in m["segm"]["summary"] and "Average Precision" in m["segm"]["summary"]


def test_confusion_matrix_and_errors_on_a_handmade_case():
    gt = make_gt([ann(1, 1, 1, 0, 0, 10, 20),     # pedestrian, found
                  ann(2, 1, 2, 20, 0, 20, 10),    # pallet jack, called a pedestrian
                  ann(3, 2, 2, 0, 20, 20, 10),    # pallet jack, missed
                  ann(4, 2, 1, 40, 0, 10, 20)],   # pedestrian, found
                 images=(1, 2))
    preds = [ann(0, 1, 1, 0, 0, 10, 20, score=0.9), ann(0, 1, 1, 20, 0, 20, 10, score=0.8),
             ann(0, 2, 1, 40, 0, 10, 20, score=0.95),
             ann(0, 2, 2, 30, 30, 5, 5, score=0.7),       # nothing there: false positive
             ann(0, 2, 2, 0, 20, 20, 10, score=0.2)]      # would find jack 3, but below the threshold
    c, rows = error_analysis(gt, preds, score_threshold=0.5)
    assert c["true"] == ["pedestrian", "pallet_jack", "background"]
    assert c["predicted"] == ["pedestrian", "pallet_jack", "missed"]
    assert c["matrix"] == [[2, 0, 0],   # both pedestrians found
                           [1, 0, 1],   # one jack taken for a pedestrian, one missed
                           [0, 1, 0]]   # one false positive pallet jack
    # At a lower threshold the low-score detection finds the missed jack.
    assert error_analysis(gt, preds, score_threshold=0.1)[0]["matrix"][1] == [1, 1, 0]
    by = {r["file_name"]: r for r in rows}
    assert by["img_1.png"] == {**by["img_1.png"], "tp": 1, "fp": 0, "fn": 0, "wrong_class": 1, "errors": 1}
    assert by["img_2.png"] == {**by["img_2.png"], "tp": 1, "fp": 1, "fn": 1, "wrong_class": 0, "errors": 2}
    assert by["img_1.png"]["mean_iou"] == pytest.approx(1.0)
    assert rows[0]["file_name"] == "img_2.png"  # worst first


class FixedGeneralModel(torch.nn.Module):
    """Stands in for the 91-class COCO model: fixed detections with COCO labels."""

    def __init__(self):
        super().__init__()
        self.roi_heads = types.SimpleNamespace(score_thresh=0.05)  # what predict sets

    def forward(self, images):
        boxes = torch.tensor([[0, 0, 10, 20], [20, 0, 40, 10], [40, 0, 50, 20]], dtype=torch.float)
        masks = torch.stack([torch.from_numpy(box_mask(0, 0, 10, 20)), torch.from_numpy(box_mask(20, 0, 20, 10)),
                             torch.from_numpy(box_mask(40, 0, 10, 20))]).float()[:, None]
        # COCO labels: 1 person, 8 truck, 1 person
        return [{"boxes": boxes, "labels": torch.tensor([1, 8, 1]), "scores": torch.tensor([0.9, 0.8, 0.3]),
                 "masks": masks}]


def test_general_model_person_maps_to_pedestrian_and_nothing_to_pallet_jack():
    ids = {"pedestrian": 1, "pallet_jack": 2}
    label_map = general_label_map(ids, {"pedestrian": "person"})
    assert label_map == {1: 1}
    assert general_label_map({"pedestrian": 3, "pallet_jack": 7}, {"pedestrian": "person"}) == {1: 3}  # by name
    with pytest.raises(ValueError, match="forklift.*not a COCO category"):
        general_label_map(ids, {"pallet_jack": "forklift"})
    dataset = [(torch.zeros(3, 40, 60), {"image_id": 7})]
    preds = predict(FixedGeneralModel(), dataset, torch.device("cpu"), 0.05, 0.5, label_map)
    assert [(p["category_id"], round(p["score"], 2)) for p in preds] == [(1, 0.9), (1, 0.3)]  # truck dropped
    gt = make_gt([ann(1, 7, 1, 0, 0, 10, 20), ann(2, 7, 2, 20, 0, 20, 10)], images=(7,))
    m = coco_eval(gt, preds)
    assert m["segm"]["per_class"]["pedestrian"] == pytest.approx(1.0)
    assert m["segm"]["per_class"]["pallet_jack"] == 0.0


def test_subset_is_nested_and_checked(tmp_path):
    gt = make_gt([ann(i, i, 1, 0, 0, 5, 5) for i in range(1, 6)], images=range(1, 6))
    small, big = subset(gt, 2, tmp_path / "t.json"), subset(gt, 4, tmp_path / "t.json")
    assert [im["id"] for im in small["images"]] == [1, 2] and len(small["annotations"]) == 2
    assert {im["id"] for im in small["images"]} <= {im["id"] for im in big["images"]}
    with pytest.raises(ValueError, match="t.json: asked for 9 training images, the split has only 5"):
        subset(gt, 9, tmp_path / "t.json")


def test_report_from_fixture_metrics(tmp_path):
    from pipeline import report

    gt = make_gt([ann(1, 1, 1, 0, 0, 10, 20), ann(2, 1, 2, 20, 0, 20, 10), ann(3, 2, 2, 0, 20, 20, 10)],
                 images=(1, 2))
    for i in (1, 2):
        Image.new("RGB", (60, 40), (90, 90, 90)).save(tmp_path / f"img_{i}.png")
    preds = [ann(0, 1, 1, 0, 0, 10, 20, score=0.9), ann(0, 1, 2, 20, 0, 20, 10, score=0.8)]
    metrics = coco_eval(gt, preds)
    confusion, per_image = error_analysis(gt, preds, 0.5)
    metrics.update(num_images=2, num_predictions=2, confusion=confusion, per_image=per_image)
    general = coco_eval(gt, preds[:1])
    general["not_detectable"] = ["pallet_jack"]
    small = coco_eval(gt, [])
    files = {}
    for name, m in {"main": metrics, "zero_shot": general, "n1": small}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(m))
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "train.json").write_text(json.dumps(make_gt([], images=(1, 2, 3, 4))))
    csv = tmp_path / "metrics.csv"
    csv.write_text("iteration,epoch,lr,loss,loss_classifier,loss_box_reg,loss_mask,loss_objectness,loss_rpn_box_reg\n"
                   "1,0,0.01,3,1,0.5,1,0.3,0.2\n2,0,0.005,2,0.6,0.4,0.7,0.2,0.1\n")
    (tmp_path / "val_metrics.csv").write_text("iteration,segm_AP,bbox_AP,segm_AP50\n1,0.1,0.2,0.3\n2,0.4,0.5,0.6\n")
    out = tmp_path / "r" / "index.html"
    assert report.main(["--metrics", str(files["main"]), "--predictions", str(tmp_path / "preds.json"),
                        "--metrics-csv", str(csv), "--ann", str(tmp_path / "gt.json"),
                        "--train-json", str(tmp_path / "train.json"), "--image-root", str(tmp_path),
                        "--compare", f"zero_shot={files['zero_shot']}", f"n1={files['n1']}",
                        "--report-cfg", json.dumps({"num_images": 2, "draw_score_threshold": 0.5}),
                        "--out", str(out), "--summary", str(tmp_path / "r/summary.md"),
                        "--metrics-out", str(tmp_path / "r/metrics.json")]) == 0
    html = out.read_text()
    for text in ("Comparison", "general COCO model, zero-shot", "not detectable", "Data efficiency",
                 "Where it goes wrong", "Per-image errors", "img_2.png", "worst: img_2.png", "best: img_1.png"):
        assert text in html, text
    assert html.count("data:image/png;base64,") == 2 + 3 + 1 + 2  # loss+val AP, PR x2+confusion, curve, gallery
    assert "src='http" not in html and 'src="http' not in html  # self-contained
    md = (tmp_path / "r/summary.md").read_text()
    assert "| general COCO model, zero-shot | per class only | per class only | per class only | 1.000 |" in md
    assert "not detectable" in md and "| 4 |" in md
    # The general model is compared class by class: its all-class AP (pallet_jack 0 averaged in) is never shown.
    assert ("pedestrian mask AP 1.000 here vs 1.000 zero-shot" in md
            and "cannot detect pallet_jack at all" in md and f"{general['segm']['AP']:.3f}" not in md.split("\n")[2])
    assert report.zero_shot_reference(report.summarise(metrics, {"zero_shot": general}, 4, "fine_tune")) == {
        "pedestrian": pytest.approx(1.0)}
    combined = json.loads((tmp_path / "r/metrics.json").read_text())
    assert [p["train_images"] for p in combined["data_efficiency"]] == [1, 4]
    assert combined["rows"][0]["segm_AP"] == pytest.approx(metrics["segm"]["AP"])
