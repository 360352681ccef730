"""Contact sheet on handmade COCO files: a sheet the first shards fill never reads the others (#23:
1,000 shard files at 50k images)."""
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.coco import encode_mask
from pipeline.contact_sheet import contact_sheet, main


def shard(tmp_path, name: str, images: int):
    """A shard COCO file of `images` 60x40 grey images, one box-shaped pedestrian mask each."""
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "pedestrian"}]}
    for i in range(1, images + 1):
        file_name = f"{name}_{i}.png"
        Image.new("RGB", (60, 40), (30 * i % 255, 90, 90)).save(tmp_path / file_name)
        m = np.zeros((40, 60), bool)
        m[5:5 + 3 * i, 10:20] = True
        coco["images"].append({"id": i, "file_name": file_name, "width": 60, "height": 40})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 1, "segmentation": encode_mask(m),
                                    "bbox": [10.0, 5.0, 10.0, 3.0 * i], "area": 30.0 * i, "iscrowd": 0})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(coco))
    return path


def test_sheet_filled_by_the_first_shards_never_reads_the_rest(tmp_path):
    first, second = shard(tmp_path, "a", 3), shard(tmp_path, "b", 3)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    alone = np.asarray(contact_sheet([first, second], tmp_path, max_images=4, thumb_width=60))
    # the sheet needs 3 + 1 images: a broken third file is never opened, and the sheet is the same
    assert np.array_equal(np.asarray(contact_sheet([first, second, broken], tmp_path, max_images=4,
                                                   thumb_width=60)), alone)
    out = tmp_path / "sheet.png"
    assert main([str(first), str(broken), "--image-root", str(tmp_path), "--max-images", "2", "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * 640 + 8, 213)  # two pairs (render | masks) of 320 px side by side
    # a sheet that still needs images does read the next file, and names it when it is broken
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        contact_sheet([first, broken], tmp_path, max_images=4, thumb_width=60)
