"""DistributedDataParallel on CPU: torchrun with 2 gloo processes trains, splits the batches, saves once."""
import csv
import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from pipeline.model import load_checkpoint
from pipeline.train import batches

pytestmark = pytest.mark.slow


def test_each_process_gets_its_own_half_of_every_global_batch():
    data = list(range(8))

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i], {"i": i}

    def take(rank, world, bs):
        stream = batches(DS(), bs, seed=3, workers=0, start_epoch=0, rank=rank, world=world)
        return [list(next(stream)[2][0]) for _ in range(2)]

    r0, r1, single = take(0, 2, 2), take(1, 2, 2), take(0, 1, 4)
    for k in range(2):
        assert sorted(r0[k] + r1[k]) == sorted(single[k])  # together: the one-process global batch
        assert not set(r0[k]) & set(r1[k])


def test_torchrun_two_gloo_processes_train_and_save_once(shard_coco, rendered_shard, tmp_path):
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"kind": "none", "arch": "maskrcnn_resnet50_fpn"}))
    cfg = {"iterations": 3, "batch_size": 1, "lr": 0.001, "momentum": 0.9, "weight_decay": 1e-4, "warmup_iters": 1,
           "grad_clip_norm": 10.0, "checkpoint_every": 1, "hflip_prob": 0.5, "workers": 0, "device": "cpu",
           "amp": False, "seed": 0, "eval_every": 0}
    model_cfg = {"arch": "maskrcnn_resnet50_fpn", "weights": "none", "trainable_backbone_layers": 3,
                 "min_size_px": 96, "max_size_px": 128, "transfer": "fine_tune"}
    out = tmp_path / "ddp"
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "pipeline", "train", "--train-json", str(ann), "--image-root", str(rendered_shard),
         "--weights-json", str(weights), "--classes", json.dumps(["pedestrian", "pallet_jack"]),
         "--model-cfg", json.dumps(model_cfg), "--train-cfg", json.dumps(cfg), "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", **__import__("os").environ},
        timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "DDP: 2 processes (gloo)" in res.stderr
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]  # one row per step, written by rank 0 only
    assert all(float(r["loss"]) > 0 for r in rows)
    ckpt = load_checkpoint(out / "model_final.pth", ["pedestrian", "pallet_jack"])
    assert ckpt["iteration"] == 3 and not any(k.startswith("module.") for k in ckpt["model"])
    assert json.loads((out / "provenance.json").read_text())["processes"] == 2
