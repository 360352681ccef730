"""A deployable model: load_model() for Python, TorchScript and ONNX files with a JSON sidecar for the rest.

    python -m pipeline export --checkpoint results/smoke/train/model_final.pth --out-dir results/smoke/export
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torchvision.models.detection import MaskRCNN

from pipeline.io import atomic_path, file_sha256, provenance, write_json

log = logging.getLogger(__name__)
FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
SIDECAR = "model.json"
# The sidecar also travels inside each file: TorchScript extra file / ONNX metadata_props key.
EMBEDDED_KEY = "hangar_synth.json"
ONNX_OUTPUTS = ["boxes", "labels", "scores", "masks"]
DEFAULT_OPSET = 17  # >= 11 for torchvision's detection ops; 16+ has RoiAlign's half_pixel mode


def load_model(path: str | Path, device: str | torch.device = "cpu") -> MaskRCNN:
    """A checkpoint of this pipeline as a torchvision Mask R-CNN in eval mode, at the input size it was trained at.

    The architecture (arch, transfer mode, which BatchNorms are frozen) and the input size
    (`model.transform.min_size` / `max_size` = the training config's `min_size_px` / `max_size_px`;
    torchvision's 800/1333 defaults would rescale our images to a size the model never saw) come
    from the checkpoint. `model.categories[label]` names a predicted label, index 0 being
    "__background__", as torchvision's `weights.meta["categories"]`. Call it as any torchvision
    detector: `model([image])` with `image` a float RGB tensor in [0, 1], shape (3, H, W);
    detections come back at H x W. It keeps detections down to score 0.05 (`roi_heads.score_thresh`).
    """
    return _rebuild(Path(path))[0].to(device)


def _rebuild(path: Path) -> tuple[MaskRCNN, dict[str, Any]]:
    """The eval-mode model of a checkpoint and the checkpoint's metadata (everything but the weights)."""
    from pipeline.model import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(path)
    try:
        config = json.loads(ckpt["config"])
        config["model"]["min_size_px"], config["model"]["max_size_px"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: not a hangar-synth training checkpoint (no training config with "
                         "model.min_size_px/max_size_px)") from None
    # Every train.py since the first has saved model, classes, config (train + model sections with
    # min_size_px/max_size_px) and weights: nothing to add at the save site. Older model sections lack
    # `transfer` and `train()` called with weights {"kind": "none"} records no arch; model_from_checkpoint
    # and build_model default both to what those checkpoints were (fine_tune, ResNet50-FPN).
    try:
        model = model_from_checkpoint(ckpt)
    except (KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: cannot rebuild the model of this checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0]})") from None
    model.categories = ["__background__", *ckpt["classes"]]
    meta = {"iteration": ckpt.get("iteration"), "config": config, "weights": json.loads(ckpt["weights"])}
    return model.eval(), meta


def sidecar(model: MaskRCNN, ckpt_meta: dict[str, Any], checkpoint: Path, opset: int) -> dict[str, Any]:
    """What a deployer needs besides the weights: class names and label ids, input size and format, outputs."""
    t, heads = model.transform, model.roi_heads
    return {
        "format_version": 1,
        "checkpoint": {"file": checkpoint.name, "sha256": file_sha256(checkpoint),
                       "iteration": ckpt_meta["iteration"]},
        "arch": ckpt_meta["weights"].get("arch", "maskrcnn_resnet50_fpn"),
        "categories": [{"id": i, "name": n} for i, n in enumerate(model.categories) if i > 0],
        "background_label": 0,
        "input": {
            "format": "float32 RGB in [0, 1], channels first (3, H, W), any H and W; one image per call",
            "min_size_px": int(t.min_size[0]), "max_size_px": int(t.max_size),
            "resize": "inside the model: the short side scaled to min_size_px unless the long side would "
                      "exceed max_size_px; outputs come back at the input's H x W",
            "normalize": "inside the model: (x - image_mean) / image_std",
            "image_mean": list(t.image_mean), "image_std": list(t.image_std)},
        "outputs": {
            "boxes": "float32 [N, 4]: x0, y0, x1, y1 in input pixels",
            "labels": "int64 [N]: category id (see categories; 0 = background never appears)",
            "scores": "float32 [N]: class probability, sorted descending",
            "masks": "float32 [N, 1, H, W]: per-pixel probability of the instance, at the input size"},
        "thresholds": {
            "score_thresh_in_model": float(heads.score_thresh),
            "score_thresh_in_model_means": "detections scoring below it are dropped inside the model",
            "score_threshold": 0.5, "mask_threshold": 0.5,
            "means": "what `python -m pipeline predict` applies by default: keep detections with score >= "
                     "score_threshold; a pixel belongs to the instance where masks >= mask_threshold",
            "nms_iou": float(heads.nms_thresh), "detections_per_img": int(heads.detections_per_img)},
        "files": {
            "torchscript": {"file": FILES["torchscript"],
                            "call": "losses, detections = torch.jit.load(file)([image]); detections[0] is a "
                                    "dict of boxes, labels, scores, masks (scripted torchvision detectors "
                                    "always return the pair); module attribute `categories` as in load_model"},
            "onnx": {"file": FILES["onnx"], "opset": opset, "inputs": {"image": "float32 [3, H, W]"},
                     "outputs": ONNX_OUTPUTS,
                     "exporter": f"torch {torch.__version__} TorchScript-based (dynamo=False)"}},
        "provenance": provenance(ckpt_meta["config"]),
    }


def export_torchscript(model: MaskRCNN, out: Path, meta: dict[str, Any]) -> Path:
    """torch.jit.script of the model, the sidecar embedded as an extra file, written atomically."""
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # torch 2.14 marks torch.jit deprecated (FutureWarning) but ships it; torchvision supports scripting
        warnings.filterwarnings("ignore", message=".*torch.jit.(script|save)` is deprecated.*")
        scripted = torch.jit.script(model)
        torch.jit.save(scripted, str(tmp), _extra_files={EMBEDDED_KEY: json.dumps(meta, sort_keys=True)})
    return out


def export_onnx(model: MaskRCNN, out: Path, meta: dict[str, Any], opset: int = DEFAULT_OPSET) -> Path:
    """ONNX (TorchScript-based exporter, dynamic H and W, one image per call), sidecar in metadata_props."""
    import onnx

    # Traced on a seeded image of the model's own input size: the ops that depend on the image size
    # and on the number of detections are exported symbolically (torchvision's ONNX paths), so any
    # size and any count work; a graph that did not would fail the parity test on other sizes.
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(3, int(model.transform.min_size[0]), int(model.transform.max_size), generator=gen)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        # torchvision's own ONNX paths trip these; the parity test is what says the graph is right
        warnings.filterwarnings("ignore", message=".*(dynamic_axes|To copy construct|aten::index operator|Constant "
                                "folding|torch.jit.script` is deprecated).*")
        torch.onnx.export(model, ([example],), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=ONNX_OUTPUTS,
                          dynamic_axes={"image": {1: "height", 2: "width"}, "boxes": {0: "detections"},
                                        "labels": {0: "detections"}, "scores": {0: "detections"},
                                        "masks": {0: "detections", 2: "height", 3: "width"}})
        proto = onnx.load(str(tmp))
        proto.metadata_props.add(key=EMBEDDED_KEY, value=json.dumps(meta, sort_keys=True))
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out


def export(checkpoint: Path, out_dir: Path, formats: tuple[str, ...] = FORMATS, opset: int = DEFAULT_OPSET,
           score_thresh: float = 0.05) -> dict[str, Any]:
    """Write the chosen formats and the sidecar (model.json) to `out_dir`; returns the sidecar."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"export formats must be among {FORMATS}, got {sorted(unknown)}")
    model, ckpt_meta = _rebuild(checkpoint)
    model.roi_heads.score_thresh = score_thresh
    meta = sidecar(model, ckpt_meta, checkpoint, opset)
    meta["files"] = {f: v for f, v in meta["files"].items() if f in formats}
    writers = {"torchscript": lambda p: export_torchscript(model, p, meta),
               "onnx": lambda p: export_onnx(model, p, meta, opset)}
    for fmt in formats:
        start = time.perf_counter()
        path = writers[fmt](out_dir / FILES[fmt])
        meta["files"][fmt].update(sha256=file_sha256(path), bytes=path.stat().st_size)
        log.info("%s: %s, %.1f MB in %.1f s", fmt, path, path.stat().st_size / 1e6, time.perf_counter() - start)
    write_json(out_dir / SIDECAR, meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    """CLI: export a checkpoint to TorchScript and/or ONNX with a JSON sidecar."""
    ap = argparse.ArgumentParser(prog="python -m pipeline export", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True,
                    help="a checkpoint written by `python -m pipeline train` (model_final.pth, best.pth, last.pth)")
    ap.add_argument("--out-dir", type=Path, required=True,
                    help=f"folder for {', '.join(FILES.values())} and the sidecar {SIDECAR}")
    ap.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS), help="formats to write (default: %(default)s)")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version, 11 or higher (default: %(default)s)")
    ap.add_argument("--score-thresh", type=float, default=0.05,
                    help="score below which the exported model drops detections itself; lower keeps more for "
                         "the deployer to cut (default: %(default)s, torchvision's); the sidecar records it")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.opset < 11:
        ap.error(f"--opset must be 11 or higher (torchvision's detection ops), got {args.opset}")
    export(args.checkpoint, args.out_dir, tuple(dict.fromkeys(args.format)), args.opset, args.score_thresh)
    return 0
