"""Every rule's threads and resources come from the config's `resources` table (dry runs, nothing runs).

The table's kinds: render (render_gpu with render.device GPU), annotate, light, train, evaluate, report.
A dry run prints each job's threads (when > 1, capped at --cores) and resources, which
snakemake-executor-plugin-slurm turns into sbatch options (tests/test_slurm.py checks what SLURM got).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.config import load_config

pytestmark = pytest.mark.slow  # Snakemake dry runs, a few seconds each
REPO = Path(__file__).resolve().parent.parent
KINDS = {
    "render": "render", "proof_render": "render", "annotate": "annotate", "proof_annotate": "annotate",
    "split": "light", "subset": "light", "weights": "light", "proof_split": "light", "proof_subset": "light",
    "proof_weights": "light",
    "train": "train", "train_variant": "train", "proof_train": "train",
    "evaluate": "evaluate", "evaluate_variant": "evaluate", "zero_shot": "evaluate", "evaluate_real": "evaluate",
    "prepare_real": "light", "proof_evaluate": "evaluate", "proof_no_adaptation": "evaluate",
    "report": "report", "contact_sheet": "report", "crop_sheet": "report", "proof_report": "report",
}
# A table where every number differs, so a job's numbers tell which entry they came from.
TABLE = {"cpu_partition": "cpu", "gpu_partition": "gpu",
         "render": {"threads": 3, "mem_mb": 3100, "runtime_min": 31},
         "render_gpu": {"threads": 7, "mem_mb": 7100, "runtime_min": 71, "gpus": 1, "gpu_model": "l40s"},
         "annotate": {"threads": 5, "mem_mb": 5100, "runtime_min": 51},
         "light": {"threads": 2, "mem_mb": 2100, "runtime_min": 21},
         "train": {"threads": 6, "mem_mb": 6100, "runtime_min": 61, "gpus": 1, "slurm_extra": "--mail-type=END"},
         "evaluate": {"threads": 4, "mem_mb": 4100, "runtime_min": 41, "gpus": 1, "partition": "eval"},
         "report": {"threads": 8, "mem_mb": 8100, "runtime_min": 81}}


def dry_run(tmp_path: Path, overlay: dict | None, *args: str, targets=("all", "proof")) -> list[dict]:
    """The jobs of a dry run of configs/default.yaml (with `overlay` as a second config file): one dict per
    job with rule, threads, resources and shell command."""
    configs = [str(REPO / "configs/default.yaml")]
    if overlay is not None:
        (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
        configs.append(str(tmp_path / "overlay.yaml"))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *targets, "-n", "-p",
                          "--directory", str(tmp_path), *args, "--configfile", *configs],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = []
    for line in res.stdout.splitlines():
        if m := re.match(r"\s*(?:local)?rule (\w+):$", line):
            jobs.append({"rule": m.group(1), "threads": 1, "resources": {}, "shell": ""})
        elif jobs and (m := re.match(r"\s*threads: (\d+)$", line)):
            jobs[-1]["threads"] = int(m.group(1))
        elif jobs and (m := re.match(r"\s*resources: (.*)$", line)):
            pairs = (item.split("=", 1) for item in m.group(1).split(", "))
            jobs[-1]["resources"] = {k: int(v) if v.isdigit() else v for k, v in pairs}
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line[len("Shell command: "):]
    return [j for j in jobs if j["rule"] in KINDS]


def expected(table: dict, kind: str, partition_kind: str | None = None) -> dict:
    """What a job of `kind` asks for, by the table (resolved with the schema defaults)."""
    res = table[kind]
    want = {"mem_mb": res["mem_mb"], "runtime": res["runtime_min"], "cpus_per_task": res["threads"],
            "gpu": res["gpus"]}
    if res["gpus"]:
        want["tasks_per_gpu"] = 0
    owner = table[partition_kind or kind]
    partition = res.get("partition") or owner.get("partition") or table["gpu_partition" if owner["gpus"]
                                                                         else "cpu_partition"]
    if partition:
        want["slurm_partition"] = partition
    want.update({k: res[k] for k in ("gpu_model", "slurm_extra") if res.get(k)})
    return want


def resolved(overlay: dict | None) -> dict:
    return load_config(REPO / "configs/default.yaml", overlay)


@pytest.mark.parametrize("overlay", [None, {"resources": TABLE}], ids=["default_table", "custom_table"])
def test_every_rule_takes_threads_and_resources_from_its_kind(tmp_path, overlay):
    # a site's labelled set, so that its rules (prepare_real, evaluate_real) are planned too
    (tmp_path / "site").mkdir()
    cv2.imwrite(str(tmp_path / "site/f.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "site/coco.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "f.png", "width": 4,
                                                                    "height": 4}], "annotations": [],
                                                         "categories": [{"id": 1, "name": "person"}]}))
    overlay = {**(overlay or {}), "datasets": {"site": {"ann": str(tmp_path / "site/coco.json"),
                                                        "images": str(tmp_path / "site")}}}
    table = resolved(overlay)["resources"]
    jobs = dry_run(tmp_path, overlay, "--cores", "64")
    assert {j["rule"] for j in jobs} == set(KINDS)
    for job in jobs:
        kind = KINDS[job["rule"]]
        want = expected(table, kind, partition_kind="render" if kind == "annotate" else None)
        got = {k: v for k, v in job["resources"].items() if k in {*want, "slurm_partition", "gpu_model", "slurm_extra"}}
        assert got == want, job
        assert job["threads"] == table[kind]["threads"], job
    if overlay is None:
        # the case: a comparison training of the default config asks for a GPU on SLURM
        variant = next(j for j in jobs if j["rule"] == "train_variant")
        assert variant["resources"]["gpu"] == 1 and variant["resources"]["cpus_per_task"] == 8
    # Cycles gets the render job's threads; one GPU per training: plain python, no torchrun
    render = next(j for j in jobs if j["rule"] == "render")
    assert f"--threads {table['render']['threads']} " in render["shell"]
    assert '"threads": 0' in render["shell"] and '"kernel_cache_dir": ""' in render["shell"]  # no params of it
    trains = [j for j in jobs if KINDS[j["rule"]] == "train"]
    assert all(launched(j, tmp_path)[:4] == ["-m", "pipeline", "train", "--train-json"] for j in trains)


def test_gpu_render_and_render_threads(tmp_path):
    """render.device GPU picks the render_gpu entry (its GPU, the GPU partition; annotate follows it into
    the shard's group job); render.threads, when nonzero, is the render job's threads and Cycles'."""
    overlay = {"resources": TABLE, "render": {"device": "GPU", "threads": 9}}
    table = resolved(overlay)["resources"]
    jobs = dry_run(tmp_path, overlay, "--cores", "64", targets=("results/default/coco/shard_000.json",))
    render = next(j for j in jobs if j["rule"] == "render")
    annotate = next(j for j in jobs if j["rule"] == "annotate")
    assert render["resources"] == {**render["resources"], **expected(table, "render_gpu"), "cpus_per_task": 9}
    assert render["resources"]["gpu"] == 1 and render["resources"]["slurm_partition"] == "gpu"
    assert render["threads"] == 9 and "--threads 9 " in render["shell"]
    assert annotate["resources"]["slurm_partition"] == "gpu" and annotate["resources"]["gpu"] == 0


def launched(job: dict, workdir: Path) -> list[str]:
    """The command line a training job's shell starts (its interpreter replaced by echo, run in bash)."""
    (workdir / Path(job["shell"].rsplit("> ", 1)[1].split()[0]).parent).mkdir(parents=True, exist_ok=True)
    shell = job["shell"].replace(sys.executable, "echo").replace(" 2>&1", "").rsplit("> ", 1)[0]
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", shell], cwd=workdir, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_multi_gpu_training_launches_torchrun(tmp_path):
    """train gpus > 1: every training (main, comparisons, proof runs) is one torchrun job with a process
    per GPU, decided when the job runs from the GPUs it got: --set-resources train:gpu=N starts N
    processes too, and under profiles/local (--resources gpu=1) the one GPU there is gets plain python."""
    overlay = {"resources": {"train": {"gpus": 2}}}
    trains = [j for j in dry_run(tmp_path, overlay, "--cores", "8") if KINDS[j["rule"]] == "train"]
    assert {j["rule"] for j in trains} == {"train", "train_variant", "proof_train"}
    for job in trains:
        assert job["resources"]["gpu"] == 2 and job["resources"]["tasks_per_gpu"] == 0
        argv = launched(job, tmp_path)
        assert argv[:8] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                            "pipeline", "train"] and argv[8] == "--train-json", (job, argv)
    target = ("results/default/train/model_final.pth",)
    local = dry_run(tmp_path, overlay, "--profile", str(REPO / "profiles/local"), targets=target)
    train = next(j for j in local if j["rule"] == "train")
    assert train["resources"]["gpu"] == 1 and launched(train, tmp_path)[:4] == ["-m", "pipeline", "train", "--train-json"]
    # the table says one GPU, the command line two: torchrun with 2 processes
    over = dry_run(tmp_path, None, "--cores", "8", "--set-resources", "train:gpu=2", targets=target)
    train = next(j for j in over if j["rule"] == "train")
    assert train["resources"]["gpu"] == 2 and launched(train, tmp_path)[3:5] == ["--nproc_per_node", "2"]


def test_set_threads_reaches_cpus_per_task(tmp_path):
    """--set-threads changes what sbatch gets (cpus_per_task follows the job's threads); a dry run caps
    threads at its --cores, hence the README's --cores in its dry run."""
    target = ("results/default/coco/shard_000.json",)
    for args, cpus in ((("--cores", "64", "--set-threads", "render=8"), 8), (("--cores", "64"), 4),
                       (("--set-threads", "render=8"), 1)):
        jobs = dry_run(tmp_path, None, *args, targets=target)
        render = next(j for j in jobs if j["rule"] == "render")
        assert render["resources"]["cpus_per_task"] == cpus and render["threads"] == cpus, args
        assert f"--threads {cpus} " in render["shell"]
    jobs = dry_run(tmp_path, None, "--profile", str(REPO / "profiles/slurm"), "--cores", "1024", "--set-threads",
                   "render=8", "annotate=2", targets=target)
    assert {j["rule"]: j["resources"]["cpus_per_task"] for j in jobs} == {"render": 8, "annotate": 2}


def test_slurm_profile_groups_render_and_annotate_of_a_shard(tmp_path):
    """profiles/slurm: render and annotate of a shard are one sbatch job, one shard per job (the plugin runs
    a group's shards one after another), site B's shards in a group of their own."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert "default-resources" not in profile and "set-resources" not in profile  # numbers: the config's table
    assert profile["group-components"] == ["shard=1", "proof_shard=1"]
    configs = [str(REPO / "configs/default.yaml")]
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "all", "proof", "-n",
                          "--directory", str(tmp_path), "--profile", str(REPO / "profiles/slurm"),
                          "--configfile", *configs], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = resolved(None)
    assert res.stdout.count("Group job shard ") == cfg["render"]["shards"]
    assert res.stdout.count("Group job proof_shard ") == cfg["proof"]["shards"]
