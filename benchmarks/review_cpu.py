"""Before/after figures of the training/evaluation review (issue 12) on CPU; prints and writes JSON.

Runs against the pipeline package of `--code` (this checkout, or a worktree of an older commit:
`git worktree add /tmp/before 217ade3`), on a rendered smoke run (`make demo` -> results/smoke):
- segm AP_small of a hand-made case: one small object found, plus a higher-scored stray with a
  small (676 px) mask in a big (3600 px) box;
- photometric_prob 0.5 on a red patch (300 draws): share of images changed, share whose
  dominant colour channel changed;
- scale_jitter [0.8, 1.2] at 640x480 (500 draws): range of the shorter side the network sees;
- resume with workers=2: losses of 6 iterations uninterrupted vs stopped at 3 and resumed.

    python benchmarks/review_cpu.py --code . --data results/smoke --out benchmarks/results/review_cpu_after.json
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path


def small_object_case(encode_mask) -> tuple[dict, list[dict]]:
    """One small pedestrian (20x20 px) found, plus a higher-scored stray whose mask is small (26x26 =
    676 px) but whose box is medium (60x60 = 3600 px): ground truth and predictions (also a test case)."""
    import numpy as np

    def mask_at(x, y, w, h):
        m = np.zeros((100, 100), bool)
        m[y:y + h, x:x + w] = True
        return encode_mask(m)

    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "pallet_jack"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0, "segmentation": mask_at(10, 10, 20, 20)}]}
    hit = {"image_id": 1, "category_id": 1, "score": 0.8, "bbox": [10, 10, 20, 20], "segmentation": mask_at(10, 10, 20, 20)}
    stray = {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [40, 40, 60, 60], "segmentation": mask_at(60, 60, 26, 26)}
    return gt, [hit, stray]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, required=True, help="checkout whose pipeline/ is measured")
    ap.add_argument("--data", type=Path, required=True, help="a rendered run folder with dataset/train.json")
    ap.add_argument("--work", type=Path, default=Path("/tmp/review_cpu"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    import torch
    from torchvision import tv_tensors

    import pipeline.data as data
    from pipeline.coco import encode_mask
    from pipeline.evaluate import coco_eval
    from pipeline.model import build_model
    from pipeline.train import train

    out: dict = {"code": str(args.code.resolve())}

    gt, preds = small_object_case(encode_mask)
    out["handmade_segm_AP_small"] = round(coco_eval(gt, preds)["segm"]["AP_small"], 4)

    red = tv_tensors.Image(torch.tensor([200, 60, 40], dtype=torch.uint8)[:, None, None].expand(3, 16, 16).clone())
    target = {"boxes": tv_tensors.BoundingBoxes([[0, 0, 8, 8]], format="XYXY", canvas_size=(16, 16)),
              "labels": torch.tensor([1]), "masks": tv_tensors.Mask(torch.ones(1, 16, 16, dtype=torch.uint8))}
    t = data.train_transforms(0.0, 0.5)
    torch.manual_seed(1)
    means = [t(red, target)[0].mean(dim=(1, 2)) for _ in range(300)]
    ref = red.float().mean(dim=(1, 2)) / 255
    out["photometric_p0.5_images_changed"] = sum(not torch.allclose(m, ref) for m in means) / len(means)
    out["photometric_p0.5_dominant_channel_changed"] = sum(int(m.argmax()) != 0 for m in means) / len(means)

    torch.manual_seed(0)
    img = tv_tensors.Image(torch.zeros(3, 480, 640, dtype=torch.uint8))
    box = {"boxes": tv_tensors.BoundingBoxes([[0, 0, 8, 8]], format="XYXY", canvas_size=(480, 640)),
           "labels": torch.tensor([1]), "masks": tv_tensors.Mask(torch.zeros(1, 480, 640, dtype=torch.uint8))}
    model = build_model(3, {"kind": "none"}, min_size=480, max_size=640)
    model.train()
    if hasattr(data, "ScaleJitter"):  # the images are scaled; the model keeps their size while training
        jitter = data.ScaleJitter(480, 640, 0.8, 1.2)
        model.transform._skip_resize = True
        shorts = [model.transform([jitter(img, box)[0].float() / 255])[0].image_sizes[0][0] for _ in range(500)]
    else:  # before: the model's own resize picks a shorter side, its max_size caps it
        model.transform.min_size = (384, 432, 528, 576, 480)
        shorts = [model.transform([img.float() / 255])[0].image_sizes[0][0] for _ in range(500)]
    out["scale_jitter_0.8_1.2_shorter_side_px_640x480"] = [int(min(shorts)), int(max(shorts))]

    model_cfg = {"arch": "maskrcnn_resnet50_fpn", "weights": "none", "trainable_backbone_layers": 3,
                 "min_size_px": 192, "max_size_px": 256, "transfer": "fine_tune"}
    cfg = {"iterations": 6, "batch_size": 1, "lr": 0.002, "momentum": 0.9, "weight_decay": 1e-4, "warmup_iters": 2,
           "grad_clip_norm": 10.0, "checkpoint_every": 1, "hflip_prob": 0.5, "photometric_prob": 0.5, "workers": 2,
           "device": "cpu", "amp": False, "seed": 0, "scale_jitter": [0.8, 1.2]}
    shutil.rmtree(args.work, ignore_errors=True)
    train_json = args.data / "dataset/train.json"
    classes = ["pedestrian", "pallet_jack"]
    train(cfg, classes, model_cfg, {"kind": "none"}, train_json, args.data, args.work / "a")
    train(cfg, classes, model_cfg, {"kind": "none"}, train_json, args.data, args.work / "b", stop_after=3)
    train(cfg, classes, model_cfg, {"kind": "none"}, train_json, args.data, args.work / "b")

    def losses(run):
        with open(args.work / run / "metrics.csv") as f:
            return [round(float(r["loss"]), 3) for r in csv.DictReader(f)]
    out["resume_workers2_losses"] = {"uninterrupted": losses("a"), "stopped_at_3_and_resumed": losses("b")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
