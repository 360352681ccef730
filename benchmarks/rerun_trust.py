"""Issue #22's reproduction, measured: run a tiny workflow, change two render settings, run it again;
record what render and train did (log lines), whether the frames changed (file hashes) and whether
every declared output is there. Run it on a checkout before and after a change to compare.

    python benchmarks/rerun_trust.py --code /tmp/old_checkout --label before
    python benchmarks/rerun_trust.py --label after          # this checkout
-> benchmarks/results/rerun_trust_<label>.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# configs/smoke.yaml made smaller (as tests/test_workflow.py does), minutes on 2 cores
TINY = {"render": {"shards": 2, "images_per_shard": 2, "resolution_px": [128, 96], "samples": 4},
        "model": {"weights": "none", "min_size_px": 96, "max_size_px": 128},
        "train": {"iterations": 2, "batch_size": 2, "checkpoint_every": 1, "workers": 0, "warmup_iters": 1,
                  "eval_every": 1},
        "evaluate": {"split": "test", "checkpoint": "best"},
        "report": {"num_images": 1}}
CHANGE = {"pedestrians_per_image": [4, 8], "camera_height_m": [4.0, 6.0]}


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def digests(run: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(run.glob(pattern))}


def log_lines(path: Path, *needles: str) -> list[str]:
    if not path.is_file():
        return []
    return [line.split(" INFO ", 1)[-1].split(" WARNING ", 1)[-1].strip()
            for line in path.read_text().splitlines() if any(n in line for n in needles) and "%|" not in line]


def snakemake(code: Path, work: Path, cfg: dict, *args: str) -> dict:
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(code / "Snakefile"), *args,
                          "--directory", str(work), "--configfile", str(path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(code)})
    tail = [line for line in (res.stdout + res.stderr).splitlines()
            if "output files are missing" in line or "Nothing to be done" in line or "Error in rule" in line]
    return {"returncode": res.returncode, "wall_s": round(time.perf_counter() - t0, 1), "notable": tail}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose Snakefile and packages run")
    ap.add_argument("--label", required=True)
    ap.add_argument("--work", type=Path, help="work folder (default: a temp folder)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="rerun_trust_"))
    work.mkdir(parents=True, exist_ok=True)
    base = merge(yaml.safe_load((args.code / "configs/smoke.yaml").read_text()), TINY)
    run = work / "results" / base["name"]
    result: dict = {"label": args.label, "code": str(args.code), "change": CHANGE}
    result["first"] = snakemake(args.code, work, base, "--cores", "2")
    before = digests(run, "render/shard_*/[rm]*/*")
    result["second"] = snakemake(args.code, work, merge(base, {"render": CHANGE}), "--cores", "2")
    after = digests(run, "render/shard_*/[rm]*/*")
    result["render_log"] = log_lines(run / "logs/render/shard_000.log", "shard 0:")
    result["train_log"] = log_lines(run / "logs/train.log", "resuming", "afresh", "done:")
    result["frames_unchanged"] = sorted(f for f in before if after.get(f) == before[f])
    result["frames_changed"] = sorted(f for f in before if f in after and after[f] != before[f])
    manifest = json.loads((run / "render/shard_000/manifest.json").read_text())
    result["manifest_render_change_recorded"] = all(manifest["render"][k] == v for k, v in CHANGE.items())
    result["outputs_present"] = {rel: (run / rel).is_file() for rel in
                                 ("train/model_final.pth", "train/best.pth", "train/metrics.csv", "eval/metrics.json",
                                  "report/index.html")}
    result["dry_run_after"] = snakemake(args.code, work, merge(base, {"render": CHANGE}), "-n")
    out = args.out or REPO / "benchmarks/results" / f"rerun_trust_{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("frames_unchanged", "frames_changed")}, indent=1))
    print(f"frames unchanged: {len(result['frames_unchanged'])}, changed: {len(result['frames_changed'])} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
