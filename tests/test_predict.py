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
    # A video (made from the rendered frames): every frame predicted, overlay video, frame indices.
    import cv2
    import numpy as np
    from PIL import Image

    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((rendered_shard / "rgb").glob("*.png"))] * 2
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f[:, :, ::-1].copy())
    writer.release()
    vout = tmp_path / "vpred"
    assert predict_main([str(video), "--checkpoint", str(tmp_path / "run" / "model_final.pth"),
                         "--out-dir", str(vout), "--score-threshold", "0.0", "--batch-size", "3"]) == 0
    cap = cv2.VideoCapture(str(vout / "clip.overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    ok, first = cap.read()
    assert ok and first.shape[:2] == frames[0].shape[:2]
    vres = json.loads((vout / "results.json").read_text())
    assert {r["frame"] for r in vres} <= set(range(len(frames))) and all(r["file_name"] == str(video) for r in vres)
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        predict_main([str(tmp_path / "nothing.mp4"), "--checkpoint", "x", "--out-dir", str(out)])
