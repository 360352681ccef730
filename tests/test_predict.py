import json
import shutil

import pytest

from pipeline.predict import main as predict_main
from pipeline.train import train
from tests.test_train import CLASSES, MODEL_CFG, train_cfg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(shard_coco, rendered_shard, tmp_path_factory):
    """A one-iteration model trained on the rendered fixture."""
    tmp = tmp_path_factory.mktemp("predict_ckpt")
    ann = tmp / "train.json"
    ann.write_text(json.dumps(shard_coco))
    train(train_cfg(iterations=1), CLASSES, MODEL_CFG, {"kind": "none"}, ann, rendered_shard, tmp / "run")
    return tmp / "run" / "model_final.pth"


def test_predict_on_rendered_images_writes_overlays_and_results(checkpoint, rendered_shard, tmp_path):
    out = tmp_path / "pred"
    assert predict_main([str(rendered_shard / "rgb"), "--checkpoint", str(checkpoint),
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
    assert predict_main([str(video), "--checkpoint", str(checkpoint),
                         "--out-dir", str(vout), "--score-threshold", "0.0", "--batch-size", "3"]) == 0
    cap = cv2.VideoCapture(str(vout / "clip.overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    ok, first = cap.read()
    assert ok and first.shape[:2] == frames[0].shape[:2]
    vres = json.loads((vout / "results.json").read_text())
    assert {r["frame"] for r in vres} <= set(range(len(frames))) and all(r["file_name"] == str(video) for r in vres)
    # every frame is a COCO image of the video, in order
    vimages = json.loads((vout / "images.json").read_text())["images"]
    assert [(im["id"], im["file_name"], im["frame"]) for im in vimages] == [
        (k + 1, "clip.mp4", k) for k in range(len(frames))]
    assert all(r["image_id"] == r["frame"] + 1 for r in vres)
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        predict_main([str(tmp_path / "nothing.mp4"), "--checkpoint", "x", "--out-dir", str(out)])


def test_camera_subfolders_keep_their_names_and_load_as_coco(checkpoint, rendered_shard, tmp_path):
    """cam1/x.png and cam2/x.png: overlays mirror the tree; images.json + results.json load in pycocotools."""
    from PIL import Image
    from pycocotools.coco import COCO

    cams = tmp_path / "cameras"
    frames = sorted((rendered_shard / "rgb").glob("*.png"))
    for cam in ("cam1", "cam2/night"):
        (cams / cam).mkdir(parents=True)
        for k, src in enumerate(frames):
            shutil.copy(src, cams / cam / f"frame_{k:04d}.png")
    (cams / "cam1" / ".frame_0000.png.tmp.png").write_bytes(b"half-written")  # hidden: skipped
    out = cams / "preds"  # inside the input folder: its own overlays are never read back as inputs
    args = [str(cams), "--checkpoint", str(checkpoint), "--out-dir", str(out), "--score-threshold", "0.0"]
    assert predict_main(args) == 0
    names = [f"{cam}/frame_{k:04d}" for cam in ("cam1", "cam2/night") for k in range(len(frames))]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.overlay.png")) == [f"{n}.overlay.png" for n in names]
    gt = COCO(str(out / "images.json"))
    by_name = {im["file_name"]: im for im in gt.dataset["images"]}
    assert sorted(by_name) == [f"{n}.png" for n in names]
    for name, im in by_name.items():
        assert (im["width"], im["height"]) == Image.open(cams / name).size
    assert {c["id"]: c["name"] for c in gt.dataset["categories"]} == {1: "pedestrian", 2: "pallet_jack"}
    results = json.loads((out / "results.json").read_text())
    assert results, "a score threshold of 0 keeps the untrained model's detections"
    for r in results:
        assert {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(r)
        assert isinstance(r["segmentation"]["counts"], str) and len(r["bbox"]) == 4
        assert gt.cats[r["category_id"]]["name"] == r["category"]
        assert r["segmentation"]["size"] == [gt.imgs[r["image_id"]]["height"], gt.imgs[r["image_id"]]["width"]]
    dt = gt.loadRes(str(out / "results.json"))
    assert len(dt.getAnnIds()) == len(results) and set(dt.getImgIds()) == set(gt.getImgIds())
    # the same frame of both cameras: two images, each with its own detections
    a, b = by_name["cam1/frame_0000.png"]["id"], by_name["cam2/night/frame_0000.png"]["id"]
    assert a != b and len(dt.getAnnIds(imgIds=[a])) == len(dt.getAnnIds(imgIds=[b]))
    # a second run (overlays now inside cameras/) sees the same inputs
    assert predict_main(args) == 0
    assert sorted(im["file_name"] for im in json.loads((out / "images.json").read_text())["images"]) == sorted(by_name)
    # two inputs that would write the same name are refused before anything runs
    with pytest.raises(ValueError, match="frame_0000.overlay.png.*common parent folder"):
        predict_main([str(cams / "cam1"), str(cams / "cam2" / "night"), "--checkpoint", str(checkpoint),
                      "--out-dir", str(tmp_path / "clash")])
    assert not (tmp_path / "clash").exists()


def test_help_lists_every_option_with_meaning_and_default(capsys):
    with pytest.raises(SystemExit) as exc:
        predict_main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, default in (("--score-threshold", "0.5"), ("--mask-threshold", "0.5"), ("--batch-size", "4")):
        assert option in text and f"(default: {default})" in text
    for words in ("trained checkpoint", "subfolders mirrored", "images.json", "results.json", "loadRes"):
        assert words in text, words
