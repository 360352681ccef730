"""RPN anchor coverage: boxes cut to torchvision's anchor shapes on the anchor grid are covered exactly,
tiny 8x20 boxes are not (and are by the fitted set), boxes are resized as the model resizes them, the
feature grid is the real backbone's, and torchvision's Mask R-CNN runs with the fitted anchors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pipeline.__main__ import main as pipeline_main
from pipeline.anchors import DEFAULT_RATIOS, DEFAULT_SIZES, analyse, feature_shapes, resized_groups
from tests.test_bootstrap import SITE, site_gt

W, H = 1280, 960  # input size = image size: no resize; P6 has a whole stride 64 (960 / 15)
CATS = [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}]


def anchor_shaped_boxes() -> list[list[float]]:
    """xywh boxes of every default anchor shape that fits the image, centred on grid points of its level
    (torchvision's cell anchors: h/w = ratio, area = size^2, corners rounded; centres at multiples of the stride)."""
    boxes = []
    for level, (size,) in enumerate(DEFAULT_SIZES):
        stride = 4 * 2 ** level
        for ratio in DEFAULT_RATIOS[level]:
            hr = math.sqrt(ratio)
            x0, y0, x1, y1 = (round(v) for v in (-size / hr / 2, -size * hr / 2, size / hr / 2, size * hr / 2))
            for cx, cy in ((stride * 3, stride * 3), (stride * (W // (2 * stride)), stride * (H // (2 * stride)))):
                if cx + x0 >= 0 and cy + y0 >= 0 and cx + x1 <= W and cy + y1 <= H:
                    boxes.append([cx + x0, cy + y0, x1 - x0, y1 - y0])
    return boxes


def box_coco() -> dict:
    rng = np.random.default_rng(0)
    anns = [{"image_id": 1, "category_id": 1, "bbox": b} for b in anchor_shaped_boxes()]
    anns += [{"image_id": 1, "category_id": 2, "bbox": [float(x), float(y), 8.0, 20.0]}
             for x, y in zip(rng.uniform(0, W - 8, 40), rng.uniform(0, H - 20, 40))]
    return {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}], "categories": CATS,
            "annotations": [{**a, "id": k + 1, "iscrowd": 0, "area": a["bbox"][2] * a["bbox"][3]}
                            for k, a in enumerate(anns)]}


@pytest.mark.slow  # ~2 s: seven anchor sets on a 1280x960 input
def test_default_anchors_cover_their_own_shapes_and_miss_tiny_boxes():
    coco = box_coco()
    shapes = [a["bbox"] for a in coco["annotations"] if a["category_id"] == 1]
    for (size,) in DEFAULT_SIZES:  # every level, P6 (stride 64) included, has shapes that fit
        assert any(abs(math.sqrt(w * h) / size - 1) < 0.02 for _, _, w, h in shapes), size
    r = analyse(coco, H, W)
    d = r["default"]["coverage"]
    assert d["pedestrian"]["iou>=0.7"] == 1.0 and d["pedestrian"]["median_best_iou"] == 1.0
    assert d["pallet_jack"]["iou>=0.5"] == 0.0  # 160 px^2 boxes vs anchors of at least 32x32
    f = r["fitted"]["coverage"]
    assert f["pallet_jack"]["iou>=0.5"] > 0.5 and f["pallet_jack"]["iou>=0.7"] > d["pallet_jack"]["iou>=0.7"]
    assert r["boxes"]["pallet_jack"]["size_px"]["p50"] == pytest.approx(math.sqrt(160), abs=0.1)
    assert r["boxes"]["pallet_jack"]["aspect_h_over_w"]["p50"] == pytest.approx(2.5)
    sizes = [s[0] for s in r["fitted"]["sizes"]]
    assert len(sizes) == 5 and sizes == sorted(set(sizes)) and len(set(map(len, r["fitted"]["ratios"]))) == 1


def test_boxes_are_resized_as_the_model_resizes():
    gt = site_gt()  # 160x120 frames: the default 480/640 input scales them by 4
    (g,) = resized_groups(gt, 480, 640)
    assert g["padded"] == (480, 640)
    first = next(a for a in gt["annotations"] if not a["iscrowd"])
    x, y, w, h = first["bbox"]
    assert g["boxes"][0].tolist() == pytest.approx([4 * x, 4 * y, 4 * (x + w), 4 * (y + h)], abs=1e-3)


@pytest.mark.slow  # builds and runs Mask R-CNN: ~4 s on one core
def test_fitted_anchors_run_in_torchvision_mask_rcnn():
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    r = analyse(box_coco(), H, W, n_ratios=(4,))
    sizes, ratios = r["fitted"]["sizes"], r["fitted"]["ratios"]
    assert len(ratios[0]) == 4
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64,
                                  rpn_anchor_generator=AnchorGenerator(sizes, ratios)).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 96))
        out = model([torch.rand(3, 64, 64)])[0]
    assert [tuple(f.shape[-2:]) for f in feats.values()] == feature_shapes(64, 96)  # the grid we assume
    assert model.rpn.head.cls_logits.out_channels == 4 and out["masks"].shape[-2:] == (64, 64)


def test_cli_prints_table_and_uses_the_schema_input_size(tmp_path, capsys):
    from pipeline.config import section_defaults

    (tmp_path / "train.json").write_text(json.dumps(site_gt()))
    assert pipeline_main(["anchors", "--coco", str(tmp_path / "train.json"), "--out", str(tmp_path / "a.json")]) == 0
    out = json.loads((tmp_path / "a.json").read_text())
    model = section_defaults("model")
    assert out["input_size_px"] == [model["min_size_px"], model["max_size_px"]]
    assert set(out["default"]["coverage"]) == {"all", "pedestrian", "pallet_jack"}
    printed = capsys.readouterr().out
    assert "default anchors: sizes [32, 64, 128, 256, 512], ratios [0.5, 1.0, 2.0]" in printed
    assert "fitted anchors" in printed
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="bad.json: missing or non-list 'annotations'"):
        pipeline_main(["anchors", "--coco", str(tmp_path / "bad.json"), "--out", str(tmp_path / "b.json")])
    assert SITE.is_dir()
