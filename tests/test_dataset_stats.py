"""Dataset statistics (pipeline/dataset_stats.py) from a real rendered shard, and the camera record."""
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.coco import camera_summary
from pipeline.dataset_stats import main


def test_camera_summary_reads_height_pitch_and_field_of_view():
    cam = {"location": [0.0, 0.0, 5.0], "look_at": [5.0, 0.0, 0.0], "focal_mm": 18.0, "sensor_width_mm": 36.0}
    assert camera_summary(cam) == {"rig": "default", "height_m": 5.0, "pitch_deg": 45.0, "hfov_deg": 90.0,
                                   "distortion": 0.0}
    wide = {**cam, "rig": "ceiling_cctv", "look_at": [0.0, 5.0 * 3**0.5, 0.0],
            "lens": {"model": "fisheye_polynomial", "hfov_deg": 110.0, "distortion": 0.7}}
    assert camera_summary(wide) == {"rig": "ceiling_cctv", "height_m": 5.0, "pitch_deg": 30.0, "hfov_deg": 110.0,
                                    "distortion": 0.7}


@pytest.mark.slow
def test_statistics_and_site_sheets_of_a_rendered_shard(shard_coco, rendered_shard, tmp_path):
    coco_path = tmp_path / "shard_000.json"
    coco_path.write_text(json.dumps(shard_coco))
    # a site's set: three people 20, 40 and 80 px tall and a crowd region (left out)
    real = {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
            "categories": [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, h], "iscrowd": 0}
                            for i, h in enumerate((20, 40, 80))]
            + [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 300], "iscrowd": 1}]}
    real_path = tmp_path / "real.json"
    real_path.write_text(json.dumps(real))
    out = tmp_path / "stats"
    assert main([str(coco_path), "--image-root", str(rendered_shard), "--real", f"site={real_path}",
                 "--out-dir", str(out)]) == 0
    stats = json.loads((out / "dataset_stats.json").read_text())
    for name, cat in (("pedestrian", 1), ("pallet_jack", 2)):
        h = [a["bbox"][3] for a in shard_coco["annotations"] if a["category_id"] == cat]
        assert stats["objects"][name]["count"] == len(h) > 0
        assert stats["objects"][name]["height_px"]["p50"] == pytest.approx(np.percentile(h, 50), abs=0.01)
    assert stats["real"]["site"]["pedestrian"] == {"count": 3, "height_px": {
        "p1": 20.4, "p5": 22.0, "p25": 30.0, "p50": 40.0, "p75": 60.0, "p95": 76.0}}
    # the test renders draw cameras from camera_height_m etc.: one rig, "default", every frame
    cams = stats["cameras"]
    assert list(cams) == ["default"] and cams["default"]["frames"] == len(shard_coco["images"])
    heights = [im["camera"]["height_m"] for im in shard_coco["images"]]
    assert cams["default"]["height_m"]["p50"] == pytest.approx(np.median(heights), abs=0.01)
    assert Image.open(out / "dataset_stats.png").size[0] > 800
    # the report's frames per rig: one row of (up to) 4 frames under a label band, per rig
    w, h = shard_coco["images"][0]["width"], shard_coco["images"][0]["height"]
    n4 = min(4, len(shard_coco["images"]))
    assert Image.open(out / "rig_samples.jpg").size == (n4 * 240 + (n4 - 1) * 6, 18 + round(h * 240 / w) + 6)
    sheets = tmp_path / "sheets"
    assert main([str(coco_path), "--image-root", str(rendered_shard), "--site-sheets-dir", str(sheets)]) == 0
    assert sorted(p.name for p in sheets.iterdir()) == ["site_sheet_default.png"]
    n = len(shard_coco["images"])
    w, h = shard_coco["images"][0]["width"], shard_coco["images"][0]["height"]
    assert Image.open(sheets / "site_sheet_default.png").size == (n * 400 + (n - 1) * 6, round(h * 400 / w))
