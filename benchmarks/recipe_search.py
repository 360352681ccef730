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
  combined   the adopted factors together (if two or more are adopted; see below)

Criterion: (segm AP + bbox AP) / 2 over all classes on val, the mean over seeds of each run's final checkpoint.
A factor is adopted only where its paired difference from the baseline has a 95 % two-level bootstrap interval
above 0 (`pipeline.proof.Scorer`: the val images drawn once per resample and shared by every variant, each
variant's seeds drawn with replacement, not paired by seed: conservative); "combined" joins the adopted factors
(anchors refitted at its input size) and must pass the same test; the chosen variant is the adopted one with the
highest mean, else the baseline. Its overrides go to recipe.json, which `benchmarks/proof_gpu.py run --recipe
recipe.json` applies to every row of the experiment (its schedule factor to the site-A run only). Runs whose val
metrics and oracle diagnosis exist already are read, not trained again (a call cut by a time budget goes on
where it stopped). Beside the criterion: jack mask AP and its difference, and each run's jack-mask diagnosis on val
with oracle boxes (the mask head alone: median mask IoU on the ground-truth boxes), and per mask resolution
the ceiling of a perfect head (`mask-diagnosis --ideal`). "combined" is chosen on the val images it was built
from: its val figures are optimistic; only the proof's test figures are evidence.

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
from pipeline.bootstrap import METRICS, _interval  # noqa: E402
from pipeline.config import merge  # noqa: E402
from pipeline.io import read_json  # noqa: E402
from pipeline.proof import Scorer  # noqa: E402

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
        out = merge(out, p)
    return out


def select(table: dict[str, dict[str, Any]], factors: list[str]) -> tuple[list[str], str]:
    """(adopted factors, chosen variant): a factor (or "combined") counts only where the lower bound of its
    paired difference from the baseline is above 0; the chosen one is the adopted variant with the highest
    criterion, else the baseline."""
    def passes(name: str) -> bool:
        lo = table.get(name, {}).get("criterion_minus_baseline", {}).get("lo")
        return lo is not None and lo > 0

    adopted = [f for f in factors if passes(f)]
    candidates = [n for n in (*adopted, "combined") if passes(n)]
    return adopted, max(candidates, key=lambda n: table[n]["criterion"]["value"]) if candidates else "baseline"


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
        m, t = merge(model, over["model"]), {**merge(train, over["train"]), "seed": train["seed"] + seed}
        if "iterations" in over["train"]:
            t["warmup_iters"] = min(200, t["iterations"] // 5)
        log = out / "logs" / f"{name}_s{seed}"
        ckpt = run_dir / "train" / "model_final.pth"
        done = [run_dir / "val" / "metrics.json", run_dir / "jack_oracle.json", ckpt]
        spec = {"model": m, "train": t, "train_json": str(train_json), "val_json": str(val_json)}
        done_before = all(p.is_file() for p in [*done, run_dir / "run.json"])
        if done_before and json.loads((run_dir / "run.json").read_text()) == spec:
            print(f"{name}_s{seed}: done before", flush=True)  # an earlier call's run, with the same settings
            return record(name, seed, run_dir, None)
        for p in done:  # anything of another run's settings goes
            p.unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps(spec))
        secs = sh(cli("train", "--train-json", str(train_json), "--image-root", str(root),
                      "--weights-json", str(out / "weights_none.json"), "--classes", json.dumps(plan["classes"]),
                      "--model-cfg", json.dumps(m), "--train-cfg", json.dumps(t), "--out-dir", str(run_dir / "train")),
                  log.with_suffix(".train.log"))
        secs += sh(cli("evaluate", "--checkpoint", str(ckpt), "--ann", str(val_json), "--image-root", str(root),
                       "--eval-cfg", json.dumps(eval_cfg), "--model-cfg", json.dumps(m), "--out-dir",
                       str(run_dir / "val")), log.with_suffix(".eval.log"))
        sh(cli("mask-diagnosis", "--gt", str(val_json), "--checkpoint", str(ckpt), "--image-root", str(root),
               "--oracle-boxes", "--device", args.device, "--out", str(run_dir / "jack_oracle.json")),
           log.with_suffix(".oracle.log"))
        print(f"{name}_s{seed}: {secs:.0f} s", flush=True)
        return record(name, seed, run_dir, secs)

    def record(name: str, seed: int, run_dir: Path, secs: float | None) -> dict[str, Any]:
        oracle = (json.loads((run_dir / "jack_oracle.json").read_text())["summary"] or [{}])[0]
        return {"variant": name, "seed": seed, "seconds": None if secs is None else round(secs, 1),
                **score(run_dir / "val" / "metrics.json"),
                "jack_oracle": {k: oracle.get(k) for k in ("n", "median_mask_iou", "share_mask_iou_50", "median_pred_fill",
                                                        "median_gt_fill", "median_max_prob")},
                "predictions": str(run_dir / "val" / "predictions.json")}

    variants = {"baseline": overrides("baseline", model, train, anchors, args)}
    variants.update({f: overrides(f, model, train, anchors, args) for f in args.factors})
    jobs = [(name, seed) for seed in args.seeds for name in variants]
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda k: run(k[0], variants[k[0]], k[1]), jobs))

    scorer = Scorer(read_json(val_json), args.resamples, seed=0)
    ap_i, jack = METRICS.index("AP"), scorer.names.index("pallet_jack") if "pallet_jack" in scorer.names else None

    def scored(name: str) -> dict[str, Any]:
        preds = [read_json(Path(r["predictions"])) for r in rows if r["variant"] == name]
        s = scorer.samples(preds)
        crit = ((s["segm"][0] + s["bbox"][0]) / 2)[ap_i, 0], ((s["segm"][1] + s["bbox"][1]) / 2)[:, ap_i, 0]
        jack_segm = (s["segm"][0][ap_i, jack], s["segm"][1][:, ap_i, jack]) if jack is not None else None
        return {"criterion": crit, "jack_segm": jack_segm}

    def summary(name: str, base: dict[str, Any] | None) -> dict[str, Any]:
        mine = samples[name]
        out = {"criterion": _interval(mine["criterion"][0], mine["criterion"][1], 0.95),
               "overrides": variants[name],
               "mean_segm_AP": round(sum(r["segm_AP"] for r in rows if r["variant"] == name) / len(args.seeds), 5),
               "mean_bbox_AP": round(sum(r["bbox_AP"] for r in rows if r["variant"] == name) / len(args.seeds), 5)}
        if mine["jack_segm"] is not None:
            out["jack_segm_AP"] = _interval(*mine["jack_segm"], 0.95)
        if base is not None:
            out["criterion_minus_baseline"] = _interval(mine["criterion"][0] - base["criterion"][0],
                                                        mine["criterion"][1] - base["criterion"][1], 0.95)
            if mine["jack_segm"] is not None:
                out["jack_segm_AP_minus_baseline"] = _interval(mine["jack_segm"][0] - base["jack_segm"][0],
                                                               mine["jack_segm"][1] - base["jack_segm"][1], 0.95)
        return out

    samples = {name: scored(name) for name in variants}
    table = {name: summary(name, None if name == "baseline" else samples["baseline"]) for name in variants}
    adopted, _ = select(table, args.factors)
    if len(adopted) >= 2:
        parts = [variants[f] for f in adopted]
        combined = combine(parts)
        if "anchors" in adopted and "upscale" in adopted:  # anchors fitted at the combined input size
            m = {**model, **combined["model"]}
            refit = fitted_anchors(train_json, m["min_size_px"], m["max_size_px"])
            combined["model"].update(anchor_sizes=refit["sizes"], anchor_aspect_ratios=refit["ratios"])
        variants["combined"] = combined
        with ThreadPoolExecutor(args.parallel) as pool:
            rows += list(pool.map(lambda s: run("combined", variants["combined"], s), args.seeds))
        samples["combined"] = scored("combined")
        table["combined"] = summary("combined", samples["baseline"])
    adopted, chosen = select(table, args.factors)
    chosen_over = json.loads(json.dumps(variants[chosen]))
    factor = chosen_over["train"].pop("iterations", train["iterations"]) / train["iterations"]
    recipe = {"chosen": chosen, **chosen_over, "iterations_factor": factor, "adopted_factors": adopted,
              "criterion": "(segm AP + bbox AP) / 2 on the val split of " + source + "; a factor (or combined) "
                           "adopted only where its two-level 95 % interval of the difference from the baseline is above 0",
              "searched_at": {"iterations": train["iterations"], "batch_size": train["batch_size"], "lr": train["lr"],
                              "input_px": [model["min_size_px"], model["max_size_px"]]}}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=1))
    ideal = {}
    for size in sorted({variants[n]["model"].get("mask_roi_size", model.get("mask_roi_size", 14)) for n in variants}):
        path = out / f"jack_ideal_{2 * size}.json"
        sh(cli("mask-diagnosis", "--gt", str(val_json), "--ideal", str(2 * size), "--out", str(path)),
           out / "logs" / f"ideal_{2 * size}.log")
        s = json.loads(path.read_text())
        if s["summary"]:
            ideal[f"{2 * size}x{2 * size}"] = {"median_mask_iou": s["summary"][0]["median_mask_iou"],
                                               "share_mask_iou_50": s["summary"][0]["share_mask_iou_50"],
                                               "segm_AP": s["ap_by_visibility"]["all"]["segm"]["AP"]}
    result = {"data": source, "device": args.device, "seeds": args.seeds,
              "train": train, "model": model, "anchors": anchors, "variants": table, "runs": rows,
              "chosen": chosen, "recipe": recipe, "jack_ideal_val": ideal, "total_s": round(time.time() - t0)}
    (out / "recipe_search.json").write_text(json.dumps(result, indent=1))
    fmt = (lambda iv: "n/a" if iv is None or iv["value"] is None else
           f"{iv['value']:+.4f} [{iv['lo']:+.4f}, {iv['hi']:+.4f}]" if iv["lo"] is not None else f"{iv['value']:+.4f}")
    for name, v in table.items():
        print(f"{name:10} criterion {fmt(v['criterion'])}  minus baseline {fmt(v.get('criterion_minus_baseline'))}  "
              f"jack mask AP {fmt(v.get('jack_segm_AP'))}")
    for r in rows:
        o = r["jack_oracle"]
        print(f"{r['variant']}_s{r['seed']}: jack masks on ground-truth boxes: median IoU {o['median_mask_iou']}, "
              f"IoU >= 0.5 {o['share_mask_iou_50']} (n={o['n']})")
    print(f"ideal (perfect head) on val jacks: {ideal}")
    print(f"adopted: {adopted or 'none'}; chosen: {chosen} -> {out / 'recipe.json'}")


if __name__ == "__main__":
    main()
