"""The site-adaptation experiment's numbers: site-B test AP of every row (the continued-training
control, the site-A model adapted with N site-B images from each start, pooled, from scratch, and the
site-A model as it is) as the mean over training seeds with 95 % bootstrap intervals over the test
images, the paired differences from the control and from no adaptation, and validation curves from
iteration 0. Writes proof.json, index.html and two plots into one folder (`snakemake proof`;
benchmarks/proof_gpu.py calls it too). The page: pipeline/proof_page.py."""
from __future__ import annotations

import argparse
import base64
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import bootstrap, plots
from pipeline.io import atomic_path, provenance, read_json, write_json

START_LABEL = {"continued": "site-A model, continued on site A (control)",
               "feature_extraction": "site-A model, feature extraction", "fine_tune": "site-A model, fine-tune",
               "pooled": "site-A model, fine-tuned on site A + B pooled", "from_scratch": "from scratch"}
ADAPTED = ("feature_extraction", "fine_tune", "pooled", "from_scratch")
SITE_A_STARTS = ("feature_extraction", "fine_tune", "pooled")  # the adapted starts of issue #26's target


def start_model(model: dict[str, Any], start: str, base: str) -> dict[str, Any]:
    """The `model` section of a run: the site-A checkpoint `base` in the start's transfer mode (the
    continued-training control and the pooled run fine-tune it), or no weights at all (from_scratch
    trains everything)."""
    if start == "from_scratch":
        return {**model, "weights": "none", "transfer": "full"}
    return {**model, "weights": base, "transfer": "fine_tune" if start in ("continued", "pooled") else start}


def _val_curve(train_dir: Path) -> list[dict[str, float]]:
    path = train_dir / "val_metrics.csv"
    if not path.is_file():
        return []
    return [{"iteration": int(r["iteration"]), "segm_AP": float(r["segm_AP"]), "bbox_AP": float(r["bbox_AP"])}
            for r in plots.read_csv(path)]


def _train_summary(train_dir: Path) -> dict[str, Any]:
    rows = plots.read_csv(train_dir / "metrics.csv")
    ips = sorted(float(r["images_per_s"]) for r in rows if float(r["images_per_s"]) > 0)
    return {"iterations": int(rows[-1]["iteration"]) if rows else 0,
            "final_loss": float(rows[-1]["loss"]) if rows else None,
            "images_per_s": ips[len(ips) // 2] if ips else None}


def _mean_curve(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Validation AP per iteration, the mean over the seeds that reached it."""
    by_it: dict[int, list[dict[str, float]]] = {}
    for c in curves:
        for p in c:
            by_it.setdefault(p["iteration"], []).append(p)
    return [{"iteration": it, "segm_AP": float(np.mean([p["segm_AP"] for p in ps])),
             "bbox_AP": float(np.mean([p["bbox_AP"] for p in ps])), "seeds": len(ps)} for it, ps in sorted(by_it.items())]


def verdict(interval: dict[str, Any]) -> str:
    """What a difference's interval supports: above or below zero, or neither."""
    if interval["lo"] is None:
        return "n/a"
    return "above" if interval["lo"] > 0 else "below" if interval["hi"] < 0 else "not distinguishable"


class Scorer:
    """Seed-mean AP of prediction sets on one test set, at the full set and at shared bootstrap resamples."""

    def __init__(self, gt: dict[str, Any], resamples: int, seed: int, level: float = 0.95) -> None:
        self.gt, self.coco, self.level = gt, bootstrap.coco_gt(gt), level
        self.names = ["all"] + [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
        n = len(self.coco.getImgIds())
        self.weights = bootstrap.resample_weights(n, resamples, seed)  # the same images for every row: paired
        self.identity = np.ones(n)
        self.seed_rng = np.random.default_rng([seed, 1])  # the rows' seed draws (one stream, rows in a fixed order)

    def samples(self, predictions: list[list[dict[str, Any]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """iou type -> (point [metric, class], resamples [R, metric, class]) of the mean over `predictions` (one
        per training seed). Two levels: each resample draws the test images (the same draw for every row:
        differences are paired) and, independently per row, its seeds with replacement, so an interval spans
        how the training runs differ as well as the test images."""
        out = {}
        n_seeds = len(predictions)
        pick = self.seed_rng.integers(0, n_seeds, size=(len(self.weights), n_seeds))  # this row's seed draws
        for iou in bootstrap.IOU_TYPES:
            tables = [bootstrap.tables(self.gt, p, iou, self.coco) for p in predictions]
            with warnings.catch_warnings():  # a class no drawn seed's resample holds is NaN, without the warning
                warnings.simplefilter("ignore", RuntimeWarning)
                point = np.nanmean([t.scores(self.identity) for t in tables], axis=0)
                per_seed = np.stack([np.stack([t.scores(w) for w in self.weights]) for t in tables])  # [S, R, m, c]
                res = np.nanmean(per_seed[pick, np.arange(len(self.weights))[:, None]], axis=1)
            out[iou] = (point, res)
        return out

    def block(self, point: np.ndarray, res: np.ndarray) -> dict[str, Any]:
        return {m: {name: bootstrap._interval(point[i, j], res[:, i, j], self.level) for j, name in enumerate(self.names)}
                for i, m in enumerate(bootstrap.METRICS)}


def collect(runs: list[tuple[str, int, int, Path]], zero_shot: Path, site_a: Path | None, test_json: Path,
            info: dict[str, Any], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """proof.json: one row per (start, N) with its seeds' scores, the seed mean and its interval, the
    differences from the control and from no adaptation at the same resamples, and the mean val curve."""
    gt = read_json(test_json)
    scorer = Scorer(gt, resamples, seed)
    out: dict[str, Any] = {**info, "resamples": resamples, "interval": "95 % percentile bootstrap over test images "
                           "(the same draw for every row: differences are paired) and over each row's training seeds "
                           "(drawn with replacement, per row)", "rows": []}
    zero = scorer.samples([read_json(zero_shot.parent / "predictions.json")])
    out["no_adaptation"] = {iou: scorer.block(*zero[iou]) for iou in zero}
    if site_a is not None:
        m = read_json(site_a)
        out["site_a_test"] = {t: {"AP": m[t]["AP"], "AP50": m[t]["AP50"]} for t in bootstrap.IOU_TYPES}
    groups: dict[tuple[str, int], list[tuple[int, Path]]] = {}
    for start, n, s, run_dir in runs:
        groups.setdefault((start, n), []).append((s, run_dir))
    samples = {}
    for (start, n), members in sorted(groups.items(), key=lambda kv: (list(START_LABEL).index(kv[0][0]), kv[0][1])):
        members.sort()
        samples[(start, n)] = scorer.samples([read_json(d / "eval" / "predictions.json") for _, d in members])
        per_seed = []
        for s, d in members:
            m = read_json(d / "eval" / "metrics.json")
            per_seed.append({"seed": s, **{t: {"AP": m[t]["AP"], "AP50": m[t]["AP50"], "per_class": m[t]["per_class"]}
                                           for t in bootstrap.IOU_TYPES}, "train": _train_summary(d / "train")})
        jack = jack_by_visibility(gt, [read_json(d / "eval" / "predictions.json") for _, d in members])
        out["rows"].append({"start": start, "n": n, "seeds": [s for s, _ in members], "per_seed": per_seed,
                            "jack_by_visibility": jack,
                            **{iou: scorer.block(*samples[(start, n)][iou]) for iou in bootstrap.IOU_TYPES},
                            "val_curve": _mean_curve([_val_curve(d / "train") for _, d in members])})
    control = samples.get(("continued", 0))
    for row in out["rows"]:
        if row["start"] == "continued":
            continue
        mine = samples[(row["start"], row["n"])]
        for key, ref in (("vs_control", control), ("vs_no_adaptation", zero)):
            if ref is not None:
                row[key] = {iou: scorer.block(mine[iou][0] - ref[iou][0], mine[iou][1] - ref[iou][1])
                            for iou in bootstrap.IOU_TYPES}
    out["targets"] = targets(out)
    machines = sorted({read_json(d / "train" / "provenance.json").get("device_name", "?") for *_, d in runs
                       if (d / "train" / "provenance.json").is_file()})
    out["machine"] = "; ".join(machines) or "unknown"
    return out


def jack_by_visibility(gt: dict[str, Any], predictions: list[list[dict[str, Any]]],
                       category: str = "pallet_jack") -> dict[str, Any] | None:
    """Seed-mean mask and box AP of one class over all its test instances, its visible (>= 0.5 of it seen)
    and its occluded ones apart (the other bucket ignored: pipeline/mask_diagnosis.visibility_ap)."""
    from pipeline.mask_diagnosis import visibility_ap, visibility_of

    cat = next((c["id"] for c in gt["categories"] if c["name"] == category), None)
    if cat is None:
        return None
    known = any(visibility_of(a)[1] != "unknown" for a in gt["annotations"] if a["category_id"] == cat)
    per_seed = [visibility_ap(gt, p, cat, ("all", "visible", "occluded") if known else ("all",)) for p in predictions]
    out = {}
    for bucket, first in per_seed[0].items():
        out[bucket] = {"n": first["n"]}
        for iou in ("segm", "bbox"):
            vals = [r[bucket][iou]["AP"] for r in per_seed if r[bucket][iou]["AP"] is not None]
            out[bucket][iou] = round(float(np.mean(vals)), 4) if vals else None
    return out


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, as measured: jack mask AP >= 0.5 x jack box AP per row; at the largest N,
    each start from the site-A model above the control in box AP (paired difference above 0; and, a
    conservative check, the two rows' own intervals apart)."""
    ratio = []
    for row in result["rows"]:
        mask, box = row["segm"]["AP"].get("pallet_jack", {}), row["bbox"]["AP"].get("pallet_jack", {})
        if mask.get("value") is not None and box.get("value"):
            ratio.append({"start": row["start"], "n": row["n"], "mask_over_box": round(mask["value"] / box["value"], 3),
                          "met": mask["value"] >= 0.5 * box["value"]})
    top = max((r["n"] for r in result["rows"]), default=0)
    control = next((r for r in result["rows"] if r["start"] == "continued"), None)
    above = []
    for row in result["rows"]:
        if row["n"] == top and row["start"] in SITE_A_STARTS and "vs_control" in row and control is not None:
            d, a, c = row["vs_control"]["bbox"]["AP"]["all"], row["bbox"]["AP"]["all"], control["bbox"]["AP"]["all"]
            apart = None if a["lo"] is None or c["hi"] is None else a["lo"] > c["hi"]
            above.append({"start": row["start"], "n": top, "difference": d, "verdict": verdict(d), "intervals_apart": apart})
    return {"jack_mask_over_box": ratio, "box_ap_above_control_at_largest_n": above}


def main(argv: list[str] | None = None) -> int:
    from pipeline.proof_page import ap_vs_iterations_plot, ap_vs_n_plot, build_page

    ap = argparse.ArgumentParser(prog="python -m pipeline proof-report", description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=4, action="append", required=True, metavar=("START", "N", "SEED", "RUN_DIR"),
                    help="one model: its start, N (0 for the control), seed, and folder with train/ and eval/")
    ap.add_argument("--zero-shot", type=Path, required=True,
                    help="metrics.json of the site-A model on the site-B test set (predictions.json beside it)")
    ap.add_argument("--site-a", type=Path, help="metrics.json of the site-A model on site A's own test split")
    ap.add_argument("--test-json", type=Path, required=True, help="the site-B test set (bootstrap intervals)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--info", required=True, help="JSON: title, classes, iterations, batch_size, test_images, "
                                                  "eval_every, seeds, site_b_render, site_a_note, note")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    info = json.loads(args.info)
    runs = []
    for start, n, seed, d in args.run:
        if start not in START_LABEL:
            raise SystemExit(f"--run: unknown start {start!r} (one of {', '.join(START_LABEL)})")
        runs.append((start, int(n), int(seed), Path(d)))
    result = collect(runs, args.zero_shot, args.site_a, args.test_json, info, args.resamples)
    result["provenance"] = provenance()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.out_dir / "proof.json", result)
    figures = {"ap_vs_n": ap_vs_n_plot(result, info["classes"]), "ap_vs_iterations": ap_vs_iterations_plot(result)}
    for name, b64 in figures.items():
        with atomic_path(args.out_dir / f"{name}.png") as tmp:
            tmp.write_bytes(base64.b64decode(b64))
    with atomic_path(args.out_dir / "index.html") as tmp:
        tmp.write_text(build_page(result, info["classes"], figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
