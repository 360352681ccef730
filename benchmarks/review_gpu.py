"""CUDA checks of the training/evaluation review (issue 12) on a lent GPU: prints figures, writes JSON.

1. Resume on CUDA: float16 AMP (GradScaler), EMA, scale jitter, photometric distortion, 4 workers;
   an uninterrupted run against one stopped half-way and resumed (GradScaler and CUDA RNG restored).
   CUDA's RoIAlign backward is not deterministic, so the runs are compared, not required equal.
2. Batched evaluation: one image per forward pass in fp32 (the old loop) against batches in fp32
   and under float16 autocast: images/s and COCO AP on the same images.

    python benchmarks/review_gpu.py --data results/bench320 --out benchmarks/results/review_gpu.json
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from pipeline.data import CocoInstances, eval_transforms  # noqa: E402
from pipeline.evaluate import coco_eval, predict  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.model import load_checkpoint, model_from_checkpoint  # noqa: E402
from pipeline.train import train  # noqa: E402

CLASSES = ["pedestrian", "pallet_jack"]


def losses(run: Path) -> list[float]:
    with open(run / "metrics.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a rendered run folder (dataset/ and render/)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/review_gpu"))
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--device", default="cuda", help="cuda (the point), or cpu to try the script on tiny data")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    model_cfg = {"arch": "maskrcnn_resnet50_fpn", "weights": "none", "transfer": "full", "trainable_backbone_layers": 5,
                 "min_size_px": 240, "max_size_px": 320}
    cfg = {"iterations": args.iterations, "batch_size": 8, "lr": 0.02, "momentum": 0.9, "weight_decay": 1e-4,
           "warmup_iters": 50, "grad_clip_norm": 10.0, "checkpoint_every": 50, "eval_every": args.iterations // 2,
           "hflip_prob": 0.5, "photometric_prob": 0.5, "scale_jitter": [0.8, 1.2], "workers": 4, "device": args.device,
           "amp": True, "amp_dtype": "float16", "seed": 0, "ema_decay": 0.99, "tensorboard": True}
    d = args.data / "dataset"
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result: dict = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__,
                    "train_cfg": cfg, "model_cfg": model_cfg}
    runs = {}
    for name, stops in (("uninterrupted", [None]), ("resumed", [args.iterations // 2, None])):
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        for stop in stops:
            train(cfg, CLASSES, model_cfg, {"kind": "none", "arch": "maskrcnn_resnet50_fpn"}, d / "train.json",
                  args.data, out, stop_after=stop, val_json=d / "val.json")
        runs[name] = out
        last = load_checkpoint(out / "last.pth")
        result[name] = {"wall_s": round(time.perf_counter() - t0, 1), "scaler_scale": last["scaler"].get("scale"),
                        "losses_every_50": [round(v, 4) for v in losses(out)[::50]],
                        "final_loss": round(losses(out)[-1], 4)}
    a, b = losses(runs["uninterrupted"]), losses(runs["resumed"])
    half = args.iterations // 2
    result["resume"] = {
        "first_half_identical": a[:half] == b[:half],
        "first_step_after_resume": {"uninterrupted": a[half], "resumed": b[half]},
        "mean_abs_loss_diff_second_half": sum(abs(x - y) for x, y in zip(a[half:], b[half:])) / (len(a) - half)}
    # 2. evaluation: the old per-image fp32 loop vs batches, fp32 and float16 autocast
    ckpt = load_checkpoint(runs["uninterrupted"] / "model_final.pth")
    evals = {}
    for split in ("train", "test"):
        gt = json.loads((d / f"{split}.json").read_text())
        ds = CocoInstances(d / f"{split}.json", args.data, eval_transforms(), targets=False)
        for name, bs, amp in (("batch1_fp32", 1, False), ("batch8_fp32", 8, False), ("batch8_amp_fp16", 8, True)):
            model = model_from_checkpoint(ckpt).to(device)
            predict(model, ds, device, 0.05, 0.5, batch_size=bs, workers=4, amp=amp)  # warm-up
            sync()
            t0 = time.perf_counter()
            preds = predict(model, ds, device, 0.05, 0.5, batch_size=bs, workers=4, amp=amp)
            sync()
            dt = time.perf_counter() - t0
            m = coco_eval(gt, preds)
            evals[f"{split}/{name}"] = {"images": len(ds), "images_per_s": round(len(ds) / dt, 1),
                                        "segm_AP": round(m["segm"]["AP"], 4), "bbox_AP": round(m["bbox"]["AP"], 4),
                                        "segm_per_class": {k: round(v, 4) for k, v in m["segm"]["per_class"].items()}}
            print(split, name, evals[f"{split}/{name}"], flush=True)
    result["evaluate"] = evals
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("device", "resume", "uninterrupted", "resumed")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
