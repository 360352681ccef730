"""Fine-tune Mask R-CNN on the synthetic train split (iteration-based, resumable)."""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline import distributed, train_state
from pipeline.data import CocoInstances, MixedInstances, ScaleJitter, train_transforms
from pipeline.io import atomic_path, provenance, read_json, remove_stale_temps, write_json
from pipeline.model import build_model, count_trainable, load_checkpoint, save_checkpoint
from pipeline.schedule import aspect_groups, batches
from pipeline.tblog import Board

log = logging.getLogger(__name__)
CSV_FIELDS = ["iteration", "epoch", "lr", "loss", "loss_classifier", "loss_box_reg", "loss_mask",
              "loss_objectness", "loss_rpn_box_reg", "images_per_s", "gpu_mem_mb"]


@dataclass(frozen=True)
class Mix:
    """A second training set mixed into the first: its COCO file, image folder and share of the samples."""
    ann: Path
    root: Path
    fraction: float


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


def device_name(device: torch.device) -> str:
    """What trained: the GPU's name, or the CPU model and the cores this process may use."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None) if Path("/proc/cpuinfo").is_file() else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # macOS: no affinity
    return f"{model or platform.processor() or 'CPU'}, {cores} cores"


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights only, never on norms or biases."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def weight_ema(model: torch.nn.Module, decay: float):
    """An exponential moving average of weights and buffers, or None for decay 0.

    The decay warms up as timm's ModelEma does, min(decay, (1 + n) / (10 + n)) after n updates:
    a fixed 0.999 would keep 67 % of the random start after 400 iterations.
    """
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel

    def update(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1 + float(n)) / (10 + float(n)))
        return averaged * d + current * (1 - d)

    return AveragedModel(model, avg_fn=update, use_buffers=True)


def make_optimizer(cfg: dict[str, Any], model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum (torchvision's recipe) or AdamW, no weight decay on norms and biases."""
    groups = param_groups(model, cfg["weight_decay"])
    if cfg.get("optimizer", "sgd") == "adamw":
        return torch.optim.AdamW(groups, lr=cfg["lr"])
    return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"])


def training_data(cfg: dict[str, Any], model_cfg: dict[str, Any], classes: list[str], train_json: Path,
                  image_root: Path, mix: Mix | None = None) -> tuple[CocoInstances, ScaleJitter | None]:
    """The augmented training set (labels by class name), and its scale jitter if configured; with `mix`,
    a second set (a site's real frames) drawn for its configured share of the samples (MixedInstances)."""
    lo, hi = cfg.get("scale_jitter", [1.0, 1.0])
    scale = ScaleJitter(model_cfg["min_size_px"], model_cfg["max_size_px"], lo, hi) if (lo, hi) != (1.0, 1.0) else None
    transforms = train_transforms(cfg["hflip_prob"], cfg.get("photometric_prob", 0.0), scale,
                                  cfg.get("channel_permutation", False))
    sets = [(train_json, image_root)] + ([(mix.ann, mix.root)] if mix else [])
    parts = [CocoInstances(ann, root, transforms, classes=classes) for ann, root in sets]
    for (ann, _), part in zip(sets, parts):
        if len(part) == 0:
            raise ValueError(f"{ann}: training set is empty")
        if not part.coco["annotations"]:
            raise ValueError(f"{ann}: no image in the training set has an object")
    if mix:
        log.info("mixed training: %d images of %s and %d of %s, drawn %.0f %% / %.0f %%", len(parts[0]), train_json,
                 len(parts[1]), mix.ann, 100 * (1 - mix.fraction), 100 * mix.fraction)
        return MixedInstances(parts[0], parts[1], mix.fraction), scale
    return parts[0], scale


def validate(model, val_ds, device, iteration: int, val_rows: list, val_csv: Path, batch_size: int, workers: int,
             board: Board) -> float:
    """COCO AP on the validation split; append to val_metrics.csv (and TensorBoard); returns segm AP."""
    from pipeline.evaluate import coco_eval, predict

    # model label -> the file's category id, matched by name as in training and the evaluate CLI
    label_map = {label: cat for cat, label in val_ds.label_of.items()}
    preds = predict(model, val_ds, device, 0.05, 0.5, label_map, batch_size=batch_size, workers=workers)
    metrics = coco_eval(val_ds.coco, preds)
    model.train()
    val_rows.append({"iteration": iteration, "segm_AP": f"{metrics['segm']['AP']:.6g}",
                     "bbox_AP": f"{metrics['bbox']['AP']:.6g}", "segm_AP50": f"{metrics['segm']['AP50']:.6g}"})
    write_rows(val_csv, val_rows, list(val_rows[0]))
    board.scalars(iteration, {k: float(v) for k, v in val_rows[-1].items() if k != "iteration"}, "val")
    if board.enabled:
        from pipeline.tblog import prediction_sheet

        board.image("val/predictions", iteration, prediction_sheet(val_ds.root, val_ds.images[:2], preds, 0.5))
    log.info("iteration %d: val segm AP %.4f, bbox AP %.4f", iteration, metrics["segm"]["AP"], metrics["bbox"]["AP"])
    return metrics["segm"]["AP"]


def lr_lambda(warmup: int, total: int):
    """Linear warmup from 0.001x, then cosine to 0 (per iteration), as a LambdaLR factor."""
    def factor(it: int) -> float:
        if it < warmup:
            return 0.001 + (1 - 0.001) * it / warmup
        return 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))
    return factor


def train(cfg: dict[str, Any], classes: list[str], model_cfg: dict[str, Any], weights_info: dict[str, Any],
          train_json: Path, image_root: Path, out_dir: Path, stop_after: int | None = None,
          val_json: Path | None = None, mix: Mix | None = None, val_root: Path | None = None) -> dict[str, Any]:
    """Run (or resume) training; writes last.pth, model_final.pth and metrics.csv into `out_dir`.

    With `val_json` and `eval_every` > 0, segm/bbox AP on that split is measured every
    `eval_every` iterations (val_metrics.csv) and the best segm AP model kept as best.pth.
    With `ema_decay` > 0 an exponential moving average of the weights is kept; it is what
    validation scores and what best.pth/model_final.pth hold.
    `stop_after` ends the run early after that many iterations, as a kill would (tests use it).
    `mix` adds a second training set with its share of the samples; `val_root` is the validation
    images' folder when it is not `image_root` (a site's real val split).
    """
    torch.manual_seed(cfg["seed"])
    dist = distributed.setup()
    device = pick_device(cfg["device"], dist.local_rank)
    dataset, scale = training_data(cfg, model_cfg, classes, train_json, image_root, mix)
    factor = cfg.get("aspect_ratio_group_factor", -1)
    groups = aspect_groups(dataset.images, factor) if factor >= 0 else None
    model = build_model(len(classes) + 1, weights_info, model_cfg["trainable_backbone_layers"],
                        model_cfg["min_size_px"], model_cfg["max_size_px"],
                        transfer=model_cfg.get("transfer", "fine_tune"), classes=classes, recipe=model_cfg).to(device)
    log.info("%s, transfer=%s: %d trainable parameters", model_cfg["arch"], model_cfg.get("transfer", "fine_tune"),
             count_trainable(model))
    if scale is not None:
        # the images arrive already scaled; the model resizes only at evaluation (to min_size_px)
        model.transform._skip_resize = True
        log.info("scale jitter: training scale %.2f-%.2f x the evaluation scale (shorter side %d-%d px for %d px)",
                 scale.lo, scale.hi, round(scale.lo * scale.min_size), round(scale.hi * scale.min_size), scale.min_size)
    if device.type == "cuda":
        # Off by default: the mask head's convolutions see a different number of RoIs every
        # iteration, and cuDNN autotunes again for each new shape (measured on an H100: 2x slower
        # in fp32, 5-10x under AMP; benchmarks/results/train_gpu_cudnn_benchmark_on.json).
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))
        if cfg.get("channels_last"):
            model = model.to(memory_format=torch.channels_last)
    net = model  # DDP wraps the model after its memory format is final
    if dist.enabled:
        if cfg.get("sync_bn"):
            if device.type != "cuda":
                raise ValueError("train.sync_bn: SyncBatchNorm runs on CUDA devices only (this DDP run is on CPU)")
            # as torchvision's --sync-bn: batch statistics over all processes (small per-GPU batches)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # Images without objects leave the mask head out of the loss: unused parameters are normal here.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        torch.manual_seed(cfg["seed"] * 1000 + dist.rank)  # own RPN/RoI sampling stream per process
    optimizer = make_optimizer(cfg, model)
    total = cfg["iterations"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(max(1, cfg["warmup_iters"]), total))
    use_amp = cfg["amp"] and device.type == "cuda"
    amp_dtype = getattr(torch, cfg.get("amp_dtype", "float16"))
    # bf16 has fp32's exponent range: gradients do not underflow, so no loss scaling.
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ema = weight_ema(model, cfg.get("ema_decay", 0.0))
    loss_weights = cfg.get("loss_weights") or {}  # torchvision's loss terms, each 1 unless set; logged unweighted
    scored = ema.module if ema is not None else model  # what validation scores and best/final hold
    out_dir.mkdir(parents=True, exist_ok=True)
    if dist.main:
        remove_stale_temps(out_dir)  # a killed run's half-written checkpoint
    distributed.barrier(dist)
    last, metrics_csv, val_csv = out_dir / "last.pth", out_dir / "metrics.csv", out_dir / "val_metrics.csv"
    best, best_kept, best_at_ckpt = (out_dir / "best.pth", out_dir / train_state.BEST_KEPT,
                                     out_dir / train_state.BEST_AT_CHECKPOINT)
    eval_every = cfg.get("eval_every", 0) if val_json is not None else 0
    key = train_state.run_key(cfg, model_cfg, classes, weights_info, train_json, val_json, dist.world,
                              (mix.ann, mix.fraction) if mix else None)
    pos = train_state.Position()
    rows: list[dict[str, Any]] = []
    val_rows: list[dict[str, Any]] = []
    best_state = None  # {"iteration", "ap"} of the best validation so far, at full precision
    ckpt, why_not = train_state.check_resume(out_dir, key) if dist.main else (None, None)
    why_not = distributed.broadcast_object(why_not, dist)  # one decision for every process
    if why_not == "":
        ckpt = ckpt if dist.main else load_checkpoint(last)
        pos = train_state.restore(ckpt, model, optimizer, scheduler, scaler, ema, dist, device)
        rows, val_rows, best_state = list(ckpt["metrics_rows"]), list(ckpt["val_rows"]), ckpt.get("best")
        if best_state and dist.main:  # a better model a killed run found after its last checkpoint is not ours
            keep_copy(best_at_ckpt, best_kept)
        log.info("resuming from %s at iteration %d of %d", last, pos.iteration, total)
    else:
        if why_not:
            log.warning("%s %s: training afresh", last, why_not)
        if dist.main:  # nothing of an earlier run may pass for this one's
            for stale in (last, metrics_csv, val_csv, best, best_kept, best_at_ckpt, out_dir / "model_final.pth"):
                stale.unlink(missing_ok=True)
            shutil.rmtree(out_dir / "tensorboard", ignore_errors=True)
    del ckpt
    distributed.barrier(dist)
    if eval_every:
        from pipeline.data import eval_transforms

        val_ds = CocoInstances(val_json, val_root or image_root, eval_transforms(), targets=False, classes=classes)
    board = Board(out_dir / "tensorboard" if cfg.get("tensorboard") and dist.main else None, pos.iteration)
    meta = dict(iteration=pos.iteration, classes=list(classes), config=json.dumps({"train": cfg, "model": model_cfg},
                                                                              sort_keys=True),
                weights=json.dumps(weights_info))

    def save_model(path: Path) -> None:
        """The model alone (best.pth, model_final.pth): half the size of last.pth, no optimizer state."""
        if dist.main:
            save_checkpoint(path, **{**meta, "model": scored.state_dict()})

    from tqdm import tqdm

    if eval_every and dist.main and cfg.get("eval_first") and pos.iteration == 0 and not val_rows:
        validate(scored, val_ds, device, 0, val_rows, val_csv, cfg["batch_size"], cfg["workers"], board)  # the start
    model.train()
    stream = batches(dataset, cfg["batch_size"], cfg["seed"], cfg["workers"], pos.epoch, pos.batch_in_epoch,
                     dist.rank, dist.world, groups, dataset.weights() if mix else None)
    bar = tqdm(range(pos.iteration, total), desc="train", unit="it", file=sys.stderr, initial=pos.iteration,
               total=total, disable=not dist.main)
    batch_in_epoch = pos.batch_in_epoch
    for it in bar:
        if stop_after is not None and it >= stop_after:
            board.close()
            return {"iterations": it, "stopped": True}
        t0 = time.perf_counter()  # throughput includes waiting for data
        epoch, epoch_done, (images, targets) = next(stream)
        # where a resume continues: the next batch of this epoch, or the start of the next one
        batch_in_epoch = 0 if epoch_done else batch_in_epoch + 1
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            losses = net(images, targets)
            loss = sum(loss_weights.get(k, 1.0) * v for k, v in losses.items())
        # Mean over processes, so every process sees the same numbers and stops together on NaN.
        logged = distributed.mean(torch.stack([loss.detach(), *[v.detach() for v in losses.values()]]).float(), dist)
        logged = dict(zip(["loss", *losses], logged.tolist()))
        if not math.isfinite(logged["loss"]):
            board.close()
            raise NonFiniteLoss(f"iteration {it}: loss is {logged['loss']} ({logged}); "
                                f"last good checkpoint kept at {last}. Lower train.lr or check the data.")
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses (the scheduler moves it on below)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip_norm"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip_norm"])
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        dt = time.perf_counter() - t0
        row = {"iteration": it + 1, "epoch": epoch, "lr": lr, **logged,
               "images_per_s": len(images) * dist.world / dt,
               "gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0}
        rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        board.scalars(it + 1, {k: v for k, v in row.items() if k not in ("iteration", "epoch")}, "train")
        bar.set_postfix(loss=f"{logged['loss']:.3f}")
        meta["iteration"] = it + 1
        if eval_every and dist.main and ((it + 1) % eval_every == 0 or it + 1 == total):
            ap = validate(scored, val_ds, device, it + 1, val_rows, val_csv, cfg["batch_size"], cfg["workers"], board)
            if best_state is None or ap > best_state["ap"]:
                best_state = {"iteration": it + 1, "ap": float(ap)}  # a plain float: last.pth loads weights_only
                save_model(best)
                if dist.main:
                    keep_copy(best, best_kept)
        if (it + 1) % cfg["checkpoint_every"] == 0 or it + 1 == total:
            pos = train_state.Position(it + 1, epoch + 1 if epoch_done else epoch, batch_in_epoch)
            state = train_state.capture(model, optimizer, scheduler, scaler, ema, pos, dist, device)
            if dist.main:
                if best_state:
                    keep_copy(best_kept, best_at_ckpt)  # before last.pth, which says which iteration it holds
                save_checkpoint(last, **{**meta, **state, "run_key": key, "metrics_rows": rows, "val_rows": val_rows,
                                         "best": best_state})
                write_rows(metrics_csv, rows)
    board.close()
    save_model(out_dir / "model_final.pth")
    if dist.main:  # also when resumed at the last iteration: every declared output is written
        write_rows(metrics_csv, rows)
        if val_rows:
            write_rows(val_csv, val_rows, list(val_rows[0]))
        if best_state:  # best.pth is the best of this run, whatever a killed run left under that name
            keep_copy(best_kept, best)
        meta = provenance({"train": cfg, "model": model_cfg, "classes": classes, "weights": weights_info,
                           "data": {"train": str(train_json), "image_root": str(image_root), "val": str(val_json) if val_json else None,
                                    "mix": {"ann": str(mix.ann), "root": str(mix.root), "fraction": mix.fraction} if mix else None}})
        meta["device"] = str(device)
        meta["device_name"] = device_name(device)
        meta["processes"] = dist.world
        write_json(out_dir / "provenance.json", meta)
    distributed.barrier(dist)
    distributed.teardown(dist)
    return {"iterations": total, "final_loss": float(rows[-1]["loss"]) if rows else None}


def keep_copy(src: Path, dst: Path) -> None:
    """`dst` becomes the same file as `src`: a hard link (no extra disk), or a copy where links fail."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def write_rows(path: Path, rows: list[dict[str, Any]], fields: list[str] = CSV_FIELDS) -> None:
    """A metrics CSV, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import PROCEDURAL_CLASSES, section_arg

    ap = argparse.ArgumentParser(prog="python -m pipeline train", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--train-json", type=Path, required=True)
    ap.add_argument("--val-json", type=Path, help="split for periodic validation (train.eval_every)")
    ap.add_argument("--image-root", type=Path, required=True, help="folder the train file's file_name entries are relative to")
    ap.add_argument("--val-root", type=Path, help="folder of the validation images (default: --image-root)")
    ap.add_argument("--mix-json", type=Path, help="a second training set mixed in (a site's real frames, prepare-dataset)")
    ap.add_argument("--mix-root", type=Path, help="folder of --mix-json's images")
    ap.add_argument("--mix-fraction", type=float,
                    help="share of the training samples drawn from --mix-json, the rest from --train-json (default: 0.5)")
    ap.add_argument("--weights-json", type=Path, required=True)
    ap.add_argument("--classes", default=json.dumps(list(PROCEDURAL_CLASSES)),
                    help="JSON list of class names (labels 1..N in this order)")
    ap.add_argument("--model-cfg", type=section_arg("model"), default="{}",
                    help="`model` config section as JSON; keys left out take configs/schema.yaml's defaults")
    ap.add_argument("--train-cfg", type=section_arg("train"), default="{}",
                    help="`train` config section as JSON; keys left out take configs/schema.yaml's defaults")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--stop-after", type=int, metavar="N",
                    help="end after N iterations as a kill would, keeping last.pth (resume tests, time-boxed jobs)")
    args = ap.parse_args(argv)
    if bool(args.mix_json) != bool(args.mix_root) or (args.mix_fraction is not None and not args.mix_json):
        ap.error("--mix-json, --mix-root (and --mix-fraction) go together")
    if args.val_root and not args.val_json:
        ap.error("--val-root is the folder of --val-json's images: give --val-json too")
    mix_fraction = 0.5 if args.mix_fraction is None else args.mix_fraction
    if args.mix_json and not 0 < mix_fraction < 1:
        ap.error(f"--mix-fraction must be between 0 and 1 (exclusive), got {mix_fraction}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    model_cfg = args.model_cfg
    weights_info = read_json(args.weights_json)
    if model_cfg.get("weights") == "none":  # the from-scratch control of a comparison
        weights_info = {"kind": "none", "arch": model_cfg["arch"]}
    result = train(args.train_cfg, json.loads(args.classes), model_cfg,
                   weights_info, args.train_json, args.image_root, args.out_dir,
                   stop_after=args.stop_after, val_json=args.val_json, val_root=args.val_root,
                   mix=Mix(args.mix_json, args.mix_root, mix_fraction) if args.mix_json else None)
    log.info("done: %s", result)
    return 0
