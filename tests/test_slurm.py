"""The smoke workflow on a real one-node SLURM cluster (tests/cluster/slurm_up.sh), compared with a local run.

Needs root (the script apt-installs Debian's SLURM and starts munged/slurmctld/slurmd);
CI runs as root. Elsewhere the test is skipped with the reason.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_workflow import REPO, smk, write_config

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
CLUSTER = REPO / "tests" / "cluster"
# The profile's resources are sized for the default config on a real cluster; this one-node
# cluster has the machine's 2 CPUs, so the test scales them down (same keys the profile sets).
SMALL_RESOURCES = ["--default-resources", "slurm_partition=main", "mem_mb=1000", "runtime=30", "cpus_per_task=1",
                   "--set-resources", "render:cpus_per_task=2", "render:mem_mb=2000", "train:gpu=1",
                   "train:cpus_per_task=2", "train:mem_mb=4000", "evaluate:mem_mb=3000"]
REMOTE_RULES = {"render", "annotate", "contact_sheet", "crop_sheet", "train", "evaluate", "report"}


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


def test_smoke_workflow_runs_through_slurm_and_matches_local_run(slurm_cluster, tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    local.mkdir(), cluster.mkdir()
    smk(local, write_config(local), "--cores", "2")
    res = smk(cluster, write_config(cluster), "--profile", str(REPO / "profiles/slurm"), "--slurm-no-account",
              "--slurm-init-seconds-before-status-checks", "3", "--latency-wait", "5", "--jobs", "4",
              *SMALL_RESOURCES)
    log = res.stdout + res.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)[/.]", log)
    # Every non-local rule went through sbatch, once per job (2 render and 2 annotate shards).
    rules = [rule for _, rule in submitted]
    assert set(rules) == REMOTE_RULES and rules.count("render") == 2 and rules.count("annotate") == 2 \
        and rules.count("crop_sheet") == 2, log[-3000:]  # people and jack sheets
    jobcomp = Path("/var/log/slurm/jobcomp.log").read_text()
    for job_id, rule in submitted:
        job = scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED" and job["Comment"].startswith(f"rule_{rule}"), (job_id, job)
        assert re.search(rf"^JobId={job_id} .*JobState=COMPLETED", jobcomp, re.M), job_id
        if rule == "train":
            assert job.get("TresPerJob") == "gres:gpu:1", job  # the profile's gpu: 1 reached SLURM
    # Light rules stay on the submit host.
    assert "localrule split" in log and "localrule weights" in log
    # Same outputs as the local run: dataset, metadata and evaluation byte for byte; same training losses.
    a, b = local / "results/smoke", cluster / "results/smoke"
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
