"""Every `python -m pipeline <stage>` runs with only its required arguments: the rest, and the keys a
partial config-section JSON leaves out, come from configs/schema.yaml; unknown keys are refused by name."""
import copy
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.coco import encode_mask
from pipeline.config import PROCEDURAL_CLASSES, ConfigError, section_defaults, validate

PARTIAL = {"annotate": {"min_visible_pixels": 5}, "split": {"val": 0.15},
           "model": {"weights": "none", "min_size_px": 96}, "train": {"iterations": 3, "warmup_iters": 1, "scale_jitter": [0.9, 1.1]},
           "evaluate": {"split": "test"}, "report": {"num_images": 1}, "compare": {"zero_shot": False}}


def handmade_coco(root, n: int, size=(96, 128)) -> dict:
    """`n` grey images with one pedestrian-like and one pallet-jack-like rectangle each, COCO with RLE masks."""
    h, w = size
    images, anns = [], []
    for i in range(1, n + 1):
        img = np.full((h, w, 3), 90, np.uint8)
        for cat, (x, y, bw, bh), color in ((1, (10 + i % 5, 20, 16, 40), (200, 40, 40)),
                                           (2, (60, 50 + i % 4, 40, 20), (40, 40, 200))):
            img[y:y + bh, x:x + bw] = color
            mask = np.zeros((h, w), bool)
            mask[y:y + bh, x:x + bw] = True
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": bw * bh, "iscrowd": 0, "segmentation": encode_mask(mask)})
        Image.fromarray(img).save(root / f"img_{i:02d}.png")
        images.append({"id": i, "file_name": f"img_{i:02d}.png", "width": w, "height": h})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}]}


@pytest.mark.parametrize("section", sorted(PARTIAL))
def test_partial_section_is_completed_exactly_as_a_config_file_is(section):
    """section_defaults fills a section as validate() fills the same keys in a whole config."""
    whole = validate({"name": "t", "seed": 0, "classes": list(PROCEDURAL_CLASSES), "model": {"weights": "none"},
                      section: copy.deepcopy(PARTIAL[section])})  # validate fills the dict it is given
    assert section_defaults(section, json.dumps(PARTIAL[section])) == whole[section]
    assert set(whole[section]) > set(PARTIAL[section])  # something was filled in


def test_unknown_key_and_bad_value_are_refused_naming_argument_and_key():
    with pytest.raises(ConfigError, match=r"--eval-cfg: unknown key evaluate\.min_size_px \(allowed: .*score_threshold"):
        section_defaults("evaluate", '{"split": "test", "min_size_px": 480}', "--eval-cfg")
    with pytest.raises(ConfigError, match=r"--train-cfg: train\.iterations: 0 is less than the minimum of 1"):
        section_defaults("train", '{"iterations": 0}', "--train-cfg")
    with pytest.raises(ConfigError, match=r"--model-cfg: not valid JSON .*'\{\}' for all defaults"):
        section_defaults("model", "{weights: none}", "--model-cfg")


@pytest.mark.parametrize("stage,argument,section", [
    ("evaluate", "--eval-cfg", "evaluate"), ("evaluate", "--model-cfg", "model"), ("train", "--train-cfg", "train"),
    ("train", "--model-cfg", "model"), ("report", "--report-cfg", "report"), ("split", "--fractions", "split")])
def test_every_stage_refuses_an_unknown_key_by_argument_and_name(stage, argument, section, capsys):
    from pipeline.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main([stage, argument, '{"no_such_key": 1}'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argument}: unknown key {section}.no_such_key (allowed: " in err


def test_split_and_contact_sheet_with_only_required_arguments(tmp_path):
    from pipeline.contact_sheet import contact_sheet, main as sheet_main
    from pipeline.split import main as split_main

    coco = tmp_path / "shard.json"
    coco.write_text(json.dumps(handmade_coco(tmp_path, 20)))
    assert split_main([str(coco), "--seed", "0", "--out-dir", str(tmp_path / "ds")]) == 0
    counts = {s: len(json.loads((tmp_path / "ds" / f"{s}.json").read_text())["images"]) for s in ("train", "val", "test")}
    assert section_defaults("split") == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert counts == {"train": 14, "val": 3, "test": 3}
    with pytest.raises(SystemExit):  # partial fractions that no longer sum to 1
        split_main([str(coco), "--fractions", '{"train": 0.9}', "--seed", "0", "--out-dir", str(tmp_path / "x")])
    out = tmp_path / "sheet.png"
    assert sheet_main([str(coco), "--image-root", str(tmp_path), "--out", str(out)]) == 0
    expected = contact_sheet([coco], tmp_path, section_defaults("report")["contact_sheet_images"])
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_weights_defaults_are_the_schemas(tmp_path):
    from pipeline.weights import main as weights_main

    assert weights_main(["--weights", "none", "--out", str(tmp_path / "w.json")]) == 0
    assert json.loads((tmp_path / "w.json").read_text()) == {"kind": "none", "arch": section_defaults("model")["arch"]}


@pytest.mark.slow
def test_annotate_with_only_required_arguments(rendered_shard, tmp_path):
    from pipeline.coco import annotate_shard, main as annotate_main

    out = tmp_path / "shard.json"
    assert annotate_main([str(rendered_shard), "--out", str(out)]) == 0
    expected = annotate_shard(rendered_shard, list(PROCEDURAL_CLASSES), section_defaults("annotate")["min_visible_pixels"],
                              "", section_defaults("annotate")["min_visibility"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(expected))


@pytest.mark.slow
def test_train_and_evaluate_take_the_rest_from_the_schema(tmp_path):
    """The reported failure: evaluate with --eval-cfg '{"split": "test"}' (KeyError min_size_px, score_threshold)."""
    import torch

    from pipeline.evaluate import main as evaluate_main
    from pipeline.train import main as train_main

    ann = tmp_path / "ds.json"
    ann.write_text(json.dumps(handmade_coco(tmp_path, 2)))
    (tmp_path / "weights.json").write_text(json.dumps({"kind": "none", "arch": "maskrcnn_resnet50_fpn"}))
    train_partial = {"iterations": 1, "batch_size": 1, "workers": 0, "device": "cpu"}
    model_partial = {"weights": "none", "min_size_px": 96, "max_size_px": 128}
    assert train_main(["--train-json", str(ann), "--image-root", str(tmp_path), "--weights-json",
                       str(tmp_path / "weights.json"), "--model-cfg", json.dumps(model_partial),
                       "--train-cfg", json.dumps(train_partial), "--out-dir", str(tmp_path / "run")]) == 0
    ckpt = torch.load(tmp_path / "run" / "model_final.pth", map_location="cpu", weights_only=True)
    assert ckpt["classes"] == list(PROCEDURAL_CLASSES)
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())["config"]
    assert prov["train"] == section_defaults("train", train_partial)
    assert prov["model"] == section_defaults("model", model_partial)
    assert evaluate_main(["--checkpoint", str(tmp_path / "run" / "model_final.pth"), "--ann", str(ann),
                          "--image-root", str(tmp_path), "--eval-cfg", '{"split": "test"}',
                          "--out-dir", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    defaults = section_defaults("model")
    assert metrics["num_images"] == 2 and metrics["input_size_px"] == [defaults["min_size_px"], defaults["max_size_px"]]
    assert metrics["confusion"]["score_threshold"] == section_defaults("evaluate")["confusion_score_threshold"]
