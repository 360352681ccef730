"""The proof page's numbers (pipeline/proof.py) on real masks (examples/site): seed means equal the
mean of COCOeval per seed, intervals hold the point, differences from the control are paired over test
images and widen with disagreeing seeds, and the page calls a difference only where its interval excludes 0."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluate import coco_eval
from pipeline.proof import main
from tests.test_bootstrap import perturbed, site_gt


def _run(folder: Path, gt: dict, preds: list[dict], curve: list[tuple[int, float]]) -> Path:
    (folder / "eval").mkdir(parents=True)
    (folder / "train").mkdir()
    (folder / "eval" / "predictions.json").write_text(json.dumps(preds))
    (folder / "eval" / "metrics.json").write_text(json.dumps(coco_eval(gt, preds)))
    (folder / "train" / "metrics.csv").write_text("iteration,loss,images_per_s\n1,1.0,2.0\n4,0.5,2.0\n")
    (folder / "train" / "val_metrics.csv").write_text(
        "iteration,segm_AP,bbox_AP\n" + "".join(f"{i},{ap},{ap}\n" for i, ap in curve))
    return folder


def test_rows_are_seed_means_with_paired_two_level_intervals_and_the_page_states_only_what_they_support(tmp_path):
    gt = site_gt()
    test = tmp_path / "test.json"
    test.write_text(json.dumps(gt))
    exact = [dict(p, score=1.0) for p in perturbed(gt, 0, drop=0.0, shift=0, strays=0)]
    for p in exact:
        p["category_id"] = next(a["category_id"] for a in gt["annotations"]
                                if a["image_id"] == p["image_id"] and a["segmentation"] == p["segmentation"])
    runs = []
    # control: two seeds of poor models; fine-tune: two seeds of exact masks; from scratch: like the control
    for start, n, seed, preds in (("continued", 0, 0, perturbed(gt, 1, drop=0.5, shift=6)),
                                  ("continued", 0, 1, perturbed(gt, 2, drop=0.5, shift=6)),
                                  ("fine_tune", 4, 0, exact), ("fine_tune", 4, 1, exact),
                                  ("pooled", 4, 0, exact), ("pooled", 4, 1, perturbed(gt, 4, drop=0.5, shift=6)),
                                  ("from_scratch", 4, 0, perturbed(gt, 1, drop=0.5, shift=6)),
                                  ("from_scratch", 4, 1, perturbed(gt, 2, drop=0.5, shift=6))):
        runs.append((start, n, seed, _run(tmp_path / f"{start}_{n}_{seed}", gt, preds, [(0, 0.1 * seed), (4, 0.3)])))
    zero = _run(tmp_path / "zero", gt, perturbed(gt, 3, drop=0.6, shift=8), [])
    info = {"title": "t", "classes": ["pedestrian", "pallet_jack"], "iterations": 4, "batch_size": 1,
            "eval_every": 2, "test_images": len(gt["images"]), "seeds": [0, 1]}
    args = [a for start, n, seed, d in runs for a in ("--run", start, str(n), str(seed), str(d))]
    out = tmp_path / "out"
    assert main(args + ["--zero-shot", str(zero / "eval" / "metrics.json"), "--test-json", str(test),
                        "--resamples", "200", "--info", json.dumps(info), "--out-dir", str(out)]) == 0
    result = json.loads((out / "proof.json").read_text())
    rows = {(r["start"], r["n"]): r for r in result["rows"]}
    assert list(rows) == [("continued", 0), ("fine_tune", 4), ("pooled", 4), ("from_scratch", 4)]
    for (start, n), r in rows.items():
        for iou in ("segm", "bbox"):
            mean = sum(s[iou]["AP"] for s in r["per_seed"]) / 2  # COCOeval's own AP per seed, averaged
            iv = r[iou]["AP"]["all"]
            assert iv["value"] == pytest.approx(mean, abs=1e-6) and iv["lo"] <= iv["value"] <= iv["hi"]
    assert rows[("fine_tune", 4)]["segm"]["AP"]["all"]["value"] == pytest.approx(1.0)
    # jacks by visibility: the example's jacks carry none (no `visibility`, no CVAT `occluded`), so only "all",
    # which is COCOeval's jack AP averaged over the seeds
    for r in rows.values():
        jack = r["jack_by_visibility"]
        assert list(jack) == ["all"] and jack["all"]["n"] == sum(
            a["category_id"] == 2 and not a["iscrowd"] for a in gt["annotations"])
        for iou in ("segm", "bbox"):
            mean = sum(s[iou]["per_class"]["pallet_jack"] for s in r["per_seed"]) / 2
            assert jack["all"][iou] == pytest.approx(mean, abs=1e-4)
    assert [p["iteration"] for p in rows[("fine_tune", 4)]["val_curve"]] == [0, 4]  # from the starting weights
    assert rows[("fine_tune", 4)]["val_curve"][0]["segm_AP"] == pytest.approx(0.05)
    # paired: exact masks are above the poor control; the same models as the control are even, their interval
    # around 0 only from the seeds each row draws; seeds that disagree widen a row's interval
    up = rows[("fine_tune", 4)]["vs_control"]["bbox"]["AP"]["all"]
    even = rows[("from_scratch", 4)]["vs_control"]["bbox"]["AP"]["all"]
    split = rows[("pooled", 4)]["vs_control"]["bbox"]["AP"]["all"]
    assert up["lo"] > 0 and even["value"] == 0.0 and even["lo"] < 0 < even["hi"]
    assert split["hi"] - split["lo"] > 2 * (up["hi"] - up["lo"])
    assert "vs_control" not in rows[("continued", 0)] and "vs_no_adaptation" in rows[("fine_tune", 4)]
    targets = {t["start"]: t for t in result["targets"]["box_ap_above_control_at_largest_n"]}
    assert targets["fine_tune"]["verdict"] == "above" and "from_scratch" not in targets  # starts from the site-A model
    html = (out / "index.html").read_text()
    for text in ("What the intervals support", "not distinguishable", "above", "continued on site A (control)",
                 "Iteration 0 is each row's starting weights", "Pallet-jack mask / box AP by visibility"):
        assert text in html, text
    assert (out / "ap_vs_n.png").stat().st_size > 1000 and (out / "ap_vs_iterations.png").stat().st_size > 1000
