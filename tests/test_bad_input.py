"""Bad input gets a clear error naming the file/key; nothing already produced is corrupted."""
import copy
import json
import shutil

import pytest
import torch

from blender.labels import LabelError, instance_map_from_exr
from pipeline.coco import annotate_shard, check_coco
from pipeline.split import main as split_main

pytestmark = pytest.mark.slow


def test_corrupt_exr_is_named(tmp_path):
    bad = tmp_path / "frame.exr"
    bad.write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 100)  # EXR magic, then nothing usable
    with pytest.raises(LabelError, match="frame.exr"):
        instance_map_from_exr(bad, {"inst_001": 1})


def test_corrupt_instance_png_is_named(rendered_shard, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(rendered_shard, bad)
    victim = sorted((bad / "ids").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match=victim.name):
        annotate_shard(bad, ["pedestrian", "pallet_jack"], 1)


def test_metadata_category_not_in_classes(rendered_shard):
    with pytest.raises(ValueError, match="not in classes"):
        annotate_shard(rendered_shard, ["pedestrian"], 1)


@pytest.mark.parametrize("breakage, words", [
    (lambda c: c["annotations"].append(copy.deepcopy(c["annotations"][0])), "duplicate annotation id"),
    (lambda c: c["annotations"][0].update(category_id=7), "category_id 7 not in categories"),
    (lambda c: c["annotations"][0].update(bbox=[-5, 0, 10, 10]), "outside"),
    (lambda c: c["annotations"][0].update(area=0), "zero-area"),
    (lambda c: c["annotations"][0].update(image_id=999), "image_id 999"),
])
def test_bad_coco_is_rejected_and_outputs_untouched(shard_coco, tmp_path, breakage, words):
    broken = copy.deepcopy(shard_coco)
    breakage(broken)
    with pytest.raises(ValueError, match=words):
        check_coco(broken, "shard_000.json")
    path = tmp_path / "shard_000.json"
    path.write_text(json.dumps(broken))
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "train.json").write_text("earlier result")
    with pytest.raises(ValueError, match="shard_000.json"):
        split_main([str(path), "--fractions", '{"train": 0.5, "val": 0.25, "test": 0.25}', "--seed", "0",
                    "--out-dir", str(out)])
    assert (out / "train.json").read_text() == "earlier result"


def test_image_without_objects_is_a_valid_training_sample(shard_coco, rendered_shard, tmp_path):
    from pipeline.data import CocoInstances, collate, train_transforms
    from pipeline.model import build_model

    coco = {**shard_coco, "annotations": [a for a in shard_coco["annotations"] if a["image_id"] != 1]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco))
    ds = CocoInstances(path, rendered_shard, train_transforms(0.0))
    image, target = ds[0]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape[0] == 0
    model = build_model(3, {"kind": "none"}, min_size=96, max_size=128).train()
    images, targets = collate([ds[0], ds[1]])
    losses = model(list(images), list(targets))
    assert all(torch.isfinite(v) for v in losses.values())
