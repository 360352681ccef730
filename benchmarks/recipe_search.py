"""The small-object recipe (issue #26), chosen on validation images and then frozen for the proof.

Every variant is torchvision's Mask R-CNN R50-FPN with configuration changed one factor at a time against the
plan's model and training (`baseline`), the site-A model's set-up: trained from scratch on site A's training
images, scored on site A's **val** split (never test). Factors:

  mask56     model.mask_roi_size 28: a 56x56 mask head instead of 28x28 (thin tines and tillers)
  anchors    model.anchor_sizes / anchor_aspect_ratios fitted to the training boxes (`python -m pipeline anchors`,
             after the model's resize; the candidate that covers the worse class best at IoU 0.7)
  upscale    model.min_size_px / max_size_px x --upscale: the frames enlarged inside the model (stride-4
             features on 1-2 px parts)
  mask_loss  train.loss_weights.loss_mask --mask-loss-weight
  longer     train.iterations x 2 (schedule length)
  combined   every factor whose seed-mean val score beats the baseline's, together (if two or more do)

Score of a run: (segm AP + bbox AP) / 2 over all classes on val, from COCOeval of its final checkpoint; the
variant with the highest mean over seeds is chosen, and its overrides are written to recipe.json, which
`benchmarks/proof_gpu.py run --recipe recipe.json` then applies to every row of the experiment unchanged.
Each run also gets the jack-mask diagnosis on val with oracle boxes (the mask head alone: median mask IoU
on the ground-truth boxes) and, per mask resolution, the ceiling of a perfect head (`mask-diagnosis --ideal`).
Paired differences from the baseline (same seed, same val images) come with 95 % bootstrap intervals
(`python -m pipeline bootstrap`): a difference whose interval holds 0 is not told apart from noise.

    python benchmarks/recipe_search.py --data results/proof_gpu_data --out results/recipe_search [--device cuda]
    -> OUT/recipe_search.json (the table and what was chosen), OUT/recipe.json, OUT/runs/<variant>_s<seed>/...

The data folder is `proof_gpu.py pack`'s (site_a/dataset/{train,val}.json and its images, plan.json); at CPU
scale here, `--config configs/proof_cpu.yaml --device cpu` reads the rendered results/proof_cpu/dataset instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.proof_gpu import cli, sh  # noqa: E402

FACTORS = ("mask56", "anchors", "upscale", "mask_loss", "longer")


def fitted_anchors(train_json: Path, min_size: int, max_size: int) -> dict[str, Any]:
    from pipeline.anchors import analyse
    from pipeline.io import read_json

    result = analyse(read_json(train_json), min_size, max_size, n_ratios=(3, 4, 5))
    fitted = result["fitted"]
    return {"sizes": [s[0] for s in fitted["sizes"]], "ratios": list(fitted["ratios"][0]),
            "coverage": fitted["coverage"], "default_coverage": result["default"]["coverage"],
            "boxes": result["boxes"]}


def overrides(factor: str, model: dict, train: dict, anchors: dict, args: argparse.Namespace) -> dict[str, dict]:
    """{"model": {...}, "train": {...}}: what `factor` changes against the plan."""
    if factor == "baseline":
        return {"model": {}, "train": {}}
    if factor == "mask56":
        return {"model": {"mask_roi_size": 28}, "train": {}}
    if factor == "anchors":
        return {"model": {"anchor_sizes": anchors["sizes"], "anchor_aspect_ratios": anchors["ratios"]}, "train": {}}
    if factor == "upscale":
        return {"model": {"min_size_px": round(model["min_size_px"] * args.upscale),
                          "max_size_px": round(model["max_size_px"] * args.upscale)}, "train": {}}
    if factor == "mask_loss":
        return {"model": {}, "train": {"loss_weights": {"loss_mask": args.mask_loss_weight}}}
    if factor == "longer":
        return {"model": {}, "train": {"iterations": 2 * train["iterations"]}}
    raise ValueError(factor)


def combine(parts: list[dict[str, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {"model": {}, "train": {}}
    for p in parts:
        for section in out:
            out[section].update(p[section])
    return out


def score(metrics_json: Path) -> dict[str, Any]:
    m = json.loads(metrics_json.read_text())
    return {"segm_AP": m["segm"]["AP"], "bbox_AP": m["bbox"]["AP"], "score": (m["segm"]["AP"] + m["bbox"]["AP"]) / 2,
            "per_class": {t: m[t]["per_class"] for t in ("segm", "bbox")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO / "results" / "proof_gpu_data",
                    help="proof_gpu.py pack's folder (on a GPU machine)")
    ap.add_argument("--config", type=Path, help="instead of --data: a config whose dataset was rendered here "
                                                "(results/<name>/dataset/{train,val}.json)")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "recipe_search")
    ap.add_argument("--site", default="site_a", help="the packed site whose train/val splits are used")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--factors", nargs="+", default=list(FACTORS), choices=FACTORS)
    ap.add_argument("--upscale", type=float, default=2.0)
    ap.add_argument("--mask-loss-weight", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--device", default="cuda", help="cpu: the search at CPU scale here")
    ap.add_argument("--parallel", type=int, default=6, help="runs side by side (they share the device)")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()

    if args.config:
        from pipeline.config import load_config

        cfg = load_config(args.config)
        plan = {k: cfg[k] for k in ("classes", "model", "train", "evaluate")}
        root = REPO / "results" / cfg["name"]
        source = str(args.config)
    else:
        plan = json.loads((args.data / "plan.json").read_text())
        root = args.data / args.site
        source = f"{args.data} ({args.site})"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model = dict(plan["model"], weights="none")
    amp = {"amp": True, "amp_dtype": "bfloat16"} if args.device.startswith("cuda") else {"amp": False}
    train = {**plan["train"], **amp, "device": args.device, "workers": args.workers, "checkpoint_every": 10**6,
             "tensorboard": False, "iterations": args.iterations, "batch_size": args.batch, "lr": args.lr,
             "warmup_iters": min(200, args.iterations // 5), "eval_every": 0}
    eval_cfg = {**plan["evaluate"], "batch_size": 8, "workers": min(args.workers, 4)}
    train_json, val_json = root / "dataset" / "train.json", root / "dataset" / "val.json"
    t0 = time.time()
    anchors = fitted_anchors(train_json, model["min_size_px"], model["max_size_px"])
    print(f"fitted anchors: sizes {anchors['sizes']}, ratios {anchors['ratios']}", flush=True)
    sh(cli("weights", "--weights", "none", "--out", str(out / "weights_none.json")), out / "logs" / "weights.log")

    def run(name: str, over: dict[str, dict], seed: int) -> dict[str, Any]:
        run_dir = out / "runs" / f"{name}_s{seed}"
        m, t = {**model, **over["model"]}, {**train, **over["train"], "seed": train["seed"] + seed}
        if "iterations" in over["train"]:
            t["warmup_iters"] = min(200, t["iterations"] // 5)
        log = out / "logs" / f"{name}_s{seed}"
        secs = sh(cli("train", "--train-json", str(train_json), "--image-root", str(root),
                      "--weights-json", str(out / "weights_none.json"), "--classes", json.dumps(plan["classes"]),
                      "--model-cfg", json.dumps(m), "--train-cfg", json.dumps(t), "--out-dir", str(run_dir / "train")),
                  log.with_suffix(".train.log"))
        ckpt = run_dir / "train" / "model_final.pth"
        secs += sh(cli("evaluate", "--checkpoint", str(ckpt), "--ann", str(val_json), "--image-root", str(root),
                       "--eval-cfg", json.dumps(eval_cfg), "--model-cfg", json.dumps(m), "--out-dir",
                       str(run_dir / "val")), log.with_suffix(".eval.log"))
        sh(cli("mask-diagnosis", "--gt", str(val_json), "--checkpoint", str(ckpt), "--image-root", str(root),
               "--oracle-boxes", "--out", str(run_dir / "jack_oracle.json")), log.with_suffix(".oracle.log"))
        oracle = json.loads((run_dir / "jack_oracle.json").read_text())["summary"][0]
        print(f"{name}_s{seed}: {secs:.0f} s", flush=True)
        return {"variant": name, "seed": seed, "seconds": round(secs, 1), **score(run_dir / "val" / "metrics.json"),
                "jack_oracle": {k: oracle[k] for k in ("n", "median_mask_iou", "share_mask_iou_50", "median_pred_fill",
                                                        "median_gt_fill", "median_max_prob")},
                "predictions": str(run_dir / "val" / "predictions.json")}

    variants = {"baseline": overrides("baseline", model, train, anchors, args)}
    variants.update({f: overrides(f, model, train, anchors, args) for f in args.factors})
    jobs = [(name, seed) for seed in args.seeds for name in variants]
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda k: run(k[0], variants[k[0]], k[1]), jobs))

    def mean_score(name: str) -> float:
        return sum(r["score"] for r in rows if r["variant"] == name) / len(args.seeds)

    better = [f for f in args.factors if mean_score(f) > mean_score("baseline")]
    if len(better) >= 2:
        variants["combined"] = combine([variants[f] for f in better])
        with ThreadPoolExecutor(args.parallel) as pool:
            rows += list(pool.map(lambda s: run("combined", variants["combined"], s), args.seeds))
    for r in rows:  # paired with the baseline's run of the same seed, on the same val images
        if r["variant"] != "baseline":
            base = next(b for b in rows if b["variant"] == "baseline" and b["seed"] == r["seed"])
            boot = out / "runs" / f"{r['variant']}_s{r['seed']}" / "vs_baseline.json"
            sh(cli("bootstrap", "--gt", str(val_json), "--pred", r["predictions"], "--pred-b", base["predictions"],
                   "--resamples", str(args.resamples), "--out", str(boot)), out / "logs" / f"{boot.parent.name}.boot.log")
            diff = json.loads(boot.read_text())["difference"]
            r["vs_baseline"] = {f"{t}_AP": {k: diff[t]["AP"][k] for k in ("all", "pallet_jack") if k in diff[t]["AP"]}
                                for t in ("segm", "bbox")}
    table = {name: {"mean_score": round(mean_score(name), 5),
                    "mean_segm_AP": round(sum(r["segm_AP"] for r in rows if r["variant"] == name) / len(args.seeds), 5),
                    "mean_bbox_AP": round(sum(r["bbox_AP"] for r in rows if r["variant"] == name) / len(args.seeds), 5),
                    "overrides": variants[name]} for name in variants}
    chosen = max(table, key=lambda n: table[n]["mean_score"])
    chosen_over = json.loads(json.dumps(variants[chosen]))
    factor = chosen_over["train"].pop("iterations", train["iterations"]) / train["iterations"]
    recipe = {"chosen": chosen, **chosen_over, "iterations_factor": factor,
              "criterion": "highest mean over seeds of (segm AP + bbox AP) / 2 on the val split of " + source,
              "searched_at": {"iterations": train["iterations"], "batch_size": train["batch_size"], "lr": train["lr"]}}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=1))
    ideal = {}
    for size in sorted({variants[n]["model"].get("mask_roi_size", model.get("mask_roi_size", 14)) for n in variants}):
        path = out / f"jack_ideal_{2 * size}.json"
        sh(cli("mask-diagnosis", "--gt", str(val_json), "--ideal", str(2 * size), "--out", str(path)),
           out / "logs" / f"ideal_{2 * size}.log")
        s = json.loads(path.read_text())
        ideal[f"{2 * size}x{2 * size}"] = {"median_mask_iou": s["summary"][0]["median_mask_iou"],
                                           "segm_AP": s["ap_by_visibility"]["all"]["segm"]["AP"]}
    result = {"data": source, "device": args.device, "seeds": args.seeds,
              "train": train, "model": model, "anchors": anchors, "variants": table, "runs": rows,
              "chosen": chosen, "recipe": recipe, "jack_ideal_val": ideal, "total_s": round(time.time() - t0)}
    (out / "recipe_search.json").write_text(json.dumps(result, indent=1))
    for name, v in table.items():
        print(f"{name:10} score {v['mean_score']:.4f}  segm {v['mean_segm_AP']:.4f}  bbox {v['mean_bbox_AP']:.4f}")
    print(f"chosen: {chosen} -> {out / 'recipe.json'}")


if __name__ == "__main__":
    main()
