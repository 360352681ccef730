"""The report on handmade evaluation files: its title, one colour per class in every figure, and a
provenance that shows every config section the run used and each stage's code version."""
import html as html_lib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import plots, report
from pipeline.analysis import error_analysis
from pipeline.config import section_defaults
from pipeline.contact_sheet import class_color
from pipeline.evaluate import coco_eval
from pipeline.io import files_sha256, provenance
from test_analysis import ann, make_gt


def report_inputs(tmp_path):
    """metrics/predictions/GT/training curve of two tiny images; train/provenance.json beside the curve."""
    gt = make_gt([ann(1, 1, 1, 0, 0, 10, 20), ann(2, 1, 2, 20, 0, 20, 10), ann(3, 2, 2, 0, 20, 20, 10)],
                 images=(1, 2))
    for i in (1, 2):
        Image.new("RGB", (60, 40), (90, 90, 90)).save(tmp_path / f"img_{i}.png")
    preds = [ann(0, 1, 1, 0, 0, 10, 20, score=0.9), ann(0, 1, 2, 20, 0, 20, 10, score=0.8)]
    metrics = coco_eval(gt, preds)
    metrics["confusion"], metrics["per_image"] = error_analysis(gt, preds, 0.5)
    metrics.update(num_images=2, num_predictions=2)
    (tmp_path / "metrics.json").write_text(json.dumps(metrics, sort_keys=True))  # as write_json: sorted keys
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    train = tmp_path / "train"
    train.mkdir()
    (train / "metrics.csv").write_text(
        "iteration,epoch,lr,loss,loss_classifier,loss_box_reg,loss_mask,loss_objectness,loss_rpn_box_reg\n"
        "1,0,0.01,3,1,0.5,1,0.3,0.2\n2,0,0.005,2,0.6,0.4,0.7,0.2,0.1\n")
    return ["--metrics", str(tmp_path / "metrics.json"), "--predictions", str(tmp_path / "preds.json"),
            "--metrics-csv", str(train / "metrics.csv"), "--ann", str(tmp_path / "gt.json"),
            "--image-root", str(tmp_path)]


def test_title_and_heading_are_the_given_title_with_sheets_and_defaults(tmp_path):
    """Only the required arguments (report settings from the schema) plus both crop sheets."""
    for name in ("people.png", "jacks.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    out = tmp_path / "r" / "index.html"
    assert report.main(report_inputs(tmp_path) + ["--title", "Site 7 <night>", "--people-sheet",
                                                  str(tmp_path / "people.png"), "--jack-sheet",
                                                  str(tmp_path / "jacks.png"), "--out", str(out)]) == 0
    text = out.read_text()
    assert re.findall(r"<title>(.*?)</title>", text) == ["Site 7 &lt;night&gt;"]
    assert re.findall(r"<h1>(.*?)</h1>", text) == ["Site 7 &lt;night&gt;"]
    assert "<h2>People sheet</h2>" in text and "<h2>Jack sheet</h2>" in text
    # report settings not given: the schema's (num_images 6: up to 3 worst, then 3 best; 2 images: both worst)
    assert section_defaults("report")["num_images"] == 6
    assert re.findall(r"<figcaption>(\w+: img_\d.png)", text) == ["worst: img_2.png", "worst: img_1.png"]


def test_unknown_report_setting_is_refused_naming_argument_and_key(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main(report_inputs(tmp_path) + ["--report-cfg", '{"num_imgs": 2}', "--out", str(tmp_path / "x.html")])
    err = capsys.readouterr().err
    assert "--report-cfg" in err and "report.num_imgs" in err and "num_images" in err


def test_pr_curves_use_each_class_colour_of_the_one_table(tmp_path):
    """metrics.json lists pr curves by sorted name (pallet_jack first): colours follow the name, not the order."""
    names = {1: "pedestrian", 2: "pallet_jack"}
    table = plots.class_colors(names)
    assert table == {"pedestrian": class_color(1), "pallet_jack": class_color(2)}  # as overlays draw them
    assert table["pedestrian"] != table["pallet_jack"]
    curve = list(np.linspace(1, 0, 101))
    pr = json.loads(json.dumps({"recall": list(np.linspace(0, 1, 101)),
                                "iou50": {"pedestrian": curve, "pallet_jack": curve},
                                "iou75": {"pedestrian": curve, "pallet_jack": None}}, sort_keys=True))
    assert list(pr["iou50"]) == ["pallet_jack", "pedestrian"]
    fig = plots.pr_figure(pr, "mask precision-recall", table)
    lines = {ln.get_label(): ln.get_color() for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"pedestrian IoU 0.50", "pedestrian IoU 0.75", "pallet_jack IoU 0.50"}
    for label, color in lines.items():
        expected = table[label.split()[0]]
        assert tuple(round(c * 255) for c in color[:3]) == expected, label
    # the report's legend shows the same colours
    out = tmp_path / "index.html"
    assert report.main(report_inputs(tmp_path) + ["--out", str(out)]) == 0
    text = out.read_text()
    for name, rgb in table.items():
        assert f"color:rgb{rgb}'>■ {name}" in text


def test_provenance_shows_every_section_and_each_stage_code_version(tmp_path):
    args = report_inputs(tmp_path)
    train_cfg, model_cfg = section_defaults("train", {"iterations": 3}), section_defaults("model", {"weights": "none"})
    train_prov = provenance({"train": train_cfg, "model": model_cfg, "classes": ["pedestrian", "pallet_jack"],
                             "weights": {"kind": "none"}})
    train_prov["git_sha"] = "a" * 40  # trained at another commit than the report is made at
    (tmp_path / "train" / "provenance.json").write_text(json.dumps(train_prov))
    render_cfg = {"shards": 2, "samples": 4}
    manifests = []
    for shard in (0, 1):
        m = tmp_path / f"render/shard_00{shard}/manifest.json"
        m.parent.mkdir(parents=True)
        m.write_text(json.dumps({"shard": shard, "provenance": {"config": {"render": render_cfg, "seed": 5},
                                                                "git_sha": "b" * 40, "render_device": "CPU"}}))
        manifests.append(str(m))
    run_cfg = {"annotate": section_defaults("annotate"), "split": section_defaults("split"),
               "evaluate": section_defaults("evaluate", {"split": "test"})}
    out = tmp_path / "index.html"
    assert report.main(args + ["--run-cfg", json.dumps(run_cfg), "--manifests", *manifests,
                               "--report-cfg", '{"num_images": 1}', "--out", str(out),
                               "--metrics-out", str(tmp_path / "combined.json")]) == 0
    shown = json.loads(html_lib.unescape(re.search(r"<h2>Provenance</h2><pre>(.*?)</pre>", out.read_text(),
                                                   re.S).group(1)))
    cfg = shown["config"]
    assert set(cfg) == {"render", "seed", "annotate", "split", "model", "train", "classes", "weights", "evaluate",
                        "report"}
    assert cfg["render"] == render_cfg and cfg["seed"] == 5 and cfg["train"]["iterations"] == 3
    assert cfg["evaluate"]["split"] == "test" and cfg["report"] == section_defaults("report", {"num_images": 1})
    assert shown["code_version"]["train"] == "a" * 40 and shown["code_version"]["render"] == ["b" * 40]
    assert shown["code_version"]["report"] == shown["git_sha"] and "torch" in shown["packages"]
    assert shown["code_version"]["pipeline_sha256"] == files_sha256(sorted(Path(report.__file__).parent.glob("*.py")))
    assert shown["stages"]["render"] == ["CPU"]
    assert json.loads((tmp_path / "combined.json").read_text())["provenance"] == shown
