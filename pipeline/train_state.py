"""Everything a resume needs, in one home: captured into last.pth, restored when training starts.

A run resumes only its own checkpoint: last.pth carries the run's key (train and model settings,
classes, base weights with their checksum, content hashes of the training and validation files,
the DDP world size and the training code), and a checkpoint with another key is not resumed (`mismatch` says why).

Model, optimizer, lr scheduler, GradScaler, weight EMA, the schedule position (epoch, batch in
epoch) and the RNG of every process (CPU and CUDA). Augmentations need no RNG of their own: each
sample's seed follows from its place in the schedule (pipeline.schedule), so the position is all
the data workers need.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from pipeline import distributed
from pipeline.io import file_sha256, files_sha256


# The modules a training run executes (data, model, loop, validation): an edit to one of them, then
# `snakemake -R train`, trains afresh instead of resuming the old code's finished run.
# best.pth's twins under names that are no rule's output (Snakemake deletes a job's outputs before it
# runs): the best model so far, and the one as of the last checkpoint (what a resume continues from)
BEST_KEPT = "best_of_run.pth"
BEST_AT_CHECKPOINT = "best_at_checkpoint.pth"
TRAIN_CODE = ("coco", "data", "distributed", "evaluate", "model", "schedule", "train", "train_state")


def code_version() -> str:
    """One hash over the training code's modules."""
    return files_sha256([Path(__file__).parent / f"{name}.py" for name in TRAIN_CODE])


def run_key(train_cfg: dict[str, Any], model_cfg: dict[str, Any], classes: list[str], weights_info: dict[str, Any],
            train_json: Path, val_json: Path | None, processes: int = 1,
            mix: tuple[Path, float] | None = None) -> dict[str, Any]:
    """What a run is trained from; a checkpoint is resumed only by a run with an equal key.

    `processes` (the DDP world size) is part of it: each process draws its own batches and RoI samples,
    so a run restarted on another number of GPUs is another run, not a continuation. `mix` is a second
    training set's file and share of the samples (mixed synthetic + real training)."""
    return {"train": train_cfg, "processes": processes, "model": model_cfg, "classes": list(classes), "weights": weights_info,
            "train_data": file_sha256(train_json), "val_data": file_sha256(val_json) if val_json else None,
            "mix": {"data": file_sha256(mix[0]), "fraction": mix[1]} if mix else None,
            "code": code_version(), "packages": {name: metadata.version(name) for name in ("torch", "torchvision")}}


def mismatch(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The parts of the run key that differ (all of them for a checkpoint without one)."""
    if not isinstance(saved, dict):
        return ["key (checkpoint written before runs had one)"]
    return [k for k in current if saved.get(k) != current[k]]


def check_resume(out_dir: Path, key: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(checkpoint, why not) for out_dir/last.pth: (None, None) without one, (ckpt, "") when this run
    resumes it, (None, reason) when it belongs to another run or the best model it records is gone."""
    from pipeline.model import load_checkpoint

    last = out_dir / "last.pth"
    if not last.exists():
        return None, None
    ckpt = load_checkpoint(last)
    changed = mismatch(ckpt.get("run_key"), key)
    if changed:
        return None, f"belongs to another run ({', '.join(changed)} differ)"
    best = ckpt.get("best")
    if best:  # the best model so far, as it was when last.pth was written
        kept = out_dir / BEST_AT_CHECKPOINT
        at = torch.load(kept, map_location="cpu", mmap=True, weights_only=True).get("iteration") if kept.exists() else None
        if at != best["iteration"]:
            return None, f"records its best model at iteration {best['iteration']}, but {kept.name} holds " + (
                f"iteration {at}" if at is not None else "nothing")
    return ckpt, ""


@dataclass
class Position:
    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG streams: CPU, and the CUDA device it trains on."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def capture(model, optimizer, scheduler, scaler, ema, position: Position, dist: distributed.Dist,
            device: torch.device) -> dict[str, Any]:
    """The resume state; a collective under DDP (every process hands in its RNG), call it on all ranks.
    (The caller adds the run key and the metric rows so far: a resumed run rewrites its CSVs from them.)"""
    return dict(model=model.state_dict(), optimizer=optimizer.state_dict(), lr_scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(), ema=ema.state_dict() if ema is not None else None,
                iteration=position.iteration, epoch=position.epoch, batch_in_epoch=position.batch_in_epoch,
                rng=distributed.gather_objects(rng_state(device), dist))


def restore(state: dict[str, Any], model, optimizer, scheduler, scaler, ema, dist: distributed.Dist,
            device: torch.device) -> Position:
    """Load a captured state into freshly built objects; returns where to continue."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if ema is not None:
        if state.get("ema") is None:
            raise ValueError("checkpoint has no EMA state but train.ema_decay is set (the config check should "
                             "have started afresh)")
        ema.load_state_dict(state["ema"])
    # one RNG state per process: a checkpoint of another world size is another run (run_key), never restored
    set_rng_state(state["rng"][dist.rank], device)
    return Position(state["iteration"], state["epoch"], state["batch_in_epoch"])
