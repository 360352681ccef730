"""The real-label efficiency curve: real-test AP against the number of real training frames N, trained
on real frames only and fine-tuned from the synthetic model, with mixed training as one more row.

What a site wants to know: how many real labels synthetic data saves. PeopleSansPeople reports it this way
(person AP on COCO with 641 real images: 13.8 from scratch, 42.6 after synthetic pre-training); here every
model is scored on the same held-out real test part, which no run trains or selects on.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path
from typing import Any

from pipeline import plots
from pipeline.io import atomic_path, provenance, read_json, write_json
from pipeline.proof import _train_summary, _val_curve


def _ap(scores: dict[str, Any], iou: str, col: str) -> float:
    """AP of one IoU type over all classes (col "mean") or of one class; -1 where it has none."""
    return scores[iou]["AP"] if col == "mean" else scores[iou]["per_class"].get(col, -1)


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """AP, AP50 and per-class AP of both IoU types of an evaluate metrics.json."""
    return {t: {"AP": metrics[t]["AP"], "AP50": metrics[t]["AP50"], "per_class": dict(metrics[t]["per_class"])}
            for t in ("segm", "bbox")}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or x < 0 else f"{x:.3f}"


KIND_LABEL = {"real_only": "real frames only", "syn2real": "synthetic, then real frames", "mixed": "synthetic + real mixed"}
KIND_STYLE = {"real_only": ("#d62728", "s"), "syn2real": ("#1f77b4", "o"), "mixed": ("#2ca02c", "D")}


def collect(runs: list[tuple[str, Path, Path, Path | None]], info: dict[str, Any]) -> dict[str, Any]:
    """real_curve.json: every run's real-test scores (N = images in its training file; 0 for the synthetic
    model as it is), validation curve and training summary, and the real frames each start needs to match
    real-only training."""
    out: dict[str, Any] = {**info, "runs": []}
    for kind, train_json, metrics, train_dir in runs:
        if kind not in KIND_LABEL:
            raise ValueError(f"--run: unknown kind {kind!r} (one of {', '.join(KIND_LABEL)})")
        n = len(read_json(train_json)["images"]) if train_json is not None else 0
        row = {"kind": kind, "n": n, **_scores(read_json(metrics))}
        if train_dir is not None:
            row.update(val_curve=_val_curve(train_dir), train=_train_summary(train_dir))
        out["runs"].append(row)
    out["runs"].sort(key=lambda r: (list(KIND_LABEL).index(r["kind"]), r["n"]))
    machines = sorted({read_json(d / "provenance.json").get("device_name", "?") for *_, d in runs
                       if d is not None and (d / "provenance.json").is_file()})
    out["machine"] = "; ".join(machines) or "unknown"
    out["frames_to_match_real_only"] = frames_to_match(out["runs"])
    return out


def frames_to_match(runs: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """For each IoU type and each real-only N where real only scored above 0: the fewest real frames with
    which synthetic -> real reaches real-only's mean AP at that N (None: not within the curve). Where real
    only scored 0 there is nothing to match (any model "reaches" it), so that N is left out."""
    out: dict[str, dict[str, int | None]] = {}
    for iou in ("segm", "bbox"):
        fine = sorted((r["n"], r[iou]["AP"]) for r in runs if r["kind"] == "syn2real")
        out[iou] = {str(r["n"]): next((n for n, ap in fine if ap >= r[iou]["AP"]), None)
                    for r in runs if r["kind"] == "real_only" and r[iou]["AP"] > 0}
    return out


def curve_plot(result: dict[str, Any], classes: list[str]) -> str:
    """Real-test AP against N: one panel per IoU type and class (and the mean), one line per way of training."""
    plt = plots._plt()
    cols = ["mean"] + classes
    ns = sorted({r["n"] for r in result["runs"]})
    fig, axes = plt.subplots(2, len(cols), figsize=(3.6 * len(cols), 6.4), squeeze=False)
    for i, iou in enumerate(("segm", "bbox")):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            for kind, label in KIND_LABEL.items():
                pts = [(r["n"], _ap(r, iou, col)) for r in result["runs"] if r["kind"] == kind]
                pts = [(n, ap) for n, ap in pts if ap >= 0]
                if pts:
                    color, marker = KIND_STYLE[kind]
                    ax.plot(*zip(*pts), color=color, marker=marker, ls="-" if len(pts) > 1 else "none", label=label)
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.set_xlabel("real training frames N")
            ax.set_ylabel(f"{iou} AP (real test)")
            ax.set_title(f"{iou} AP, {col}")
            ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return plots.png_b64(fig)


def _table(result: dict[str, Any], iou: str, classes: list[str]) -> str:
    ns = sorted({r["n"] for r in result["runs"]})
    head = "".join(f"<th>N={n}</th>" for n in ns)
    rows = []
    for col in ["mean"] + classes:
        for kind, label in KIND_LABEL.items():
            by_n = {r["n"]: r for r in result["runs"] if r["kind"] == kind}
            if by_n:
                cells = "".join(f"<td>{_fmt(_ap(by_n[n], iou, col)) if n in by_n else ''}</td>" for n in ns)
                rows.append(f"<tr><td>{html.escape(col)}</td><td>{label}</td>{cells}</tr>")
    return f"<table><tr><th>class</th><th>training</th>{head}</tr>{''.join(rows)}</table>"


def build_page(result: dict[str, Any], classes: list[str], figure: str) -> str:
    match = result["frames_to_match_real_only"]
    real_only_ns = sorted(r["n"] for r in result["runs"] if r["kind"] == "real_only")

    def cell(iou: str, n: int) -> str:
        if str(n) not in match.get(iou, {}):
            return "n/a: real only scored 0"
        m = match[iou][str(n)]
        return "not within the curve" if m is None else str(m)

    match_rows = "".join(f"<tr><td>{iou}</td><td>{n}</td><td>{cell(iou, n)}</td></tr>"
                         for iou in ("segm", "bbox") for n in real_only_ns)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(result['title'])}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}td:nth-child(-n+2){{text-align:left}}</style></head><body>
<h1>{html.escape(result['title'])}</h1>
<p>Real set <b>{html.escape(result['dataset'])}</b> cut by {html.escape(result['split_by'])} into
{result['parts']['train']} training, {result['parts']['val']} validation and {result['parts']['test']} test frames
(seed {result['seed']}). Every model below is scored on the same {result['parts']['test']} test frames, which no run
trains on or selects with. N counts real training frames: the first N of the shuffled training part (nested).</p>
<ul><li><b>real frames only</b>: the main model's start ({html.escape(result['real_only_start'])}) trained on N real frames;</li>
<li><b>synthetic, then real frames</b>: the synthetic model ({html.escape(result['synthetic_model'])}) fine-tuned on N real
frames (transfer {html.escape(result['transfer'])}); N = 0 is the synthetic model as it is;</li>
<li>both with the same budget: {result['iterations']} iterations, batch {result['batch_size']}, lr {result['lr']};</li>
<li><b>synthetic + real mixed</b>: trained like the main model ({result['mixed_iterations']} iterations) with
{100 * result['mix_fraction']:.0f} % of its samples drawn from all real training frames.</li></ul>
<p>Machine: {html.escape(result['machine'])}. Reference: PeopleSansPeople (person AP on COCO with 641 real images:
13.8 from scratch, 42.6 after synthetic pre-training). On a handful of frames these numbers are noisy: one
seed, no interval; read the direction, not the decimals.</p>
<h2>Real-test AP against N</h2><img src="data:image/png;base64,{figure}">
<h3>mask (segm) AP</h3>{_table(result, 'segm', classes)}
<h3>box AP</h3>{_table(result, 'bbox', classes)}
<h2>Real labels saved</h2>
<p>Fewest real frames with which synthetic -> real reaches the mean AP of real-only training at each N:</p>
<table><tr><th>AP</th><th>real only, N</th><th>synthetic -> real needs</th></tr>{match_rows}</table>
</body></html>"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline real-curve", description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=4, action="append", required=True, metavar=("KIND", "TRAIN_JSON", "METRICS", "TRAIN_DIR"),
                    help=f"one model: its kind ({', '.join(KIND_LABEL)}), its real training file (- for none: the "
                         "synthetic model as it is), its real-test metrics.json and its training folder (- for none)")
    ap.add_argument("--info", required=True, help="JSON: title, classes, dataset, split_by, seed, parts, transfer, "
                                                  "iterations, batch_size, lr, mixed_iterations, mix_fraction, "
                                                  "real_only_start, synthetic_model")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    info = json.loads(args.info)
    runs = [(kind, None if t == "-" else Path(t), Path(m), None if d == "-" else Path(d)) for kind, t, m, d in args.run]
    try:
        result = collect(runs, info)
    except ValueError as exc:
        ap.error(str(exc))
    result["provenance"] = provenance()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.out_dir / "real_curve.json", result)
    figure = curve_plot(result, info["classes"])
    with atomic_path(args.out_dir / "ap_vs_real_frames.png") as tmp:
        tmp.write_bytes(base64.b64decode(figure))
    with atomic_path(args.out_dir / "index.html") as tmp:
        tmp.write_text(build_page(result, info["classes"], figure))
    return 0
