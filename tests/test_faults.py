"""Real kill -9 mid-way through a render shard and a training run: the rerun finishes the job and the
result is the same as an uninterrupted run."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, tiny_render_cfg
from pipeline.model import load_checkpoint
from tests.test_train import train_cli_args

pytestmark = pytest.mark.slow


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (no clean-up handlers run, as after an OOM kill)."""
    t0 = time.time()
    while not ready():
        assert proc.poll() is None, f"process ended (rc {proc.returncode}) before it could be killed"
        assert time.time() - t0 < timeout, "timed out waiting to kill"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_render_shard_killed_with_sigkill_reruns_only_missing_frames(rendered_shard, tmp_path):
    out = tmp_path / "shard_000"
    args = ["-m", "blender.render", "--render-json", json.dumps(tiny_render_cfg()), "--seed", "0", "--shard", "0",
            "--out", str(out)]
    kill_when(start(args, tmp_path / "first.log"), lambda: (out / "meta/s000_00000.json").exists())
    assert not (out / "manifest.json").exists()  # nothing that looks finished
    assert not (out / "meta/s000_00001.json").exists()
    res = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "rendered 1 frames" in res.stderr  # only the missing frame
    # Same dataset as the uninterrupted session fixture (same config and seed).
    for frame in ("s000_00000", "s000_00001"):
        assert (out / f"meta/{frame}.json").read_bytes() == (rendered_shard / f"meta/{frame}.json").read_bytes()
        for sub in ("ids", "rgb"):
            assert (out / f"{sub}/{frame}.png").read_bytes() == (rendered_shard / f"{sub}/{frame}.png").read_bytes()
    assert not [p for p in out.rglob(".*")]  # no temp files of the killed run left behind


def test_training_killed_with_sigkill_resumes_from_last_checkpoint(shard_coco, rendered_shard, tmp_path):
    def args(out):
        return train_cli_args(shard_coco, rendered_shard, tmp_path, out, iterations=5, batch_size=1)

    killed = tmp_path / "killed"

    def two_steps_saved():
        try:
            return load_checkpoint(killed / "last.pth")["iteration"] >= 2
        except (FileNotFoundError, ValueError):
            return False

    kill_when(start(args(killed), tmp_path / "first.log"), two_steps_saved)
    assert not (killed / "model_final.pth").exists()
    at_kill = load_checkpoint(killed / "last.pth")["iteration"]
    assert 2 <= at_kill < 5
    res = subprocess.run([sys.executable, *args(killed)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"at iteration {at_kill}" in res.stderr  # resumed, not restarted
    whole = tmp_path / "whole"
    res = subprocess.run([sys.executable, *args(whole)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]

    def losses(run):
        with open(run / "metrics.csv") as f:
            return [(r["iteration"], round(float(r["loss"]), 3)) for r in csv.DictReader(f)]

    assert losses(killed) == losses(whole) and len(losses(whole)) == 5
    a, b = load_checkpoint(killed / "model_final.pth")["model"], load_checkpoint(whole / "model_final.pth")["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    assert not [p for p in killed.glob(".*")]
