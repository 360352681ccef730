"""Training resumes only its own run, a finished run rerun writes every output, and validation
matches categories by name."""
import csv
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.coco import decode_segmentation
from pipeline.data import CocoInstances, eval_transforms
from pipeline.model import load_checkpoint
from pipeline.tblog import Board
from pipeline.train import train, validate
from tests.test_train import CLASSES, MODEL_CFG, train_cfg

pytestmark = pytest.mark.slow
NONE = {"kind": "none", "arch": "maskrcnn_resnet50_fpn"}


def losses(out):
    with open(out / "metrics.csv") as f:
        return [(int(r["iteration"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_changed_training_data_trains_afresh(shard_coco, rendered_shard, tmp_path, caplog):
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    out = tmp_path / "run"
    train(train_cfg(), CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out)
    # the same image files re-rendered from other inputs (the frame keys annotate copies) and one label fewer
    changed = {**shard_coco, "images": [{**im, "frame_key": "re-rendered"} for im in shard_coco["images"]],
               "annotations": shard_coco["annotations"][1:]}
    ann.write_text(json.dumps(changed))
    caplog.set_level(logging.INFO, logger="pipeline.train")
    result = train(train_cfg(), CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out)
    assert "belongs to another run (train_data differ): training afresh" in caplog.text
    assert "resuming" not in caplog.text
    # exactly what a first run on the new data gives
    fresh = tmp_path / "fresh"
    train(train_cfg(), CLASSES, MODEL_CFG, NONE, ann, rendered_shard, fresh)
    assert losses(out) == losses(fresh) and [i for i, _ in losses(out)] == [1, 2]
    assert result["final_loss"] == losses(fresh)[-1][1]
    # other base weights, settings or classes: afresh as well
    caplog.clear()
    train(train_cfg(), CLASSES, MODEL_CFG, {**NONE, "sha256": "other"}, ann, rendered_shard, out)
    assert "(weights differ)" in caplog.text
    caplog.clear()
    train(train_cfg(), CLASSES[::-1], MODEL_CFG, NONE, ann, rendered_shard, tmp_path / "one", stop_after=1)
    train(train_cfg(), CLASSES, MODEL_CFG, NONE, ann, rendered_shard, tmp_path / "one")
    assert "(classes differ)" in caplog.text


def test_rerun_of_a_finished_training_writes_every_output(shard_coco, rendered_shard, tmp_path, caplog):
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    out = tmp_path / "run"
    cfg = train_cfg(eval_every=1)
    first = train(cfg, CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out, val_json=ann)
    outputs = ["model_final.pth", "best.pth", "metrics.csv", "val_metrics.csv"]
    before = {name: (out / name).read_bytes() for name in outputs if name.endswith(".csv")}
    models = {name: load_checkpoint(out / name)["model"] for name in ("model_final.pth", "best.pth")}
    for name in outputs:  # what Snakemake does to a job's outputs before it runs it again
        (out / name).unlink()
    caplog.set_level(logging.INFO, logger="pipeline.train")
    again = train(cfg, CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out, val_json=ann)
    assert "resuming from" in caplog.text and "at iteration 2 of 2" in caplog.text
    assert again == first
    assert all((out / name).is_file() for name in outputs)
    assert {name: (out / name).read_bytes() for name in before} == before
    for name, state in models.items():
        ckpt = load_checkpoint(out / name, CLASSES)
        assert ckpt["iteration"] in (1, 2) and all(torch.equal(state[k], ckpt["model"][k]) for k in state), name
    # best.pth comes back from the checkpoint's own copy, whatever became of the best-so-far file
    # (a killed run may have found a better model after its last checkpoint: not this run's)
    best_it = load_checkpoint(out / "best.pth")["iteration"]
    (out / "best_of_run.pth").unlink()
    caplog.clear()
    train(cfg, CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out, val_json=ann)
    assert "at iteration 2 of 2" in caplog.text
    assert all(torch.equal(models["best.pth"][k], v) for k, v in load_checkpoint(out / "best.pth")["model"].items())
    # without it the run cannot hand back its best.pth: it trains again
    (out / "best_at_checkpoint.pth").unlink()
    caplog.clear()
    train(cfg, CLASSES, MODEL_CFG, NONE, ann, rendered_shard, out, val_json=ann)
    assert (f"records its best model at iteration {best_it}, but best_at_checkpoint.pth holds nothing: "
            "training afresh") in caplog.text
    assert (out / "best.pth").is_file() and [i for i, _ in losses(out)] == [1, 2]


class PerfectModel(torch.nn.Module):
    """Returns the ground truth of each image in dataset order, labelled as the model labels classes:
    1 + the position of the category's *name* in CLASSES."""

    def __init__(self, coco):
        super().__init__()
        self.roi_heads = SimpleNamespace(score_thresh=0.05)
        names = {c["id"]: c["name"] for c in coco["categories"]}
        self.outputs = []
        for im in coco["images"]:
            anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
            masks = [decode_segmentation(a["segmentation"], im["height"], im["width"]) for a in anns]
            self.outputs.append({
                "boxes": torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                                      dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor([1 + CLASSES.index(names[a["category_id"]]) for a in anns], dtype=torch.int64),
                "scores": torch.ones(len(anns)),
                "masks": torch.from_numpy(np.array(masks, np.float32)).reshape(-1, 1, im["height"], im["width"])})
        self.calls = 0

    def forward(self, images):
        out = self.outputs[self.calls:self.calls + len(images)]
        self.calls += len(images)
        return out


def test_validation_during_training_matches_categories_by_name(shard_coco, rendered_shard, tmp_path):
    # the same labels numbered the other way round, as a labelling tool may export them
    swap = {1: 2, 2: 1}
    other_ids = {**shard_coco, "categories": [{**c, "id": swap[c["id"]]} for c in shard_coco["categories"]],
                 "annotations": [{**a, "category_id": swap[a["category_id"]]} for a in shard_coco["annotations"]]}
    assert {a["category_id"] for a in shard_coco["annotations"]} == {1, 2}  # both classes present
    for i, coco in enumerate((shard_coco, other_ids)):
        ann = tmp_path / f"val{i}.json"
        ann.write_text(json.dumps(coco))
        val_ds = CocoInstances(ann, rendered_shard, eval_transforms(), targets=False, classes=CLASSES)
        ap = validate(PerfectModel(coco), val_ds, torch.device("cpu"), 1, [], tmp_path / f"val{i}.csv", 1, 0,
                      Board(None, 0))
        assert ap == pytest.approx(1.0), i
