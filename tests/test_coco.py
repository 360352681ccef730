"""Annotation to COCO with real pycocotools on a real render; merge and split."""
import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from pipeline.coco import annotate_shard, main as annotate_main
from pipeline.split import assign, merge, split

pytestmark = pytest.mark.slow


def test_coco_loads_and_areas_boxes_match_masks(shard_coco, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(shard_coco))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["pedestrian", "pallet_jack"]
    assert len(coco.getImgIds()) == 2 and coco.getAnnIds()
    for ann in coco.loadAnns(coco.getAnnIds()):
        m = coco.annToMask(ann)
        assert m.sum() == ann["area"] > 0
        ys, xs = np.nonzero(m)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_min_visible_pixels_drops_small_instances(rendered_shard, shard_coco):
    areas = sorted(a["area"] for a in shard_coco["annotations"])
    cut = int(areas[len(areas) // 2]) + 1
    kept = annotate_shard(rendered_shard, ["pedestrian", "pallet_jack"], min_visible_pixels=cut)
    assert len(kept["annotations"]) == sum(a >= cut for a in areas)


def test_unknown_instance_id_in_map_is_an_error(rendered_shard, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(rendered_shard, bad)
    ids_path = next((bad / "ids").glob("*.png"))
    ids = cv2.imread(str(ids_path), cv2.IMREAD_UNCHANGED)
    ids[0, 0] = 999
    cv2.imwrite(str(ids_path), ids)
    out = tmp_path / "out.json"
    out.write_text("previous")
    with pytest.raises(ValueError, match="999"):
        annotate_main([str(bad), "--classes", '["pedestrian", "pallet_jack"]', "--out", str(out)])
    assert out.read_text() == "previous"  # nothing half-written


def test_split_is_deterministic_disjoint_and_complete(shard_coco):
    merged = merge([shard_coco, {**shard_coco, "images": [{**im, "file_name": "b/" + im["file_name"]}
                                                         for im in shard_coco["images"]]}])
    assert len(merged["images"]) == 4
    assert len({a["id"] for a in merged["annotations"]}) == len(merged["annotations"])
    fr = {"train": 0.5, "val": 0.25, "test": 0.25}
    a, b = split(merged, fr, 3), split(merged, fr, 3)
    assert a == b
    names = [im["file_name"] for part in a.values() for im in part["images"]]
    assert sorted(names) == sorted(im["file_name"] for im in merged["images"])
    assert sum(len(p["annotations"]) for p in a.values()) == len(merged["annotations"])
    names20 = [f"img{i}.png" for i in range(20)]
    assert assign(names20, fr, 1) != assign(names20, fr, 2)
    assert sorted(assign(names20, fr, 1).values()).count("val") == 5
