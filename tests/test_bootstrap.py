"""Bootstrap intervals of COCO AP on the example site's real masks (examples/site, polygons of rendered
jacks and people): the re-accumulation equals COCOeval, also over a multiset of images, and the intervals
and paired differences behave as they must."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from pipeline.__main__ import main as pipeline_main
from pipeline.bootstrap import bootstrap, coco_gt, tables
from pipeline.coco import encode_mask, segmentation_rle

SITE = Path(__file__).resolve().parent.parent / "examples" / "site"
CLASSES = ["pedestrian", "pallet_jack"]


def site_gt() -> dict:
    """examples/site in our categories, masks as RLE with the box they span."""
    from pipeline.datasets import normalize

    logger = logging.getLogger("pipeline.datasets")
    level = logger.level
    logger.setLevel(logging.ERROR)  # quiet here only: later tests read this logger's records (caplog)
    try:
        gt, _ = normalize(json.loads((SITE / "instances_default.json").read_text()), CLASSES,
                          {"person": "pedestrian", "pallet truck": "pallet_jack"}, SITE)
    finally:
        logger.setLevel(level)
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    for a in gt["annotations"]:
        rle = segmentation_rle(a["segmentation"], *size[a["image_id"]])
        a["bbox"] = mask_utils.toBbox(rle).tolist()
        a["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    return gt


def perturbed(gt: dict, seed: int, tied_scores: bool = False, drop: float = 0.2, shift: int = 2,
              strays: int = 8) -> list[dict]:
    """Predictions from the ground truth: masks shifted by up to `shift` px, some dropped, some with the other
    class, `strays` stray 8x15 masks; scores random (rounded to 0.1 for ties when `tied_scores`)."""
    rng = np.random.default_rng(seed)
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    score = (lambda: float(np.round(rng.random(), 1))) if tied_scores else (lambda: float(rng.random()))
    preds = []
    for a in gt["annotations"]:
        if a["iscrowd"] or rng.random() < drop:
            continue
        m = np.roll(mask_utils.decode(a["segmentation"]), tuple(rng.integers(-shift, shift + 1, 2)), (0, 1))
        cat = a["category_id"] if rng.random() > 0.1 else 3 - a["category_id"]
        preds.append(_result(a["image_id"], cat, score(), m))
    for _ in range(strays):
        im = gt["images"][rng.integers(len(gt["images"]))]
        m = np.zeros(size[im["id"]], np.uint8)
        x, y = rng.integers(0, 100), rng.integers(0, 80)
        m[y:y + 15, x:x + 8] = 1
        preds.append(_result(im["id"], int(rng.integers(1, 3)), score(), m))
    return preds


def _result(image_id: int, cat: int, score: float, mask: np.ndarray) -> dict:
    rle = encode_mask(mask)
    return {"image_id": image_id, "category_id": cat, "score": score, "bbox": mask_utils.toBbox(rle).tolist(),
            "segmentation": rle}


def cocoeval_stats(gt: dict, preds: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools.cocoeval import COCOeval

    key = "segmentation" if iou_type == "segm" else "bbox"
    dets = [{k: v for k, v in p.items() if k in ("image_id", "category_id", "score", key)} for p in preds]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_gt(copy.deepcopy(gt))
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("tied", [False, True])
def test_identity_weights_reproduce_cocoeval(iou_type, tied):
    gt = site_gt()
    preds = perturbed(gt, seed=1, tied_scores=tied)
    stats = cocoeval_stats(gt, preds, iou_type)
    assert 0.02 < stats[0] < 0.9  # a real case: neither empty nor perfect
    ours = tables(gt, preds, iou_type).scores(np.ones(len(gt["images"])))
    assert abs(ours[0, 0] - stats[0]) < 1e-12 and abs(ours[1, 0] - stats[1]) < 1e-12
    from pipeline.evaluate import coco_eval

    per_class = coco_eval(gt, preds)[iou_type]["per_class"]
    assert ours[0, 1:] == pytest.approx([per_class[c] for c in CLASSES], abs=1e-12)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_weights_equal_cocoeval_on_duplicated_images(iou_type):
    """Image i counted w[i] times = COCOeval on a file holding w[i] copies of it (ids renumbered)."""
    gt = site_gt()
    preds = perturbed(gt, seed=2)  # distinct scores: copies are the only ties
    weights = np.array([2, 0, 1, 3, 1, 0, 1, 2, 0, 1], float)
    big = {"categories": gt["categories"], "images": [], "annotations": []}
    big_preds = []
    for i, im in enumerate(sorted(gt["images"], key=lambda im: im["id"])):
        for c in range(int(weights[i])):
            new_id = im["id"] * 10 + c
            big["images"].append({**im, "id": new_id})
            big["annotations"] += [{**a, "id": a["id"] * 10 + c, "image_id": new_id}
                                   for a in gt["annotations"] if a["image_id"] == im["id"]]
            big_preds += [{**p, "image_id": new_id} for p in preds if p["image_id"] == im["id"]]
    stats = cocoeval_stats(big, big_preds, iou_type)
    ours = tables(gt, preds, iou_type).scores(weights)
    assert abs(ours[0, 0] - stats[0]) < 1e-12 and abs(ours[1, 0] - stats[1]) < 1e-12
    assert abs(ours[0, 0] - tables(gt, preds, iou_type).scores(np.ones(10))[0, 0]) > 1e-3  # weights matter


def test_intervals_contain_point_and_paired_differences():
    gt = site_gt()
    worse = perturbed(gt, seed=3, drop=0.4)
    better = perturbed(gt, seed=3, drop=0.0, shift=0, strays=0)
    r = bootstrap(gt, worse, worse, resamples=300, seed=0)
    for iou_type in ("segm", "bbox"):
        for metric in ("AP", "AP50"):
            for name, c in r[iou_type][metric].items():
                assert c["lo"] <= c["value"] <= c["hi"], (iou_type, metric, name, c)
                assert r["difference"][iou_type][metric][name] == {"value": 0.0, "lo": 0.0, "hi": 0.0,
                                                                     "undefined_resamples": 0}
    assert r["segm"]["AP"]["all"]["hi"] > r["segm"]["AP"]["all"]["lo"]  # resampling does vary the score
    d = bootstrap(gt, better, worse, resamples=300, seed=0)["difference"]
    for iou_type in ("segm", "bbox"):
        assert d[iou_type]["AP"]["all"]["lo"] > 0 and d[iou_type]["AP50"]["all"]["lo"] > 0
    again = bootstrap(gt, worse, resamples=300, seed=0)
    assert again["segm"] == r["segm"]  # seeded
    assert bootstrap(gt, worse, resamples=300, seed=1)["segm"] != r["segm"]


def test_cli_writes_intervals_and_prints_table(tmp_path, capsys):
    gt = site_gt()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "a.json").write_text(json.dumps(perturbed(gt, seed=4, drop=0.0)))
    (tmp_path / "b.json").write_text(json.dumps(perturbed(gt, seed=4, drop=0.5)))
    assert pipeline_main(["bootstrap", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "a.json"),
                          "--pred-b", str(tmp_path / "b.json"), "--out", str(tmp_path / "iv.json"),
                          "--resamples", "50"]) == 0
    out = json.loads((tmp_path / "iv.json").read_text())
    assert out["resamples"] == 50 and out["num_images"] == 10 and set(out["difference"]) == {"segm", "bbox"}
    assert set(out["segm"]["AP"]) == {"all", *CLASSES}
    printed = capsys.readouterr().out
    assert "segm  AP     pallet_jack" in printed and "A-B" in printed
    (tmp_path / "bad.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="bad.json: expected a list of COCO results"):
        pipeline_main(["bootstrap", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "bad.json"),
                       "--out", str(tmp_path / "x.json")])
