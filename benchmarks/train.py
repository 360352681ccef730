"""Training throughput benchmark: the pipeline's loop vs a plain torchvision-tutorial loop.

    python benchmarks/train.py --train-json results/bench640/dataset/train.json --image-root results/bench640 \\
        --batch-sizes 2 4 8 --iterations 30 --out benchmarks/results/train_gpu.json

Same model (Mask R-CNN ResNet50-FPN, 3 classes, trainable_backbone_layers 3), same data,
same batch size, same input size for every row. Each row: `--warmup` iterations untimed
(cuDNN autotuning, worker start-up), then `--iterations` timed by wall clock (CUDA
synchronised). Rows:

- `plain`: the detection tutorial's loop: DataLoader(batch_size, shuffle, collate_fn) with
  no workers, SGD, fp32, `loss.item()` each step (train_one_epoch's logging/NaN check).
- `plain_w4`: the same with 4 DataLoader workers (to separate data loading from the rest).
- `pipeline fp32 / amp fp16 / amp bf16 / amp bf16 + channels_last`: `pipeline.train.train`
  itself (persistent workers, pinned memory, cudnn.benchmark, AMP); AMP rows only on CUDA.

Prints a table (images/s, ratio to `plain`, peak memory) and writes JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.data import CocoInstances, collate, eval_transforms  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.model import build_model  # noqa: E402
from pipeline.train import train  # noqa: E402

CLASSES = ["pedestrian", "pallet_jack"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


def plain_loop(ds, model_cfg, batch_size: int, warmup: int, iterations: int, device: torch.device,
               workers: int) -> float:
    """The detection tutorial's loop (fp32). Returns images/s over the timed iterations."""
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False  # the tutorial's default (pipeline rows may have set it)
    model = build_model(3, {"kind": "none"}, model_cfg["trainable_backbone_layers"], model_cfg["min_size_px"],
                        model_cfg["max_size_px"]).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=collate,
                                         num_workers=workers)
    done, t0 = 0, 0.0
    while done < warmup + iterations:
        for images, targets in loader:
            if done == warmup:
                sync(device)
                t0 = time.perf_counter()
            images = [i.to(device) for i in images]
            targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            loss = sum(model(images, targets).values())
            if not math.isfinite(loss.item()):
                raise RuntimeError("loss is not finite")
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + iterations:
                break
    sync(device)
    return iterations * batch_size / (time.perf_counter() - t0)


def pipeline_loop(train_json, root, model_cfg, batch_size, warmup, iterations, device, amp, amp_dtype,
                  channels_last, workers) -> float:
    cfg = {"iterations": warmup + iterations, "batch_size": batch_size, "lr": 0.001, "momentum": 0.9,
           "weight_decay": 1e-4, "warmup_iters": 1, "grad_clip_norm": 0.0, "checkpoint_every": 10**6,
           "hflip_prob": 0.5, "workers": workers, "device": device.type, "amp": amp, "amp_dtype": amp_dtype,
           "channels_last": channels_last, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, CLASSES, model_cfg, {"kind": "none"}, train_json, root, Path(tmp))
        with open(Path(tmp) / "metrics.csv") as f:
            rows = list(csv.DictReader(f))[warmup:]
    # Each row's images_per_s is batch / wall time of that iteration (data wait included); the
    # loop synchronises every iteration (loss check), so the sum of those times is the wall time.
    return len(rows) * batch_size / sum(batch_size / float(r["images_per_s"]) for r in rows)


def repeated(train_json: Path, times: int, out: Path) -> Path:
    """The COCO file with every image listed `times` times (new ids): epochs long enough that a
    loop re-creating its DataLoader each epoch is not measured on worker start-up alone."""
    coco = json.loads(Path(train_json).read_text())
    images, anns = [], []
    for r in range(times):
        for im in coco["images"]:
            images.append({**im, "id": im["id"] + r * 10**6})
        for a in coco["annotations"]:
            anns.append({**a, "id": a["id"] + r * 10**7, "image_id": a["image_id"] + r * 10**6})
    out.write_text(json.dumps({**coco, "images": images, "annotations": anns}))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-json", type=Path, required=True)
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=10, help="list each image this many times (longer epochs)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--size", type=int, nargs=2, default=[480, 640], help="model min_size max_size")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train.json"))
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_cfg = {"arch": "maskrcnn_resnet50_fpn", "trainable_backbone_layers": 3,
                 "min_size_px": args.size[0], "max_size_px": args.size[1], "transfer": "fine_tune"}
    tmpdir = tempfile.TemporaryDirectory()
    train_json = repeated(args.train_json, args.repeat, Path(tmpdir.name) / "train.json")
    ds = CocoInstances(train_json, args.image_root, eval_transforms())
    variants = [("pipeline fp32", False, "float16", False)]
    if device.type == "cuda":
        variants += [("pipeline amp fp16", True, "float16", False), ("pipeline amp bf16", True, "bfloat16", False),
                     ("pipeline amp bf16 channels_last", True, "bfloat16", True)]
    rows = []

    def record(bs, name, ips, base):
        rows.append({"batch_size": bs, "loop": name, "images_per_s": round(ips, 3),
                     "ratio_to_plain": round(ips / base, 3), "peak_mem_mb": round(peak_mb(device), 1)})
        print(f"bs={bs:2d} {name:34s} {ips:8.2f} img/s  x{ips / base:5.2f}  peak {rows[-1]['peak_mem_mb']:8.0f} MB",
              flush=True)

    for bs in args.batch_sizes:
        reset_peak(device)
        plain = plain_loop(ds, model_cfg, bs, args.warmup, args.iterations, device, workers=0)
        record(bs, "plain (tutorial, fp32, no workers)", plain, plain)
        reset_peak(device)
        record(bs, "plain_w4 (tutorial + 4 workers)",
               plain_loop(ds, model_cfg, bs, args.warmup, args.iterations, device, workers=4), plain)
        for name, amp, dtype, cl in variants:
            reset_peak(device)
            ips = pipeline_loop(train_json, args.image_root, model_cfg, bs, args.warmup, args.iterations,
                                device, amp, dtype, cl, args.workers if device.type == "cuda" else 0)
            record(bs, name, ips, plain)
    result = {"device": str(device), "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
              "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
              "torch": torch.__version__, "warmup": args.warmup, "iterations": args.iterations,
              "pipeline_workers": args.workers if device.type == "cuda" else 0,
              "images": len(ds) // args.repeat, "repeat": args.repeat, "model_size_px": args.size, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
