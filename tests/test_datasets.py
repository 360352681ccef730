"""A site's labelled set (CVAT-style export) read the one way training, evaluation and the report share."""
import json
import logging

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from pipeline.analysis import error_analysis
from pipeline.coco import segmentation_rle
from pipeline.datasets import main as prepare_main
from pipeline.datasets import normalize
from pipeline.evaluate import coco_eval
from tests.real_export import CATEGORY_MAP, crowd_region, make_export

CLASSES = ["pedestrian", "pallet_jack"]


@pytest.fixture
def export(shard_coco, rendered_shard, tmp_path):
    return make_export(shard_coco, rendered_shard, tmp_path)


def test_export_is_put_into_our_categories_with_crowd_kept_and_the_rest_accounted_for(export, shard_coco, caplog):
    ann, images, info = export
    theirs = json.loads(ann.read_text())
    with caplog.at_level(logging.INFO):
        coco, summary = normalize(theirs, CLASSES, CATEGORY_MAP, ann)
    assert [(c["id"], c["name"]) for c in coco["categories"]] == [(1, "pedestrian"), (2, "pallet_jack")]
    # one log line names the category without a class
    assert sum("['forklift']" in r.getMessage() for r in caplog.records) == 1
    assert summary["dropped"] == {"box only (no mask)": 1, "category 'forklift'": 1}
    assert summary["crowd"] == 1 and summary["boxes_clipped"] == 1
    assert summary["category_map"] == {"person": "pedestrian", "pallet truck": "pallet_jack"}
    # every rendered instance is there, under its class, ids kept, mask as drawn (polygons of the render)
    ours = {c["id"]: c["name"] for c in shard_coco["categories"]}
    rendered = {a["id"]: a for a in shard_coco["annotations"]}
    kept = {a["id"]: a for a in coco["annotations"] if not a["iscrowd"]}
    their = {a["id"]: a for a in theirs["annotations"]}
    assert set(kept) == set(info["behind"])
    size = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    for their_id, a in kept.items():
        src = rendered[info["behind"][their_id]]
        assert CLASSES[a["category_id"] - 1] == ours[src["category_id"]]
        assert a["segmentation"] == their[their_id]["segmentation"]  # polygons kept as drawn
        assert a["image_id"] == their[their_id]["image_id"] and src["image_id"] == a["image_id"] - 1001 + \
            min(im["id"] for im in shard_coco["images"])
    h, w = size[1001]
    assert kept[info["edge_id"]]["bbox"][0] + kept[info["edge_id"]]["bbox"][2] == w  # clipped to the image
    assert sorted(im["id"] for im in coco["images"]) == [1001, 1002]
    assert summary["per_class"]["pedestrian"] == sum(a["category_id"] == 1 for a in kept.values())


def test_unmapped_categories_can_be_refused_and_bad_maps_are_named(export):
    ann, _, _ = export
    theirs = json.loads(ann.read_text())
    with pytest.raises(ValueError, match=r"instances_default.json: categories \['forklift'\] map to none"):
        normalize(theirs, CLASSES, CATEGORY_MAP, ann, unmapped="error")
    with pytest.raises(ValueError, match=r"category_map \{'person': 'human'\}"):
        normalize(theirs, CLASSES, {**CATEGORY_MAP, "person": "human"}, ann)
    broken = {**theirs, "annotations": theirs["annotations"] + [{**theirs["annotations"][0], "id": 5000,
                                                                 "image_id": 77}]}
    with pytest.raises(ValueError, match="annotation 5000: image_id 77 is not in images"):
        normalize(broken, CLASSES, CATEGORY_MAP, ann)


def test_cli_writes_the_file_and_checks_image_sizes(export, tmp_path):
    ann, images, _ = export
    out = tmp_path / "prepared" / "ann.json"
    assert prepare_main(["--ann", str(ann), "--images", str(images), "--classes", json.dumps(CLASSES),
                         "--category-map", json.dumps(CATEGORY_MAP), "--out", str(out)]) == 0
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["annotations"] == len(json.loads(out.read_text())["annotations"]) and summary["crowd"] == 1
    theirs = json.loads(ann.read_text())
    theirs["images"][1]["width"] += 1  # labelled at another size (an EXIF-rotated or resized frame)
    ann.write_text(json.dumps(theirs))
    with pytest.raises(ValueError, match=r"image 1002 .*cam2/frame_0001.png is 128x96, the file says 129x96"):
        prepare_main(["--ann", str(ann), "--images", str(images), "--classes", json.dumps(CLASSES),
                      "--category-map", json.dumps(CATEGORY_MAP), "--out", str(out)])


def test_crowd_regions_are_not_trained_on(export, tmp_path):
    from pipeline.data import CocoInstances

    ann, images, _ = export
    coco, _ = normalize(json.loads(ann.read_text()), CLASSES, CATEGORY_MAP, ann)
    path = tmp_path / "real.json"
    path.write_text(json.dumps(coco))
    ds = CocoInstances(path, images, classes=CLASSES)
    for k, im in enumerate(coco["images"]):
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        _, target = ds[k]
        assert len(target["labels"]) == sum(not a["iscrowd"] for a in anns) and len(anns) > 0
        assert target["masks"].shape[0] == len(target["labels"])
    assert any(a["iscrowd"] for a in coco["annotations"])


def test_detections_in_a_crowd_region_are_ignored_like_cocoeval_does(export):
    ann, _, _ = export
    coco, _ = normalize(json.loads(ann.read_text()), CLASSES, CATEGORY_MAP, ann)
    size = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"],
              "segmentation": segmentation_rle(a["segmentation"], *size[a["image_id"]])}
             for a in coco["annotations"] if not a["iscrowd"]]
    h, w = size[1001]
    inside = np.zeros((h, w), dtype=np.uint8)
    inside[4: h // 2 - 4, 4: w // 2 - 4] = 1  # wholly inside the crowd region, scored above every true hit
    rle = mask_utils.encode(np.asfortranarray(inside))
    rle["counts"] = rle["counts"].decode()
    crowd_det = {"image_id": 1001, "category_id": 1, "score": 0.99, "bbox": mask_utils.toBbox(rle).tolist(),
                 "segmentation": rle}
    assert (crowd_region(h, w) & inside).sum() == inside.sum()
    with_crowd = coco_eval(coco, preds + [crowd_det])
    without = coco_eval({**coco, "annotations": [a for a in coco["annotations"] if not a["iscrowd"]]},
                        preds + [crowd_det])
    # in the crowd region the detection is ignored, so the ranking is as if it were not there;
    # without the region it is the top-scored false positive
    assert with_crowd["segm"]["per_class"]["pedestrian"] == pytest.approx(1.0)
    assert without["segm"]["per_class"]["pedestrian"] < 0.99
    _, rows = error_analysis(coco, preds + [crowd_det], 0.5, 0.5)
    row = next(r for r in rows if r["image_id"] == 1001)
    assert row["in_crowd"] == 1 and row["fp"] == 0 and row["fn"] == 0
    _, rows = error_analysis({**coco, "annotations": [a for a in coco["annotations"] if not a["iscrowd"]]},
                             preds + [crowd_det], 0.5, 0.5)
    assert next(r for r in rows if r["image_id"] == 1001)["fp"] == 1


def test_real_split_keeps_folders_whole_and_shuffles_train_deterministically(tmp_path):
    """split_by folder: every frame of one camera folder in one part; the train part in a seeded order
    (the first N of the efficiency curve spread over the set); the CLI refuses a split without test frames."""
    from pipeline.datasets import split_main, split_set, split_units

    images = [{"id": 10 * c + k, "file_name": f"cam{c}/frame_{k:04d}.png", "width": 4, "height": 3}
              for c in range(6) for k in range(5)]
    coco = {"images": images, "annotations": [{"id": i["id"], "image_id": i["id"]} for i in images], "categories": []}
    fractions = {"train": 0.5, "val": 0.2, "test": 0.3}
    parts = split_set(coco, fractions, seed=2, by="folder")
    cams = {name: {im["file_name"].split("/")[0] for im in part["images"]} for name, part in parts.items()}
    assert sum(len(c) for c in cams.values()) == 6 and not (cams["train"] & cams["test"] or cams["val"] & cams["test"])
    assert [len(cams[n]) for n in ("train", "val", "test")] == [3, 1, 2]
    train = [im["file_name"] for im in parts["train"]["images"]]
    assert train != sorted(train) and train == [im["file_name"] for im in split_set(coco, fractions, 2, "folder")["train"]["images"]]
    assert {a["image_id"] for a in parts["test"]["annotations"]} == {im["id"] for im in parts["test"]["images"]}
    by_image = split_set(coco, fractions, seed=2, by="image")
    assert [len(by_image[n]["images"]) for n in ("train", "val", "test")] == [15, 6, 9]
    # folders below the one all images share: a Label Studio export (images/x.jpg) splits by image,
    # an export with camera folders under a common one by camera
    assert split_units([{"file_name": "images/a.jpg"}, {"file_name": "images/b.jpg"}], "folder") == \
        ["images/a.jpg", "images/b.jpg"]
    assert split_units([{"file_name": "site/cams/c1/a.jpg"}, {"file_name": "site/cams/c2/a.jpg"},
                        {"file_name": "site/cams/c2/sub/b.jpg"}, {"file_name": "site/cams/top.jpg"}], "folder") == \
        ["c1", "c2", "c2/sub", "site/cams/top.jpg"]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({**coco, "images": images[:2], "annotations": []}))
    with pytest.raises(SystemExit, match="no test images .*2 images in 2 units, by folder"):
        split_main([str(ann), "--fractions", json.dumps({"train": 0.9, "val": 0.0, "test": 0.1}), "--out-dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
