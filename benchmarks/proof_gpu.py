"""The site-adaptation experiment at GPU scale, on data rendered on a CPU machine (bpy needs
Python 3.11; the GPU machines run their own Python and torch and take at most 64 MiB per call).

  pack (here, after rendering both sites of the config):
      python benchmarks/proof_gpu.py pack --config configs/proof_cpu.yaml --data results/proof_gpu_data
      -> the PNGs the COCO files name, the COCO files and plan.json (classes, model, train, evaluate, proof)
  run (on the GPU machine, no Snakemake there: the same CLIs the Snakemake rules call):
      python3 benchmarks/proof_gpu.py run --data results/proof_gpu_data --out OUT
      -> OUT/site_a/{train,eval}, OUT/runs/<start>_n<N>_s<seed>/{train,eval} (continued_s<seed>: the control),
         OUT/site_a_model/eval,
         OUT/proof/{index.html,proof.json,ap_vs_n.png,ap_vs_iterations.png},
         OUT/diagnosis/<run>_{pred,oracle}.json (jack masks of each row's seed-0 model at the largest N:
         on its own detections, and its mask head on the ground-truth boxes)

GPU scale (flags): the site-A model trains --base-iterations at --base-batch, every site-B run
--iterations at --batch (same budget for every start and N), bf16 autocast; the site-B runs
train side by side (--parallel processes share the GPU: small images leave it mostly idle).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pack(config: Path, data: Path) -> None:
    from pipeline.config import load_config, merge

    cfg = load_config(config)
    run = REPO / "results" / cfg["name"]
    proof = cfg["proof"]
    if data.exists():
        shutil.rmtree(data)
    sites = {"site_a": (run, ["train", "val", "test"]),
             "site_b": (run / "proof" / "site_b", ["train", "val", "test"] + [f"n{n}" for n in proof["train_images"]])}
    total = 0
    for site, (root, splits) in sites.items():
        names = set()
        for split in splits:
            src = root / "dataset" / f"{split}.json"
            if not src.is_file():
                raise SystemExit(f"{src}: missing; render first: snakemake {root}/dataset/{splits[-1]}.json "
                                 f"--configfile {config} --cores all")
            dst = data / site / "dataset" / f"{split}.json"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            names |= {im["file_name"] for im in json.loads(src.read_text())["images"]}
        for name in sorted(names):
            dst = data / site / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(root / name, dst)
            total += dst.stat().st_size
    plan = {"config": str(config), "classes": cfg["classes"], "model": cfg["model"], "train": cfg["train"],
            "proof_train": merge(cfg["train"], proof["train"]), "evaluate": cfg["evaluate"],
            "proof": {k: v for k, v in proof.items() if k != "train"}}
    (data / "plan.json").write_text(json.dumps(plan, indent=1, sort_keys=True))
    print(f"{data}: {total / 2**20:.1f} MiB of images, plan.json")


def sh(cmd: list[str], log: Path) -> float:
    """Run a pipeline CLI, its output in `log`; raise naming the log when it fails."""
    t0 = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({res.returncode}): see {log}\n" + log.read_text()[-2000:])
    return time.time() - t0


def run_name(start: str, n: int, seed: int) -> str:
    """A run's folder, as workflow/rules/common.smk names it."""
    return f"continued_s{seed}" if start == "continued" else f"{start}_n{n}_s{seed}"


def cli(stage: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", stage, *args]


def train(data: Path, site: str, n_json: str, weights: Path, model: dict, train_cfg: dict, classes: list,
          out_dir: Path, log: Path, val_site: str | None = None, mix: tuple[str, str, float] | None = None) -> float:
    """One training run on `site`'s `n_json`, validated on `val_site`'s val split (default: the same site),
    with `mix` = (site, json, fraction) drawn in (a pooled run), as workflow/rules/proof.smk's proof_train."""
    val_site = val_site or site
    extra = ["--mix-json", str(data / mix[0] / "dataset" / mix[1]), "--mix-root", str(data / mix[0]),
             "--mix-fraction", str(mix[2])] if mix else []
    return sh(cli("train", "--train-json", str(data / site / "dataset" / n_json), "--image-root", str(data / site),
                  *extra, "--val-json", str(data / val_site / "dataset" / "val.json"), "--val-root", str(data / val_site),
                  "--weights-json", str(weights), "--classes", json.dumps(classes), "--model-cfg", json.dumps(model),
                  "--train-cfg", json.dumps(train_cfg), "--out-dir", str(out_dir)), log)


def evaluate(data: Path, site: str, ckpt: Path, model: dict, eval_cfg: dict, out_dir: Path, log: Path) -> float:
    return sh(cli("evaluate", "--checkpoint", str(ckpt), "--ann", str(data / site / "dataset" / "test.json"),
                  "--image-root", str(data / site), "--eval-cfg", json.dumps(eval_cfg),
                  "--model-cfg", json.dumps(model), "--out-dir", str(out_dir)), log)


def with_recipe(plan: dict, recipe: dict, base_iterations: int) -> tuple[dict, int]:
    """The plan with a recipe.json's model and train overrides merged into every run's sections, and the site-A
    run's iterations scaled by its schedule factor (searched for the site-A model from scratch; the site-B
    budget is the experiment's own, the same for every row)."""
    from pipeline.config import merge

    plan = {**plan, "model": merge(plan["model"], recipe["model"]), "train": merge(plan["train"], recipe["train"]),
            "proof_train": merge(plan["proof_train"], recipe["train"])}
    return plan, round(base_iterations * recipe.get("iterations_factor", 1.0))


def recipe_note(recipe: dict | None) -> str:
    """What the page says of the recipe, from the keys it sets."""
    if not recipe or not (recipe["model"] or recipe["train"] or recipe.get("iterations_factor", 1.0) != 1.0):
        return "; torchvision's default anchors, mask head and loss weights" + (
            f" (recipe '{recipe['chosen']}' chosen on site-A val by recipe_search.py)" if recipe else "")
    parts = [f"{k} {v}" for k, v in {**recipe["model"], **recipe["train"]}.items()]
    if recipe.get("iterations_factor", 1.0) != 1.0:
        parts.append(f"site-A iterations x {recipe['iterations_factor']}")
    anchors = " (anchors fitted to site-A boxes)" if "anchor_sizes" in recipe["model"] else ""
    return (f"; recipe '{recipe['chosen']}', chosen on site-A val by recipe_search.py and the same for every "
            f"row{anchors}: " + ", ".join(parts))


def diagnose(data: Path, out: Path, proof: dict, base: Path) -> dict[str, str]:
    """The jack masks of each row's seed-0 model at the largest N and of the site-A model, on site-B test: on
    their own detections and with oracle boxes. A side product: a model that is missing or fails is recorded
    and skipped."""
    top = max(proof["train_images"])
    test = data / "site_b" / "dataset" / "test.json"
    models = {"no_adaptation": (base, out / "site_a_model" / "eval")}
    for s in proof["starts"]:
        d = out / "runs" / run_name(s, top, proof["seeds"][0])
        models[d.name] = (d / "train" / "model_final.pth", d / "eval")
    status = {}
    for name, (ckpt, ev) in models.items():
        if not (ev / "predictions.json").is_file():
            status[name] = "no predictions (not run)"
            continue
        for kind, extra in (("pred", ["--pred", str(ev / "predictions.json")]),
                            ("oracle", ["--checkpoint", str(ckpt), "--image-root", str(data / "site_b"),
                                        "--oracle-boxes"])):
            try:
                sh(cli("mask-diagnosis", "--gt", str(test), *extra, "--out", str(out / "diagnosis" / f"{name}_{kind}.json")),
                   out / "logs" / f"diagnosis_{name}_{kind}.log")
                status[f"{name}_{kind}"] = "ok"
            except RuntimeError as exc:
                status[f"{name}_{kind}"] = f"failed: {str(exc).splitlines()[0]}"
    return status


def run(data: Path, out: Path, args: argparse.Namespace) -> None:
    from pipeline.proof import start_model

    plan = json.loads((data / "plan.json").read_text())
    classes, proof = plan["classes"], plan["proof"]
    recipe = json.loads(args.recipe.read_text()) if args.recipe else None
    if recipe:  # chosen on val by benchmarks/recipe_search.py, frozen: the same for every row
        plan, args.base_iterations = with_recipe(plan, recipe, args.base_iterations)
        print(f"recipe {recipe['chosen']}: model {recipe['model']}, train {recipe['train']}, site-A iterations "
              f"x {recipe['iterations_factor']} (searched at {recipe.get('searched_at')})", flush=True)
    gpu = {"device": args.device, "amp": True, "amp_dtype": "bfloat16", "workers": args.workers,
           "checkpoint_every": 10**6, "tensorboard": False}
    base_train = {**plan["train"], **gpu, "iterations": args.base_iterations, "batch_size": args.base_batch,
                  "lr": args.base_lr, "warmup_iters": min(200, args.base_iterations // 5), "eval_every": 0}
    site_train = {**plan["proof_train"], **gpu, "iterations": args.iterations, "batch_size": args.batch,
                  "lr": args.lr, "warmup_iters": min(100, args.iterations // 5), "eval_every": args.eval_every,
                  "eval_first": True, "workers": args.workers // 2}
    eval_cfg = {**plan["evaluate"], "batch_size": 16, "workers": 4}
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.time()
    sh(cli("weights", "--weights", "none", "--out", str(out / "weights_none.json")), out / "logs" / "weights_none.log")
    model_a = dict(plan["model"])
    times["site_a_train_s"] = train(data, "site_a", "train.json", out / "weights_none.json", model_a, base_train,
                                    classes, out / "site_a" / "train", out / "logs" / "site_a_train.log")
    base = out / "site_a" / "train" / "model_final.pth"
    print(f"site-A model: {times['site_a_train_s']:.0f} s", flush=True)
    sh(cli("weights", "--weights", str(base), "--out", str(out / "weights_site_a.json")), out / "logs" / "weights_site_a.log")

    def job(key: tuple[str, int] | str) -> tuple[str, float]:
        if key == "site_a_test":
            return key, evaluate(data, "site_a", base, model_a, eval_cfg, out / "site_a" / "eval", out / "logs" / "site_a_eval.log")
        if key == "no_adaptation":
            return key, evaluate(data, "site_b", base, model_a, eval_cfg, out / "site_a_model" / "eval",
                                 out / "logs" / "no_adaptation.log")
        start, n, seed = key
        name = run_name(start, n, seed)
        model = start_model(plan["model"], start, str(base))
        weights = out / ("weights_none.json" if start == "from_scratch" else "weights_site_a.json")
        run_dir = out / "runs" / name
        cfg = {**site_train, "seed": site_train["seed"] + seed}
        if start == "from_scratch" and (args.scratch_lr or proof.get("scratch_lr")):
            cfg["lr"] = args.scratch_lr or proof["scratch_lr"]
        if start == "continued":  # the control: the same budget again on site A's training images
            s = train(data, "site_a", "train.json", weights, model, cfg, classes, run_dir / "train",
                      out / "logs" / f"{name}_train.log", val_site="site_b")
        elif start == "pooled":
            s = train(data, "site_a", "train.json", weights, model, cfg, classes, run_dir / "train",
                      out / "logs" / f"{name}_train.log", val_site="site_b",
                      mix=("site_b", f"n{n}.json", proof["pooled_fraction"]))
        else:
            s = train(data, "site_b", f"n{n}.json", weights, model, cfg, classes, run_dir / "train",
                      out / "logs" / f"{name}_train.log")
        s += evaluate(data, "site_b", run_dir / "train" / "model_final.pth", model, eval_cfg, run_dir / "eval",
                      out / "logs" / f"{name}_eval.log")
        print(f"{name}: {s:.0f} s", flush=True)
        return f"{name}_s", s

    rows = sorted({(s, 0 if s == "continued" else n, seed) for s in proof["starts"] for n in proof["train_images"]
                   for seed in proof["seeds"]}, key=lambda k: (k[2], k[1], k[0]))  # every row's seed 0 first
    keys = ["site_a_test", "no_adaptation"] + rows
    with ThreadPoolExecutor(args.parallel) as pool:
        times.update(dict(pool.map(job, keys)))
    times["total_s"] = time.time() - t0
    precision = "bf16" if args.device.startswith("cuda") else f"{args.device}, fp32"  # autocast runs on CUDA only
    info = {"title": "hangar-synth: site adaptation at GPU scale (benchmarks/proof_gpu.py)", "classes": classes,
            "iterations": site_train["iterations"], "batch_size": site_train["batch_size"],
            "eval_every": site_train["eval_every"], "test_images": proof["test_images"], "val_images": proof["val_images"],
            "site_b_render": proof["site_b"],
            "seeds": proof["seeds"], "pooled_fraction": proof["pooled_fraction"], "recipe": recipe,
            "site_a_note": f"{plan['config']} render section; site-A model from scratch, {base_train['iterations']} "
                           f"iterations at batch {base_train['batch_size']} ({precision})" + recipe_note(recipe),
            "gpu": {"base_train": base_train, "site_train": site_train, "parallel": args.parallel, "times_s": times}}
    runs = []
    for s, n, seed in rows:
        if (out / "runs" / run_name(s, n, seed) / "eval" / "predictions.json").is_file():  # past the budget: left out
            runs += ["--run", s, str(n), str(seed), str(out / "runs" / run_name(s, n, seed))]
    sh(cli("proof-report", *runs, "--zero-shot", str(out / "site_a_model" / "eval" / "metrics.json"),
           "--site-a", str(out / "site_a" / "eval" / "metrics.json"), "--test-json",
           str(data / "site_b" / "dataset" / "test.json"), "--resamples", str(proof["bootstrap_resamples"]),
           "--info", json.dumps(info), "--out-dir", str(out / "proof")), out / "logs" / "report.log")
    if args.diagnose:  # after the page: the page is the result, the diagnosis a side product
        (out / "diagnosis").mkdir(parents=True, exist_ok=True)
        (out / "diagnosis" / "status.json").write_text(json.dumps(diagnose(data, out, proof, base), indent=1))
    print(json.dumps(times, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["pack", "run"])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "proof_cpu.yaml")
    ap.add_argument("--data", type=Path, default=REPO / "results" / "proof_gpu_data")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "proof_gpu")
    ap.add_argument("--base-iterations", type=int, default=1000)
    ap.add_argument("--base-batch", type=int, default=16)
    ap.add_argument("--base-lr", type=float, default=0.02)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--scratch-lr", type=float, help="lr of the from-scratch runs (default: proof.scratch_lr, else --lr)")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--device", default="cuda", help="cpu: a tiny rehearsal of the run here")
    ap.add_argument("--parallel", type=int, default=11, help="jobs side by side after the site-A model")
    ap.add_argument("--no-diagnose", dest="diagnose", action="store_false",
                    help="skip the jack-mask diagnosis (predictions and oracle boxes) of each row's seed-0 model")
    ap.add_argument("--recipe", type=Path, help="recipe.json of benchmarks/recipe_search.py: its model and train "
                                                 "overrides for every run, iterations scaled by its factor")
    args = ap.parse_args()
    if args.mode == "pack":
        pack(args.config, args.data)
    else:
        run(args.data, args.out, args)


if __name__ == "__main__":
    main()
