"""Deployable model: load_model() and the export CLI on a checkpoint of the real train CLI, and parity of
TorchScript and ONNX Runtime with the eager model on rendered images."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.__main__ import main as pipeline_main
from pipeline.export import EMBEDDED_KEY, load_model
from tests.test_train import CLASSES, MODEL_CFG, train_cli_args

pytestmark = pytest.mark.slow
# Our small configs' kind of size (smoke: 192/256); the 128x96 renders are upscaled 2x inside the model.
SIZE = {"min_size_px": 192, "max_size_px": 256}

# Tolerances. The three paths compute the same float32 function; what differs is the order of float
# operations (ONNX Runtime has its own conv/GEMM kernels and folds BatchNorm into the conv weights;
# TorchScript runs ATen's kernels, so it may well be exact, but nothing promises that). Each
# reordering perturbs a value by a few float32 ulps (eps 1.2e-7) relative; over the ~100 layers of
# ResNet50-FPN and the heads that adds up to ~1e-5 relative at the outputs.
# Boxes: coordinates < 256 px carry ~1e-5 relative error, i.e. ~1e-3 px at most. 0.01 px is 10x that,
# and 25x below a half-pixel offset (align_corners, RoIAlign's aligned, a resize rounding), the
# smallest kind of real conversion bug.
BOX_ATOL_PX = 0.01
# Scores are softmax probabilities: ~1e-5 relative on the logits, times the softmax slope (<= 0.25),
# is ~3e-6; 1e-4 leaves 30x margin and is 100x below what a wrong normalisation or class order gives.
SCORE_ATOL = 1e-4
# Masks: a pixel's probability moves by ~1e-5, so binarisation at 0.5 can only flip pixels that sit
# within ~1e-5 of 0.5; one more effect is discrete: the 28x28 mask is pasted into a box rounded to
# whole pixels, so a box coordinate within 1e-5 px of an integer may paste one pixel over. For masks of
# >= 400 px (>= 20 px across) that single pixel of offset still leaves IoU >= 19/21 > 0.9; smaller masks
# (10 px wide: 0.82 after one pixel) are compared through the mean, which a systematic error (wrong
# paste, wrong resize) lowers for every mask at once.
MIN_MASK_IOU, MIN_MASK_AREA_PX, MIN_MEAN_MASK_IOU = 0.9, 400, 0.99
# Discrete choices (top-k of proposals, NMS at an IoU threshold, the 100-detection cap, the score cut)
# can flip on a ~1e-7 difference when two values tie that closely (a model trained 2 iterations scores
# its 100 detections within 0.01 of each other). One flip swaps about one proposal, i.e. up to one
# detection per foreground class; detections that score within SCORE_ATOL of an output's cut are
# expected to come and go. A broken conversion loses most matches, not two.
MAX_UNEXPLAINED_PER_IMAGE = 2


@pytest.fixture(scope="module")
def checkpoint(shard_coco, rendered_shard, tmp_path_factory) -> Path:
    """model_final.pth of `python -m pipeline train`, 2 iterations from scratch at SIZE."""
    tmp = tmp_path_factory.mktemp("export_train")
    args = train_cli_args(shard_coco, rendered_shard, tmp, tmp / "run")
    args[args.index("--model-cfg") + 1] = json.dumps({**MODEL_CFG, **SIZE, "transfer": "fine_tune"})
    assert pipeline_main(args[2:]) == 0  # args start with "-m pipeline"
    return tmp / "run" / "model_final.pth"


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    """The export CLI with its required arguments only."""
    out = tmp_path_factory.mktemp("export") / "deploy"
    assert pipeline_main(["export", "--checkpoint", str(checkpoint), "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def images(rendered_shard) -> list[torch.Tensor]:
    """The rendered frames (128x96) and one resized to 180x120 (another size and aspect), float RGB CHW."""
    from PIL import Image

    frames = [Image.open(p).convert("RGB") for p in sorted((rendered_shard / "rgb").glob("*.png"))]
    frames.append(frames[0].resize((180, 120), Image.BILINEAR))
    return [torch.from_numpy(np.asarray(f).copy()).permute(2, 0, 1).float().div(255) for f in frames]


def detections_to_numpy(d: dict) -> dict[str, np.ndarray]:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in d.items()}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def compare(ref: dict[str, np.ndarray], out: dict[str, np.ndarray], score_thresh: float,
            cap: int) -> dict[str, float]:
    """Match the detections of two outputs (same label, boxes within BOX_ATOL_PX) and check the matches."""
    free = np.ones(len(out["scores"]), bool)
    pairs = []
    for i in range(len(ref["scores"])):
        diff = np.abs(out["boxes"] - ref["boxes"][i]).max(axis=1) if len(free) else np.zeros(0)
        ok = free & (out["labels"] == ref["labels"][i]) & (diff <= BOX_ATOL_PX)
        if ok.any():
            j = int(np.argmin(np.where(ok, diff, np.inf)))
            free[j] = False
            pairs.append((i, j))
    matched_ref = {i for i, _ in pairs}
    unexplained = 0
    for d, unmatched in ((ref, [i for i in range(len(ref["scores"])) if i not in matched_ref]),
                         (out, list(np.flatnonzero(free)))):
        cut = max(score_thresh, float(d["scores"].min()) if len(d["scores"]) >= cap else score_thresh)
        unexplained += sum(1 for k in unmatched if d["scores"][k] > cut + SCORE_ATOL)
    box_diff = max((float(np.abs(ref["boxes"][i] - out["boxes"][j]).max()) for i, j in pairs), default=0.0)
    score_diff = max((abs(float(ref["scores"][i] - out["scores"][j])) for i, j in pairs), default=0.0)
    ious, big_ious = [], []
    for i, j in pairs:
        a, b = ref["masks"][i, 0] >= 0.5, out["masks"][j, 0] >= 0.5
        ious.append(mask_iou(a, b))
        if max(a.sum(), b.sum()) >= MIN_MASK_AREA_PX:
            big_ious.append(ious[-1])
    return {"compared": len(pairs), "ref": len(ref["scores"]), "out": len(out["scores"]),
            "unexplained": unexplained, "box_diff_px": box_diff, "score_diff": score_diff,
            "min_mask_iou": min(ious, default=1.0), "min_big_mask_iou": min(big_ious, default=1.0),
            "mean_mask_iou": float(np.mean(ious)) if ious else 1.0, "big_masks": len(big_ious)}


def check_parity(model, run, images, label: str) -> list[dict[str, float]]:
    """Eager `model` against `run(image) -> detections` on every image, within the tolerances above."""
    stats = []
    for k, image in enumerate(images):
        with torch.no_grad():
            ref = detections_to_numpy(model([image])[0])
        out = detections_to_numpy(run(image))
        assert out["masks"].shape[2:] == ref["masks"].shape[2:] == tuple(image.shape[1:])
        s = compare(ref, out, model.roi_heads.score_thresh, model.roi_heads.detections_per_img)
        print(f"{label} image {k} {tuple(image.shape[1:])}: {s}")
        # A parity test over empty lists proves nothing: the model must detect something here.
        assert s["compared"] > 0 and s["compared"] >= 0.9 * max(s["ref"], s["out"]), s
        assert s["unexplained"] <= MAX_UNEXPLAINED_PER_IMAGE, s
        assert s["box_diff_px"] <= BOX_ATOL_PX and s["score_diff"] <= SCORE_ATOL, s
        assert s["min_big_mask_iou"] >= MIN_MASK_IOU and s["mean_mask_iou"] >= MIN_MEAN_MASK_IOU, s
        stats.append(s)
    return stats


def test_load_model_has_trained_size_classes_and_eval_mode(checkpoint, images, tmp_path):
    model = load_model(checkpoint)
    assert not model.training
    assert tuple(model.transform.min_size) == (192,) and model.transform.max_size == 256
    assert model.categories == ["__background__", *CLASSES]
    with torch.no_grad():
        det = model([images[0]])[0]
    assert det["masks"].shape[1:] == (1, 96, 128) and set(det["labels"].tolist()) <= {1, 2}
    # An older checkpoint: no arch in its weights record, no transfer in its model config.
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = json.loads(ckpt["config"])
    config["model"].pop("transfer")
    old = tmp_path / "old.pth"
    torch.save({**ckpt, "weights": json.dumps({"kind": "none"}), "config": json.dumps(config)}, old)
    again = load_model(old)
    assert again.categories == model.categories and again.transform.max_size == 256
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    # Files that are not ours: a bare state dict, a training dict without its config, a text file.
    for name, obj in (("bare.pth", model.state_dict()), ("noconfig.pth", {"model": ckpt["model"], "classes": CLASSES})):
        torch.save(obj, tmp_path / name)
        with pytest.raises(ValueError, match=re.escape(f"{tmp_path / name}: not a hangar-synth")):
            load_model(tmp_path / name)
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(ValueError, match="notes.pth: not a hangar-synth checkpoint"):
        pipeline_main(["export", "--checkpoint", str(tmp_path / "notes.pth"), "--out-dir", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_export_cli_writes_both_formats_and_sidecar(exported, checkpoint):
    from pipeline.io import file_sha256

    files = sorted(p.name for p in exported.iterdir())
    assert files == ["model.json", "model.onnx", "model.torchscript.pt"]  # no temp files left behind
    meta = json.loads((exported / "model.json").read_text())
    assert meta["categories"] == [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}]
    assert (meta["input"]["min_size_px"], meta["input"]["max_size_px"]) == (192, 256)
    assert meta["checkpoint"]["sha256"] == file_sha256(checkpoint) and meta["thresholds"]["mask_threshold"] == 0.5
    for fmt in ("torchscript", "onnx"):
        info = meta["files"][fmt]
        assert info["sha256"] == file_sha256(exported / info["file"]) and info["bytes"] > 1e6
    # Each file carries the sidecar too (without its own hash, which it cannot contain).
    extra = {EMBEDDED_KEY: ""}
    torch.jit.load(str(exported / "model.torchscript.pt"), _extra_files=extra)
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported / "model.onnx"), load_external_data=False).metadata_props}
    for embedded in (json.loads(extra[EMBEDDED_KEY]), json.loads(props[EMBEDDED_KEY])):
        assert embedded["categories"] == meta["categories"] and embedded["input"] == meta["input"]


def test_torchscript_matches_eager(exported, checkpoint, images):
    model = load_model(checkpoint)
    scripted = torch.jit.load(str(exported / "model.torchscript.pt"))
    assert list(scripted.categories) == model.categories

    def run(image):
        with torch.no_grad():
            return scripted([image])[1][0]  # scripted torchvision detectors return (losses, detections)
    stats = check_parity(model, run, images, "torchscript")
    assert sum(s["compared"] for s in stats) >= 100


def test_onnx_runtime_matches_eager(exported, checkpoint, images):
    import onnxruntime as ort

    model = load_model(checkpoint)
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]

    def run(image):
        return dict(zip(["boxes", "labels", "scores", "masks"], session.run(None, {"image": image.numpy()})))
    stats = check_parity(model, run, images, "onnx")
    assert sum(s["compared"] for s in stats) >= 100
