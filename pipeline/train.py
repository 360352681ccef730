"""Fine-tune Mask R-CNN on the synthetic train split (iteration-based, resumable)."""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from pipeline import distributed
from pipeline.data import CocoInstances, collate, train_transforms
from pipeline.io import atomic_path, provenance, read_json, remove_stale_temps, write_json
from pipeline.model import build_model, count_trainable, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)
CSV_FIELDS = ["iteration", "epoch", "lr", "loss", "loss_classifier", "loss_box_reg", "loss_mask",
              "loss_objectness", "loss_rpn_box_reg", "images_per_s", "gpu_mem_mb"]


class NonFiniteLoss(RuntimeError):
    """Training diverged; the last good checkpoint is kept."""


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but no CUDA device is visible")
        return torch.device("cuda", local_rank)
    if name == "auto":
        log.warning("no CUDA device: training on CPU, expect it to be slow")
    return torch.device("cpu")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights only, never on norms or biases."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def batch_schedule(n: int, batch_size: int, seed: int, start_epoch: int, skip: int = 0, rank: int = 0,
                   world: int = 1) -> Iterator[tuple[int, bool, list[int]]]:
    """Endless (epoch, last-batch-of-epoch, indices) sequence; each epoch has its own seeded permutation.

    `skip` batches of the first epoch are skipped without loading them, so a resumed run
    sees exactly the batches an uninterrupted run would have seen. Under DDP every
    process draws the same permutation and takes its own `batch_size` slice of each
    global batch of `batch_size * world` images.
    """
    step = batch_size * world
    drop_last = n > step
    epoch = start_epoch
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
        stop = n - n % step if drop_last else n
        chunks = [order[i:i + step][rank::world] or order[i:i + step][:1] for i in range(0, stop, step)]
        for k in range(skip, len(chunks)):
            yield epoch, k + 1 == len(chunks), chunks[k]
        skip = 0
        epoch += 1


class _ScheduleSampler(torch.utils.data.Sampler):
    """The schedule's indices as a DataLoader batch sampler (one loader for the whole run)."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __iter__(self):
        return (idx for _, _, idx in batch_schedule(*self.args))


def batches(dataset, batch_size: int, seed: int, workers: int, start_epoch: int, skip: int = 0,
            rank: int = 0, world: int = 1):
    """Endless (epoch, last-batch-of-epoch, batch) stream following `batch_schedule`.

    One DataLoader serves every epoch, so its workers start once and keep prefetching
    across epoch boundaries (small synthetic sets have few batches per epoch).
    """
    args = (len(dataset), batch_size, seed, start_epoch, skip, rank, world)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=_ScheduleSampler(*args), num_workers=workers, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), prefetch_factor=4 if workers else None,
        # own generator for worker seeds: the global RNG is checkpointed
        generator=torch.Generator().manual_seed(seed * 100003 + start_epoch * 1009 + skip))
    for (epoch, last, _), batch in zip(batch_schedule(*args), loader):
        yield epoch, last, batch


def validate(model, val_ds, device, iteration: int, val_rows: list, val_csv: Path, best_ap: float,
             save_best) -> float:
    """COCO AP on the validation split; append to val_metrics.csv; save best.pth on a new best segm AP."""
    from pipeline.evaluate import coco_eval, predict

    metrics = coco_eval(val_ds.coco, predict(model, val_ds, device, 0.05, 0.5))
    model.train()
    val_rows.append({"iteration": iteration, "segm_AP": f"{metrics['segm']['AP']:.6g}",
                     "bbox_AP": f"{metrics['bbox']['AP']:.6g}", "segm_AP50": f"{metrics['segm']['AP50']:.6g}"})
    with atomic_path(val_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(val_rows[0]))
        w.writeheader()
        w.writerows(val_rows)
    log.info("iteration %d: val segm AP %.4f, bbox AP %.4f", iteration, metrics["segm"]["AP"], metrics["bbox"]["AP"])
    if metrics["segm"]["AP"] > best_ap:
        save_best()
        return metrics["segm"]["AP"]
    return best_ap


def train(cfg: dict[str, Any], classes: list[str], model_cfg: dict[str, Any], weights_info: dict[str, Any],
          train_json: Path, image_root: Path, out_dir: Path, stop_after: int | None = None,
          val_json: Path | None = None) -> dict[str, Any]:
    """Run (or resume) training; writes last.pth, model_final.pth and metrics.csv into `out_dir`.

    With `val_json` and `eval_every` > 0, segm/bbox AP on that split is measured every
    `eval_every` iterations (val_metrics.csv) and the best segm AP model kept as best.pth.
    `stop_after` ends the run early after that many iterations, as a kill would (tests use it).
    """
    torch.manual_seed(cfg["seed"])
    dist = distributed.setup()
    device = pick_device(cfg["device"], dist.local_rank)
    dataset = CocoInstances(train_json, image_root,
                            train_transforms(cfg["hflip_prob"], cfg.get("photometric_prob", 0.0)))
    if len(dataset) == 0:
        raise ValueError(f"{train_json}: training set is empty")
    if not dataset.coco["annotations"]:
        raise ValueError(f"{train_json}: no image in the training set has an object")
    model = build_model(len(classes) + 1, weights_info, model_cfg["trainable_backbone_layers"],
                        model_cfg["min_size_px"], model_cfg["max_size_px"],
                        transfer=model_cfg.get("transfer", "fine_tune")).to(device)
    log.info("%s, transfer=%s: %d trainable parameters", model_cfg["arch"], model_cfg.get("transfer", "fine_tune"),
             count_trainable(model))
    lo, hi = cfg.get("scale_jitter", [1.0, 1.0])
    if (lo, hi) != (1.0, 1.0):
        # torchvision's multi-scale training: the model's resize picks one of these shorter-side sizes
        # per batch while training; evaluation uses the last one, the configured size.
        nominal = model_cfg["min_size_px"]
        sizes = sorted({int(round(nominal * f)) for f in np.linspace(lo, hi, 5)} - {nominal})
        model.transform.min_size = (*sizes, nominal)
        log.info("scale jitter: training shorter side drawn from %s px", model.transform.min_size)
    if device.type == "cuda":
        # Off by default: the mask head's convolutions see a different number of RoIs every
        # iteration, and cuDNN autotunes again for each new shape (measured on an H100: 2x slower
        # in fp32, 5-10x under AMP; benchmarks/results/train_gpu_cudnn_benchmark_on.json).
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))
        if cfg.get("channels_last"):
            model = model.to(memory_format=torch.channels_last)
    net = model  # DDP wraps the model after its memory format is final
    if dist.enabled:
        # Images without objects leave the mask head out of the loss: unused parameters are normal here.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        torch.manual_seed(cfg["seed"] * 1000 + dist.rank)  # own augmentation draws per process
    if cfg.get("optimizer", "sgd") == "adamw":
        optimizer = torch.optim.AdamW(param_groups(model, cfg["weight_decay"]), lr=cfg["lr"])
    else:
        optimizer = torch.optim.SGD(param_groups(model, cfg["weight_decay"]), lr=cfg["lr"], momentum=cfg["momentum"])
    warmup = max(1, cfg["warmup_iters"])
    total = cfg["iterations"]

    def lr_factor(it: int) -> float:
        if it < warmup:
            return 0.001 + (1 - 0.001) * it / warmup
        return 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    use_amp = cfg["amp"] and device.type == "cuda"
    amp_dtype = getattr(torch, cfg.get("amp_dtype", "float16"))
    # bf16 has fp32's exponent range: gradients do not underflow, so no loss scaling.
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dist.main:
        remove_stale_temps(out_dir)  # a killed run's half-written checkpoint
    distributed.barrier(dist)
    last, metrics_csv = out_dir / "last.pth", out_dir / "metrics.csv"
    start_it, start_epoch, start_batch = 0, 0, 0
    run_config = json.dumps({"train": cfg, "model": model_cfg}, sort_keys=True)
    if last.exists():
        ckpt = load_checkpoint(last, classes)
        if ckpt["config"] != run_config:
            log.warning("%s was written with another train/model config: starting afresh", last)
            last.unlink()
    if last.exists():
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["lr_scheduler"])
        start_it, start_epoch, start_batch = ckpt["iteration"], ckpt["epoch"], ckpt["batch_in_epoch"]
        torch.set_rng_state(ckpt["rng"])
        log.info("resuming from %s at iteration %d", last, start_it)
    eval_every = cfg.get("eval_every", 0) if val_json is not None else 0
    val_csv, best_ap = out_dir / "val_metrics.csv", -1.0
    val_rows: list[dict[str, Any]] = []
    if eval_every:
        from pipeline.data import eval_transforms

        val_ds = CocoInstances(val_json, image_root, eval_transforms())
        if start_it and val_csv.exists():
            with open(val_csv) as f:
                val_rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= start_it]
            best_ap = max([float(r["segm_AP"]) for r in val_rows], default=-1.0)
    rows = []
    if start_it and metrics_csv.exists():
        with open(metrics_csv) as f:
            rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= start_it]

    def checkpoint(path: Path, it: int, resume_at: tuple[int, int] | None = None) -> None:
        """With `resume_at` = (epoch, batch in epoch), everything a resume needs (last.pth); without,
        only the model (best.pth, model_final.pth: half the size, no optimizer momentum)."""
        if not dist.main:
            return
        state = dict(model=model.state_dict(), iteration=it, classes=list(classes), config=run_config,
                     weights=json.dumps(weights_info))
        if resume_at is not None:
            state.update(optimizer=optimizer.state_dict(), lr_scheduler=scheduler.state_dict(), epoch=resume_at[0],
                         batch_in_epoch=resume_at[1], rng=torch.get_rng_state())
        save_checkpoint(path, **state)
        with atomic_path(metrics_csv) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)

    from tqdm import tqdm

    model.train()
    stream = batches(dataset, cfg["batch_size"], cfg["seed"], cfg["workers"], start_epoch, start_batch,
                     dist.rank, dist.world)
    bar = tqdm(range(start_it, total), desc="train", unit="it", file=sys.stderr, initial=start_it, total=total,
               disable=not dist.main)
    epoch, batch_in_epoch = start_epoch, start_batch
    for it in bar:
        if stop_after is not None and it >= stop_after:
            return {"iterations": it, "stopped": True}
        t0 = time.perf_counter()  # throughput includes waiting for data
        epoch, epoch_done, (images, targets) = next(stream)
        # Position to resume from: next batch of this epoch, or the start of the next one.
        batch_in_epoch = 0 if epoch_done else batch_in_epoch + 1
        resume_epoch = epoch + 1 if epoch_done else epoch
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            losses = net(images, targets)
            loss = sum(losses.values())
        # Mean over processes, so every process sees the same numbers and stops together on NaN.
        logged = distributed.mean(torch.stack([loss.detach(), *[v.detach() for v in losses.values()]]).float(), dist)
        logged = dict(zip(["loss", *losses], logged.tolist()))
        if not math.isfinite(logged["loss"]):
            raise NonFiniteLoss(f"iteration {it}: loss is {logged['loss']} ({logged}); "
                                f"last good checkpoint kept at {last}. Lower train.lr or check the data.")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip_norm"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip_norm"])
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        dt = time.perf_counter() - t0
        row = {"iteration": it + 1, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **logged,
               "images_per_s": len(images) * dist.world / dt,
               "gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0}
        rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        bar.set_postfix(loss=f"{logged['loss']:.3f}")
        if eval_every and dist.main and ((it + 1) % eval_every == 0 or it + 1 == total):
            best_ap = validate(model, val_ds, device, it + 1, val_rows, val_csv, best_ap,
                               lambda: checkpoint(out_dir / "best.pth", it + 1))
        if (it + 1) % cfg["checkpoint_every"] == 0 or it + 1 == total:
            checkpoint(last, it + 1, (resume_epoch, batch_in_epoch))
    checkpoint(out_dir / "model_final.pth", total)
    if dist.main:
        meta = provenance({"train": cfg, "model": model_cfg, "classes": classes, "weights": weights_info})
        meta["device"] = str(device)
        meta["processes"] = dist.world
        write_json(out_dir / "provenance.json", meta)
    distributed.barrier(dist)
    distributed.teardown(dist)
    return {"iterations": total, "final_loss": float(rows[-1]["loss"]) if rows else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline train", description=__doc__)
    ap.add_argument("--train-json", type=Path, required=True)
    ap.add_argument("--val-json", type=Path, help="split for periodic validation (train.eval_every)")
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--weights-json", type=Path, required=True)
    ap.add_argument("--classes", required=True, help="JSON list")
    ap.add_argument("--model-cfg", required=True, help="`model` config section as JSON")
    ap.add_argument("--train-cfg", required=True, help="`train` config section as JSON")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    model_cfg = json.loads(args.model_cfg)
    weights_info = read_json(args.weights_json)
    if model_cfg.get("weights") == "none":  # the from-scratch control of a comparison
        weights_info = {"kind": "none", "arch": model_cfg["arch"]}
    result = train(json.loads(args.train_cfg), json.loads(args.classes), model_cfg,
                   weights_info, args.train_json, args.image_root, args.out_dir,
                   val_json=args.val_json)
    log.info("done: %s", result)
    return 0
