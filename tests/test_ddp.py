"""DistributedDataParallel on CPU: torchrun with 2 gloo processes trains, splits the batches, saves once."""
import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from pipeline.model import load_checkpoint
from tests.test_train import train_cli_args

pytestmark = pytest.mark.slow


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *args], cwd=REPO, capture_output=True, text=True,
                         env={"OMP_NUM_THREADS": "1", **os.environ}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_torchrun_two_gloo_processes_train_and_save_once(shard_coco, rendered_shard, tmp_path):
    out = tmp_path / "ddp"
    # every augmentation on, 2 data workers per process: each process its own draws
    cfg = dict(iterations=3, batch_size=1, photometric_prob=0.5, scale_jitter=[0.8, 1.2], workers=2)
    res = torchrun(train_cli_args(shard_coco, rendered_shard, tmp_path, out, **cfg))
    assert "DDP: 2 processes (gloo)" in res.stderr
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]  # one row per step, written by rank 0 only
    assert all(float(r["loss"]) > 0 for r in rows)
    ckpt = load_checkpoint(out / "model_final.pth", ["pedestrian", "pallet_jack"])
    assert ckpt["iteration"] == 3 and not any(k.startswith("module.") for k in ckpt["model"])
    assert json.loads((out / "provenance.json").read_text())["processes"] == 2
    # last.pth holds each process's own RNG streams, restored per rank on resume
    rngs = load_checkpoint(out / "last.pth")["rng"]
    assert len(rngs) == 2 and not torch.equal(rngs[0]["cpu"], rngs[1]["cpu"])
    # Killed after 2 iterations and resumed: the losses of the uninterrupted run (both processes
    # continue their own RPN/RoI sampling streams and augmentation draws).
    resumed = tmp_path / "ddp_resumed"
    torchrun([*train_cli_args(shard_coco, rendered_shard, tmp_path, resumed, **cfg), "--stop-after", "2"])
    assert load_checkpoint(resumed / "last.pth")["iteration"] == 2
    torchrun(train_cli_args(shard_coco, rendered_shard, tmp_path, resumed, **cfg))

    def losses(run):
        with open(run / "metrics.csv") as f:
            return [round(float(r["loss"]), 4) for r in csv.DictReader(f)]
    assert losses(resumed) == losses(out) and len(losses(out)) == 3

    # The same run on one process is another run (its batches and RoI samples differ): it must not
    # continue the 2-process checkpoint, whatever iteration that reached.
    single = subprocess.run([sys.executable, *train_cli_args(shard_coco, rendered_shard, tmp_path, resumed, **cfg),
                             "--stop-after", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    assert "(processes differ): training afresh" in single.stderr, single.stderr[-3000:]
    with open(resumed / "metrics.csv") as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == [1]
