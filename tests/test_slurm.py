"""The smoke workflow on a real one-node SLURM cluster (tests/cluster/slurm_up.sh), compared with a local run.

Needs root (the script apt-installs Debian's SLURM and starts munged/slurmctld/slurmd);
CI runs as root. Elsewhere the test is skipped with the reason.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from test_workflow import REPO, smk, write_config

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
CLUSTER = REPO / "tests" / "cluster"
# The resources table of this one-node cluster (2 CPUs, 2 fake GPUs, partitions main and gpu) over the
# smoke config, as a user gives configs/cluster.yaml; the shipped profile, unchanged.
CLUSTER_RESOURCES = yaml.safe_load((REPO / "configs/cluster_test.yaml").read_text())["resources"]
TABLE = load_config(REPO / "configs/smoke.yaml", {"resources": CLUSTER_RESOURCES})["resources"]  # with defaults
# rule -> its kind in the table; render and annotate of a shard run as one group job (profiles/slurm)
KINDS = {"contact_sheet": "report", "crop_sheet": "report", "dataset_stats": "report", "train": "train",
         "evaluate": "evaluate", "report": "report"}
SHARD_GROUP = "shard_annotate_render"


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("needs root and apt-get to install and start SLURM (CI has both)")
    up = subprocess.run([str(CLUSTER / "slurm_up.sh")], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    subprocess.run([str(CLUSTER / "slurm_down.sh")], capture_output=True, timeout=120)


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", out))


def sbatch_request(job: dict[str, str]) -> dict:
    """What a job asked SLURM for, as scontrol shows it."""
    return {"partition": job["Partition"], "cpus": int(job["NumCPUs"]), "tasks": int(job["NumTasks"]),
            "mem_mb": int(job["MinMemoryNode"].rstrip("M")), "minutes": int(job["TimeLimit"].split(":")[0]) * 60
            + int(job["TimeLimit"].split(":")[1]), "gpus": job.get("TresPerJob", "")}


def expected_request(kind: str) -> dict:
    """The sbatch request of a job of `kind` from the table: GPU kinds in the gpu partition, the others in
    the cluster's default (main: cpu_partition is empty)."""
    res = TABLE[kind]
    return {"partition": TABLE["gpu_partition"] if res["gpus"] else "main", "cpus": res["threads"], "tasks": 1,
            "mem_mb": res["mem_mb"], "minutes": res["runtime_min"],
            "gpus": f"gres:gpu:{res['gpus']}" if res["gpus"] else ""}


def test_smoke_workflow_runs_through_slurm_and_matches_local_run(slurm_cluster, tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    local.mkdir(), cluster.mkdir()
    smk(local, write_config(local, resources=CLUSTER_RESOURCES), "--cores", "2")
    res = smk(cluster, write_config(cluster, resources=CLUSTER_RESOURCES), "--profile", str(REPO / "profiles/slurm"),
              "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "3", "--latency-wait", "5",
              "--jobs", "4")
    log = res.stdout + res.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/(?:rule|group)_(\w+?)[/.]", log)
    # Every non-local rule went through sbatch: render and annotate of a shard in one group job (2 shards:
    # 2 jobs; profiles/slurm: group-components shard=1), the others one job each (people and jack sheets: 2).
    names = [name for _, name in submitted]
    assert sorted(names) == sorted([SHARD_GROUP, SHARD_GROUP, "contact_sheet", "crop_sheet", "crop_sheet",
                                    "dataset_stats", "train", "evaluate", "report"]), log[-3000:]
    jobcomp = Path("/var/log/slurm/jobcomp.log").read_text()
    for job_id, name in submitted:
        job = scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED" and job["Comment"].startswith(f"rule_{name}"), (job_id, job)
        assert re.search(rf"^JobId={job_id} .*JobState=COMPLETED", jobcomp, re.M), job_id
        if name == SHARD_GROUP:
            # render, then annotate: the larger of their CPUs and memory, their runtimes added; no GPU:
            # render.device is auto, so the render kind, in the default partition
            want = {"partition": "main", "cpus": max(TABLE["render"]["threads"], TABLE["annotate"]["threads"]),
                    "tasks": 1, "mem_mb": max(TABLE["render"]["mem_mb"], TABLE["annotate"]["mem_mb"]), "gpus": "",
                    "minutes": TABLE["render"]["runtime_min"] + TABLE["annotate"]["runtime_min"]}
        else:
            want = expected_request(KINDS[name])
        assert sbatch_request(job) == want, (name, job)
    # The group jobs rendered and annotated both shards (their logs are written by the jobs inside them).
    out = cluster / "results/smoke"
    for shard in ("000", "001"):
        assert "rendering 2" in (out / f"logs/render/shard_{shard}.log").read_text()
        assert (out / f"coco/shard_{shard}.json").is_file()
    # train asked for 2 GPUs: one model, trained by torchrun with 2 processes (gloo here: no CUDA).
    assert "DDP: 2 processes (gloo)" in (out / "logs/train.log").read_text()
    assert json.loads((out / "train/provenance.json").read_text())["processes"] == 2
    # Light rules stay on the submit host.
    assert "localrule split" in log and "localrule weights" in log
    # Same outputs as the local run (which ran torchrun too): dataset, metadata and evaluation byte for
    # byte; same training losses.
    a, b = local / "results/smoke", out
    files = [p.relative_to(a) for p in a.rglob("*.json")
             if "benchmarks" not in p.parts and p.name not in {"manifest.json", "provenance.json"}]
    assert any(f.parts[0] == "dataset" for f in files) and any(f.parts[0] == "eval" for f in files)
    for f in files:
        assert (b / f).read_bytes() == (a / f).read_bytes(), f

    def losses(run):
        lines = (run / "train/metrics.csv").read_text().splitlines()
        col = lines[0].split(",").index("loss")
        return [line.split(",")[col] for line in lines[1:]]
    assert losses(a) == losses(b)
    assert (b / "report/index.html").is_file()
