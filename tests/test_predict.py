import json

import pytest

from pipeline.predict import main as predict_main
from pipeline.train import train
from tests.test_train import CLASSES, MODEL_CFG, train_cfg

pytestmark = pytest.mark.slow


def test_predict_on_rendered_images_writes_overlays_and_results(shard_coco, rendered_shard, tmp_path):
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    train(train_cfg(iterations=1), CLASSES, MODEL_CFG, {"kind": "none"}, ann, rendered_shard, tmp_path / "run")
    out = tmp_path / "pred"
    assert predict_main([str(rendered_shard / "rgb"), "--checkpoint", str(tmp_path / "run" / "model_final.pth"),
                         "--out-dir", str(out), "--score-threshold", "0.0"]) == 0
    overlays = sorted(p.name for p in out.glob("*.overlay.png"))
    assert overlays == ["s000_00000.overlay.png", "s000_00001.overlay.png"]
    results = json.loads((out / "results.json").read_text())
    assert isinstance(results, list)
    for r in results:
        assert r["category"] in CLASSES and len(r["bbox"]) == 4 and "counts" in r["segmentation"]
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        predict_main([str(tmp_path / "nothing.mp4"), "--checkpoint", "x", "--out-dir", str(out)])
