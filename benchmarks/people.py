"""Realism benchmark: does a pose model trained on real photos recognise our rendered people?

Renders a fixed set of scenes (default distribution of a checkout's configs/default.yaml, 640x480,
one shard of `--frames` frames, seed 0), annotates them, then runs MediaPipe BlazePose
(benchmarks/people_pose.py, in its own venv made by benchmarks/people_venv.sh: mediapipe pulls jax
and opencv-contrib, which stay out of the project venv) on square crops around every large, mostly
visible pedestrian, and around pallet jacks as a control (a pose found there is a false alarm).

    bash benchmarks/people_venv.sh                                    # once: .people-venv/
    git worktree add /tmp/mannequin aa7453a                           # the last commit with primitive people
    python benchmarks/people.py --code /tmp/mannequin --label mannequin
    python benchmarks/people.py --code . --label bodies               # merges into the same JSON

Writes benchmarks/results/people.json ({"recognised": {label: share}, "n": ..., "jack_false_alarms": ...})
and a sheet of the crops with their verdicts beside it (people_<label>.png).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render_set(code: Path, frames: int, work: Path, seed: int) -> Path:
    """Render + annotate one shard of the checkout `code` with its own default config; returns the COCO file."""
    coco = work / "coco.json"
    if coco.exists():
        return coco
    sys.path.insert(0, str(code))
    from pipeline.config import load_config

    cfg = load_config(code / "configs" / "default.yaml")
    sys.path.pop(0)
    render = dict(cfg["render"], shards=1, images_per_shard=frames)
    env = dict(os.environ, PYTHONPATH=str(code))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "blender.render", "--render-json", json.dumps(render), "--seed", str(seed),
                    "--shard", "0", "--out", str(work / "shard")], cwd=code, env=env, check=True)
    render_s = time.time() - t0
    subprocess.run([sys.executable, "-m", "pipeline", "annotate", str(work / "shard"), "--classes",
                    json.dumps(cfg["classes"]), "--min-visible-pixels", "30", "--image-prefix", "shard/",
                    "--out", str(coco)], cwd=code, env=env, check=True)
    (work / "render_s.txt").write_text(f"{render_s:.1f}\n")
    return coco


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose renderer draws the people")
    ap.add_argument("--label", required=True, help="name of this renderer in the results (mannequin, bodies)")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/people_bench"))
    ap.add_argument("--venv", type=Path, default=ROOT / ".people-venv", help="made by benchmarks/people_venv.sh")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "people.json")
    args = ap.parse_args(argv)
    work = args.work / args.label
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "code.txt"  # the commit that rendered, read before it does (a rerun of the pose step keeps it)
    if not (work / "coco.json").exists() or not stamp.exists():
        stamp.write_text(subprocess.run(["git", "-C", str(args.code), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip() + "\n")
    sha = stamp.read_text().strip()
    coco = render_set(args.code.resolve(), args.frames, work, args.seed)
    python = args.venv / "bin" / "python"
    if not python.exists():
        print(f"error: {python} not found: run `bash benchmarks/people_venv.sh` first", file=sys.stderr)
        return 1
    scored = work / "pose.json"
    subprocess.run([str(python), str(ROOT / "benchmarks" / "people_pose.py"), str(coco), "--out", str(scored),
                    "--sheet", str(args.out.parent / f"people_{args.label}.png")], check=True)
    result = json.loads(scored.read_text())
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    for key in ("recognised", "n", "jack_false_alarms", "jacks", "render_s_per_frame", "code", "by_frame", "frames"):
        merged.setdefault(key, {})
    merged["frames"][args.label] = args.frames
    merged["by_frame"][args.label] = result["by_frame"]
    for key in ("by_rig", "by_camera_processing", "by_company"):
        merged.setdefault(key, {})[args.label] = result[key]
    merged["recognised"][args.label] = result["recognised"]
    merged["n"][args.label] = result["n"]
    merged["jack_false_alarms"][args.label] = result["jack_false_alarms"]
    merged["jacks"][args.label] = result["jacks"]
    merged["render_s_per_frame"][args.label] = round(float((work / "render_s.txt").read_text()) / args.frames, 1)
    merged["code"][args.label] = sha
    merged["criteria"] = result["criteria"]
    merged["machine"] = f"{os.cpu_count()} CPU cores (render); BlazePose {result['model']}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(merged, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
