"""Training throughput benchmark: pipeline loop vs a plain torchvision-tutorial loop.

    python benchmarks/train.py --train-json results/smoke/dataset/train.json --image-root results/smoke \
        --batch-sizes 2 4 --iterations 6 --out benchmarks/results/train_cpu.json

Prints a table (images/s, peak memory) and writes JSON. AMP rows only where CUDA exists.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.data import CocoInstances, collate, eval_transforms  # noqa: E402
from pipeline.model import build_model  # noqa: E402
from pipeline.train import train  # noqa: E402

CLASSES = ["pedestrian", "pallet_jack"]


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_loop(ds, model_cfg, batch_size: int, iterations: int, device: torch.device) -> float:
    """The detection tutorial's loop: DataLoader, SGD, loss.backward(), fp32. Returns images/s."""
    model = build_model(3, {"kind": "none"}, model_cfg["trainable_backbone_layers"], model_cfg["min_size_px"],
                        model_cfg["max_size_px"]).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=collate)
    done, t0 = 0, None
    while done < iterations + 1:
        for images, targets in loader:
            images = [i.to(device) for i in images]
            targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            loss = sum(model(images, targets).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == 1:  # first iteration is warm-up
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            if done == iterations + 1:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iterations * batch_size / (time.perf_counter() - t0)


def pipeline_loop(train_json, root, model_cfg, batch_size, iterations, amp, device) -> float:
    cfg = {"iterations": iterations + 1, "batch_size": batch_size, "lr": 0.001, "momentum": 0.9,
           "weight_decay": 1e-4, "warmup_iters": 1, "grad_clip_norm": 10.0, "checkpoint_every": 10**6,
           "hflip_prob": 0.5, "workers": 4 if device.type == "cuda" else 0, "device": device.type, "amp": amp, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, CLASSES, model_cfg, {"kind": "none"}, train_json, root, Path(tmp))
        import csv

        with open(Path(tmp) / "metrics.csv") as f:
            rows = list(csv.DictReader(f))[1:]  # drop the warm-up iteration
    return sum(float(r["images_per_s"]) for r in rows) / len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-json", type=Path, required=True)
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--size", type=int, nargs=2, default=[480, 640], help="model min_size max_size")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train.json"))
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_cfg = {"arch": "maskrcnn_resnet50_fpn", "trainable_backbone_layers": 3,
                 "min_size_px": args.size[0], "max_size_px": args.size[1], "transfer": "fine_tune"}
    ds = CocoInstances(args.train_json, args.image_root, eval_transforms())
    rows = []
    for bs in args.batch_sizes:
        plain = plain_loop(ds, model_cfg, bs, args.iterations, device)
        for amp in ([False, True] if device.type == "cuda" else [False]):
            ours = pipeline_loop(args.train_json, args.image_root, model_cfg, bs, args.iterations, amp, device)
            rows.append({"batch_size": bs, "amp": amp, "pipeline_images_per_s": round(ours, 3),
                         "plain_images_per_s": round(plain, 3), "ratio": round(ours / plain, 3),
                         "peak_mem_mb": round(peak_mb(device), 1)})
            print(f"bs={bs:2d} amp={amp!s:5s} pipeline {ours:7.3f} img/s  plain {plain:7.3f} img/s  "
                  f"ratio {ours / plain:5.2f}  peak {rows[-1]['peak_mem_mb']:.0f} MB")
    result = {"device": str(device), "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
              "cpus": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__,
              "iterations": args.iterations, "model_size_px": args.size, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
