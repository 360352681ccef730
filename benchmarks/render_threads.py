"""Does a render job use the cores Snakemake gave it, and no more?

    python benchmarks/render_threads.py --out benchmarks/results/render_threads.json
    git worktree add /tmp/before 9ed3beb     # the workflow before issue #23, for comparison:
    python benchmarks/render_threads.py --code /tmp/before --out benchmarks/results/render_threads_before.json

Runs the render rule of a one-shard workflow (320x240, 16 samples, 3 frames) with `--cores 1` and
`--cores 2` and reads Snakemake's own benchmark file of the job: CPU time / wall time is the number
of cores the job kept busy. With the job's `{threads}` reaching Cycles it stays at or below the
cores given (1 with --cores 1); before, Cycles took every core it saw whatever the rule declared.
Also reads the thread count the render log and the shard's manifest report (when the code has them).
Run it on an otherwise idle machine: other load lowers the ratio. Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: Path, cores: int, work: Path) -> dict:
    work.mkdir(parents=True)
    cfg = {"name": "threads", "seed": 0, "classes": ["pedestrian", "pallet_jack"], "model": {"weights": "none"},
           "render": {"shards": 1, "images_per_shard": 3, "resolution_px": [320, 240], "samples": 16,
                      "denoise": True}}
    (work / "config.yaml").write_text(json.dumps(cfg))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(code / "Snakefile"), "--directory", str(work),
                          "--configfile", str(work / "config.yaml"), "--cores", str(cores),
                          "results/threads/render/shard_000/manifest.json"],
                         capture_output=True, text=True, cwd=code)
    if res.returncode:
        raise SystemExit(f"snakemake --cores {cores} failed:\n{res.stderr[-3000:]}")
    with open(work / "results/threads/benchmarks/render/shard_000.tsv") as f:
        row = next(csv.DictReader(f, delimiter="\t"))
    wall, cpu = float(row["s"]), float(row["cpu_time"])
    log = (work / "results/threads/logs/render/shard_000.log").read_text()
    said = re.search(r"Cycles: \S+, (\d+) threads \((.*?)\)", log)
    manifest = json.loads((work / "results/threads/render/shard_000/manifest.json").read_text())
    return {"cores": cores, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "busy_cores": round(cpu / wall, 2),
            "log_threads": int(said.group(1)) if said else None, "log_mode": said.group(2) if said else None,
            "manifest_threads": manifest["provenance"].get("render_threads")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose workflow runs (a worktree for before/after)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/render_threads.json"))
    args = ap.parse_args(argv)
    code = args.code.resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cores in (1, 2):
            rows.append(run(code, cores, Path(tmp) / f"cores{cores}"))
            print(f"--cores {cores}: {rows[-1]}", file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"code": str(code), "commit": commit, "runs": rows,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'--cores':>8s} {'wall s':>7s} {'CPU s':>7s} {'busy cores':>10s} {'Cycles threads':>15s}")
    for r in rows:
        print(f"{r['cores']:8d} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['busy_cores']:10.2f} "
              f"{str(r['log_threads'] or '(not logged)'):>15s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
