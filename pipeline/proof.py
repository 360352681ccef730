"""The site-adaptation experiment's page: site-B test AP per class against N for each start
(from the site-A model in feature_extraction / fine_tune mode, from scratch), AP over training
iterations, and the site-A model on site B with no adaptation. Writes index.html, proof.json
and the two plots into one folder (`snakemake proof`; benchmarks/proof_gpu.sh calls it too)."""
from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path
from typing import Any

from pipeline import plots
from pipeline.io import atomic_path, provenance, read_json, write_json

START_LABEL = {"feature_extraction": "site-A model, feature extraction", "fine_tune": "site-A model, fine-tune",
               "from_scratch": "from scratch"}
START_STYLE = {"feature_extraction": ("tab:blue", "o"), "fine_tune": ("tab:green", "s"),
               "from_scratch": ("tab:red", "^")}


def start_model(model: dict[str, Any], start: str, base: str) -> dict[str, Any]:
    """The `model` section of a site-B run: the site-A checkpoint `base` in the start's transfer
    mode, or no weights at all (from_scratch trains everything)."""
    if start == "from_scratch":
        return {**model, "weights": "none", "transfer": "full"}
    return {**model, "weights": base, "transfer": start}


def _ap(scores: dict[str, Any], iou: str, col: str) -> float:
    """AP of one IoU type over all classes (col "mean") or of one class; -1 where it has none."""
    return scores[iou]["AP"] if col == "mean" else scores[iou]["per_class"].get(col, -1)


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """AP, AP50 and per-class AP of both IoU types of an evaluate metrics.json."""
    return {t: {"AP": metrics[t]["AP"], "AP50": metrics[t]["AP50"], "per_class": dict(metrics[t]["per_class"])}
            for t in ("segm", "bbox")}


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


def collect(runs: list[tuple[str, int, Path, Path]], zero_shot: Path, site_a: Path | None,
            info: dict[str, Any]) -> dict[str, Any]:
    """proof.json: every run's site-B test scores and validation curve, the no-adaptation row,
    and for each N how many iterations each start needed to reach from-scratch's final val AP."""
    out: dict[str, Any] = {**info, "runs": [], "zero_shot": _scores(read_json(zero_shot))}
    if site_a is not None:
        out["site_a_test"] = _scores(read_json(site_a))
    for start, n, metrics, train_dir in runs:
        out["runs"].append({"start": start, "n": n, **_scores(read_json(metrics)),
                            "val_curve": _val_curve(train_dir), "train": _train_summary(train_dir)})
    machines = sorted({read_json(d / "provenance.json").get("device_name", "?") for *_, d in runs
                       if (d / "provenance.json").is_file()})
    out["machine"] = "; ".join(machines) or "unknown"
    out["runs"].sort(key=lambda r: (list(START_LABEL).index(r["start"]), r["n"]))
    time_to: dict[str, dict[str, Any]] = {}
    for n in sorted({r["n"] for r in out["runs"]}):
        scratch = next((r for r in out["runs"] if r["start"] == "from_scratch" and r["n"] == n), None)
        if scratch is None or not scratch["val_curve"]:
            continue
        target = scratch["val_curve"][-1]["segm_AP"]
        out.setdefault("time_to_scratch_final_val_segm_AP", {})[str(n)] = target
        if target <= 0:  # from scratch learned nothing measurable: every run "reaches" 0 at once
            continue
        for r in out["runs"]:
            if r["n"] == n and r["val_curve"]:
                hit = next((p["iteration"] for p in r["val_curve"] if p["segm_AP"] >= target), None)
                time_to.setdefault(r["start"], {})[str(n)] = hit
    out["iterations_to_reach_scratch"] = time_to
    return out


def ap_vs_n_plot(result: dict[str, Any], classes: list[str]) -> str:
    """Site-B test AP against N: one panel per IoU type and class (and the mean), one line per start."""
    plt = plots._plt()
    cols = ["mean"] + classes
    ns = sorted({r["n"] for r in result["runs"]})
    fig, axes = plt.subplots(2, len(cols), figsize=(3.6 * len(cols), 6.4), squeeze=False)
    for i, iou in enumerate(("segm", "bbox")):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            for start in START_LABEL:
                pts = [(r["n"], _ap(r, iou, col)) for r in result["runs"] if r["start"] == start]
                pts = [(n, ap) for n, ap in pts if ap >= 0]
                if pts:
                    color, marker = START_STYLE[start]
                    ax.plot(*zip(*pts), color=color, marker=marker, label=START_LABEL[start])
            zero = _ap(result["zero_shot"], iou, col)
            if zero >= 0:
                ax.axhline(zero, color="grey", ls="--", label="site-A model, no adaptation")
            ax.set_xscale("log")
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.minorticks_off()
            ax.set_xlabel("site-B training images N")
            ax.set_ylabel(f"{iou} AP (site-B test)")
            ax.set_title(f"{iou} AP, {col}")
            ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))  # AP of a few thousandths stays flat on the page
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return plots.png_b64(fig)


def ap_vs_iterations_plot(result: dict[str, Any]) -> str:
    """Site-B validation segm AP against training iteration for each start, one panel per N."""
    plt = plots._plt()
    ns = sorted({r["n"] for r in result["runs"] if r["val_curve"]})
    fig, axes = plt.subplots(1, max(1, len(ns)), figsize=(3.8 * max(1, len(ns)), 3.4), squeeze=False)
    for ax, n in zip(axes[0], ns):
        for r in result["runs"]:
            if r["n"] == n and r["val_curve"]:
                color, marker = START_STYLE[r["start"]]
                ax.plot([p["iteration"] for p in r["val_curve"]], [p["segm_AP"] for p in r["val_curve"]],
                        color=color, marker=marker, label=START_LABEL[r["start"]])
        ax.set_xlabel("training iteration")
        ax.set_ylabel("segm AP (site-B val)")
        ax.set_title(f"N = {n}")
        ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return plots.png_b64(fig)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or x < 0 else f"{x:.3f}"


def _table(result: dict[str, Any], iou: str, classes: list[str]) -> str:
    ns = sorted({r["n"] for r in result["runs"]})
    head = "".join(f"<th>N={n}</th>" for n in ns)
    rows = []
    for col in ["mean"] + classes:
        for start in START_LABEL:
            by_n = {r["n"]: r for r in result["runs"] if r["start"] == start}
            if not by_n:
                continue
            cells = "".join(f"<td>{_fmt(_ap(by_n[n], iou, col)) if n in by_n else ''}</td>" for n in ns)
            rows.append(f"<tr><td>{html.escape(col)}</td><td>{START_LABEL[start]}</td>{cells}</tr>")
        zero = _ap(result["zero_shot"], iou, col)
        rows.append(f"<tr><td>{html.escape(col)}</td><td>site-A model, no adaptation</td>"
                    f"<td colspan='{len(ns)}'>{_fmt(zero)}</td></tr>")
    return (f"<table><tr><th>class</th><th>start</th>{head}</tr>{''.join(rows)}</table>")


def build_page(result: dict[str, Any], classes: list[str], figures: dict[str, str]) -> str:
    b_keys = ", ".join(f"{k}: {json.dumps(v)}" for k, v in sorted(result.get("site_b_render", {}).items()))
    site_a = result.get("site_a_test")
    targets = sorted(result.get("time_to_scratch_final_val_segm_AP", {}).items(), key=lambda kv: int(kv[0]))
    reached = result["iterations_to_reach_scratch"]

    def cell(start: str, n: str, target: float) -> str:
        if target <= 0:
            return "n/a (scratch AP 0)"
        hit = reached.get(start, {}).get(n)
        return "not reached" if hit is None else str(hit)

    time_rows = "".join(f"<tr><td>{START_LABEL[s]}</td>" + "".join(f"<td>{cell(s, n, t)}</td>" for n, t in targets)
                        + "</tr>" for s in START_LABEL if any(r["start"] == s for r in result["runs"]))
    time_head = "".join(f"<th>N={n} (target {_fmt(t)})</th>" for n, t in targets)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(result['title'])}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}td:nth-child(-n+2){{text-align:left}}</style></head><body>
<h1>{html.escape(result['title'])}</h1>
<p>A model of site A adapted to site B with N site-B images, from each start, with the same budget
({result['iterations']} iterations, batch {result['batch_size']}), all scored on the same held-out
site-B test set ({result['test_images']} images, never used for training or selection). Machine: {html.escape(result['machine'])}.</p>
<p>Site A: {html.escape(result.get('site_a_note', 'the main config'))}; site-A model on its own test split:
segm AP {_fmt(site_a['segm']['AP']) if site_a else 'n/a'}, bbox AP {_fmt(site_a['bbox']['AP']) if site_a else 'n/a'}.<br>
Site B (render keys over site A's): {html.escape(b_keys)}</p>
<h2>Site-B test AP against N</h2><img src="data:image/png;base64,{figures['ap_vs_n']}">
<h3>mask (segm) AP</h3>{_table(result, 'segm', classes)}
<h3>box AP</h3>{_table(result, 'bbox', classes)}
<h2>AP over training (site-B validation images)</h2><img src="data:image/png;base64,{figures['ap_vs_iterations']}">
<p>Iterations each start needed to reach the final validation segm AP of the from-scratch run with the same N
(validation every {result.get('eval_every', '?')} iterations):</p>
<table><tr><th>start</th>{time_head}</tr>{time_rows}</table>
<p>{html.escape(result.get('note', ''))}</p>
</body></html>"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline proof-report", description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=4, action="append", required=True, metavar=("START", "N", "METRICS", "TRAIN_DIR"),
                    help="one site-B model: its start, N, eval metrics.json and training folder")
    ap.add_argument("--zero-shot", type=Path, required=True, help="metrics.json of the site-A model on the site-B test set")
    ap.add_argument("--site-a", type=Path, help="metrics.json of the site-A model on site A's own test split")
    ap.add_argument("--info", required=True, help="JSON: title, machine, classes, iterations, batch_size, test_images, "
                                                  "eval_every, site_b_render, site_a_note, note")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    info = json.loads(args.info)
    for start, *_ in args.run:
        if start not in START_LABEL:
            raise SystemExit(f"--run: unknown start {start!r} (one of {', '.join(START_LABEL)})")
    runs = [(start, int(n), Path(m), Path(d)) for start, n, m, d in args.run]
    result = collect(runs, args.zero_shot, args.site_a, info)
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
