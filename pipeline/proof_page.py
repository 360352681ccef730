"""The site-adaptation experiment's page and plots, from proof.json (pipeline/proof.py): AP against N
with intervals, the differences each row's intervals support, AP over iterations from iteration 0."""
from __future__ import annotations

import html
import json
from typing import Any

from pipeline import plots
from pipeline.proof import ADAPTED, START_LABEL, verdict

START_STYLE = {"continued": ("black", "x"), "feature_extraction": ("tab:blue", "o"), "fine_tune": ("tab:green", "s"),
               "pooled": ("tab:purple", "D"), "from_scratch": ("tab:red", "^")}
IOU_NAME = {"segm": "mask AP", "bbox": "box AP"}


def _cell(iv: dict[str, Any] | None, signed: bool = False) -> str:
    if not iv or iv.get("value") is None:
        return "n/a"
    f = "{:+.4f}" if signed else "{:.3f}"  # a difference's bound near 0 keeps the digit its verdict reads
    return (f.format(iv["value"]) + (f" [{f.format(iv['lo'])}, {f.format(iv['hi'])}]" if iv["lo"] is not None else ""))


def ap_vs_n_plot(result: dict[str, Any], classes: list[str]) -> str:
    """Site-B test AP (seed mean, 95 % interval) against N: a panel per IoU type and class; the control and
    no adaptation as bands."""
    plt = plots._plt()
    cols = ["all"] + classes
    ns = sorted({r["n"] for r in result["rows"] if r["n"] > 0})
    fig, axes = plt.subplots(2, len(cols), figsize=(3.8 * len(cols), 6.6), squeeze=False)
    for i, iou in enumerate(("segm", "bbox")):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            for start in ADAPTED:
                pts = [(r["n"], r[iou]["AP"][col]) for r in result["rows"] if r["start"] == start]
                pts = [(n, iv) for n, iv in pts if iv["value"] is not None]
                if pts:
                    color, marker = START_STYLE[start]
                    x = [n * (1 + 0.04 * (ADAPTED.index(start) - 1.5)) for n, _ in pts]  # side by side
                    y = [iv["value"] for _, iv in pts]
                    err = [[iv["value"] - (iv["lo"] if iv["lo"] is not None else iv["value"]) for _, iv in pts],
                           [(iv["hi"] if iv["hi"] is not None else iv["value"]) - iv["value"] for _, iv in pts]]
                    ax.errorbar(x, y, yerr=err, color=color, marker=marker, capsize=3, label=START_LABEL[start])
            bands = [(result["no_adaptation"][iou]["AP"][col], "grey", "site-A model, no adaptation")]
            control = next((r for r in result["rows"] if r["start"] == "continued"), None)
            if control is not None:
                bands.append((control[iou]["AP"][col], "black", START_LABEL["continued"]))
            for iv, color, label in bands:
                if iv["value"] is not None:
                    ax.axhline(iv["value"], color=color, ls="--", label=label)
                    if iv["lo"] is not None:
                        ax.axhspan(iv["lo"], iv["hi"], color=color, alpha=0.12)
            if ns:
                ax.set_xscale("log")
                ax.set_xticks(ns, [str(n) for n in ns])
                ax.minorticks_off()
                ax.set_xlim(min(ns) / 1.6, max(ns) * 1.6)  # the starts' small side-by-side offsets stay small
            ax.set_xlabel("site-B training images N")
            ax.set_ylabel(f"{IOU_NAME[iou]} (site-B test)")
            ax.set_title(f"{IOU_NAME[iou]}, {col}")
            ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.tight_layout()
    return plots.png_b64(fig)


def ap_vs_iterations_plot(result: dict[str, Any]) -> str:
    """Site-B validation segm AP (seed mean) against iteration, from the starting weights (iteration 0)
    on: one panel per N, the control on each."""
    plt = plots._plt()
    ns = sorted({r["n"] for r in result["rows"] if r["n"] > 0 and r["val_curve"]})
    control = next((r for r in result["rows"] if r["start"] == "continued" and r["val_curve"]), None)
    fig, axes = plt.subplots(1, max(1, len(ns)), figsize=(3.9 * max(1, len(ns)), 3.5), squeeze=False)
    for ax, n in zip(axes[0], ns):
        for r in result["rows"]:
            if (r["n"] == n or r is control) and r["val_curve"]:
                color, marker = START_STYLE[r["start"]]
                ax.plot([p["iteration"] for p in r["val_curve"]], [p["segm_AP"] for p in r["val_curve"]],
                        color=color, marker=marker, ms=3, label=START_LABEL[r["start"]])
        ax.set_xlabel("training iteration (0: the starting weights)")
        ax.set_ylabel("segm AP (site-B val, seed mean)")
        ax.set_title(f"N = {n}")
        ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return plots.png_b64(fig)


def _with_seeds(row: dict[str, Any], iou: str, col: str) -> str:
    """The seed mean, its interval, and each seed's own AP on the whole test set (COCOeval's)."""
    own = [s[iou]["AP"] if col == "all" else s[iou]["per_class"].get(col) for s in row["per_seed"]]
    spread = ", ".join("n/a" if v is None or v < 0 else f"{v:.3f}" for v in own)
    return f"{_cell(row[iou]['AP'][col])}<br><small>seeds: {spread}</small>"


def _ap_table(result: dict[str, Any], iou: str, classes: list[str]) -> str:
    ns = sorted({r["n"] for r in result["rows"] if r["n"] > 0})
    head = "".join(f"<th>N={n}</th>" for n in ns)
    rows = []
    for col in ["all"] + classes:
        for start in START_LABEL:
            by_n = {r["n"]: r for r in result["rows"] if r["start"] == start}
            if not by_n:
                continue
            if start == "continued":
                cells = f"<td colspan='{len(ns)}'>{_with_seeds(by_n[0], iou, col)}</td>"
            else:
                cells = "".join(f"<td>{_with_seeds(by_n[n], iou, col) if n in by_n else ''}</td>" for n in ns)
            rows.append(f"<tr><td>{html.escape(col)}</td><td>{START_LABEL[start]}</td>{cells}</tr>")
        rows.append(f"<tr><td>{html.escape(col)}</td><td>site-A model, no adaptation</td><td colspan='{len(ns)}'>"
                    f"{_cell(result['no_adaptation'][iou]['AP'][col])}</td></tr>")
    return f"<table><tr><th>class</th><th>row</th>{head}</tr>{''.join(rows)}</table>"


def _support_table(result: dict[str, Any], classes: list[str]) -> str:
    """Every adapted row's difference from the control and from no adaptation, and what its interval supports."""
    rows = []
    for r in result["rows"]:
        if "vs_control" not in r and "vs_no_adaptation" not in r:
            continue
        for iou in ("bbox", "segm"):
            for col in ["all"] + classes:
                cells = ""
                for key in ("vs_control", "vs_no_adaptation"):
                    iv = r.get(key, {}).get(iou, {}).get("AP", {}).get(col)
                    cells += f"<td>{_cell(iv, signed=True)}</td><td>{verdict(iv) if iv else 'n/a'}</td>"
                rows.append(f"<tr><td>{START_LABEL[r['start']]}</td><td>{r['n']}</td><td>{IOU_NAME[iou]}</td>"
                            f"<td>{html.escape(col)}</td>{cells}</tr>")
    return ("<table><tr><th>row</th><th>N</th><th>metric</th><th>class</th><th>minus control [95 %]</th>"
            "<th>supports</th><th>minus no adaptation [95 %]</th><th>supports</th></tr>" + "".join(rows) + "</table>")


def _targets(result: dict[str, Any]) -> str:
    t = result["targets"]
    where = (lambda x: START_LABEL[x["start"]] + ("" if x["start"] == "continued" else f", N={x['n']}"))
    ratio = "".join(f"<li>{where(x)}: jack mask AP / box AP = {x['mask_over_box']:.2f} "
                    f"({'met' if x['met'] else 'not met'})</li>"
                    for x in t["jack_mask_over_box"]) or "<li>no row has a jack box AP above 0</li>"
    above = "".join(f"<li>{START_LABEL[x['start']]}, N={x['n']}: box AP minus control {_cell(x['difference'], True)}: "
                    f"{x['verdict']}; the rows' own intervals "
                    f"{'n/a' if x['intervals_apart'] is None else 'apart' if x['intervals_apart'] else 'overlap'}"
                    " (a conservative check: the rows are correlated)</li>"
                    for x in t["box_ap_above_control_at_largest_n"]) or "<li>no control row</li>"
    return f"<ul>{ratio}</ul><p>At the largest N:</p><ul>{above}</ul>"


def _jack_visibility_table(result: dict[str, Any]) -> str:
    """Seed-mean jack AP over all, visible (>= 0.5 seen) and occluded test jacks, per row."""
    rows = []
    for r in result["rows"]:
        j = r.get("jack_by_visibility")
        if not j:
            continue
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
        cells = "".join(f"<td>{fmt(j[b]['segm'])} / {fmt(j[b]['bbox'])}</td>"
                        for b in ("all", "visible", "occluded") if b in j)
        rows.append(f"<tr><td>{START_LABEL[r['start']]}</td><td>{r['n'] or ''}</td>{cells}</tr>")
    if not rows:
        return "<p>No visibility in the test set.</p>"
    n = next(r["jack_by_visibility"] for r in result["rows"] if r.get("jack_by_visibility"))
    head = "".join(f"<th>{b} (n={n[b]['n']})</th>" for b in ("all", "visible", "occluded") if b in n)
    return f"<table><tr><th>row</th><th>N</th>{head}</tr>{''.join(rows)}</table>"


def build_page(result: dict[str, Any], classes: list[str], figures: dict[str, str]) -> str:
    b_keys = ", ".join(f"{k}: {json.dumps(v)}" for k, v in sorted(result.get("site_b_render", {}).items()))
    site_a = result.get("site_a_test")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(result['title'])}</title>
<style>body{{font-family:sans-serif;max-width:1250px;margin:auto}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}td:nth-child(-n+2){{text-align:left}}</style></head><body>
<h1>{html.escape(result['title'])}</h1>
<p>Every row trains with the same budget ({result['iterations']} iterations, batch {result['batch_size']}) once per
seed ({', '.join(map(str, result.get('seeds', [])))}) and is scored on the same held-out site-B test set
({result['test_images']} images, never used for training or selection). The <b>control</b> is the site-A model
trained the same budget again on site A's training images (fine-tune mode): an adapted row above it gains from
site B, not from training longer (feature extraction, which trains the heads only, differs from it in the
transfer mode too). Values are the mean over seeds (each seed's own AP beneath); brackets are
{html.escape(result['interval'])}, {result['resamples']} resamples. A difference is called above or below only
where its interval excludes 0; the table below makes many such calls at 95 % each, so about one in twenty
would be called where nothing differs: the pre-set target is box AP over all classes at the largest N.
Machine: {html.escape(result['machine'])}.</p>
<p>Site A: {html.escape(result.get('site_a_note', 'the main config'))}; site-A model on its own test split:
mask AP {f"{site_a['segm']['AP']:.3f}" if site_a else 'n/a'}, box AP {f"{site_a['bbox']['AP']:.3f}" if site_a else 'n/a'}.<br>
Site B (render keys over site A's): {html.escape(b_keys)}. Pooled rows draw {result.get('pooled_fraction', '?')}
of their samples from the N site-B images.</p>
<h2>What the intervals support</h2>{_support_table(result, classes)}
<h2>Targets</h2>{_targets(result)}
<h3>Pallet-jack mask / box AP by visibility (seed means)</h3>{_jack_visibility_table(result)}
<h2>Site-B test AP against N</h2><img src="data:image/png;base64,{figures['ap_vs_n']}">
<h3>mask AP</h3>{_ap_table(result, 'segm', classes)}
<h3>box AP</h3>{_ap_table(result, 'bbox', classes)}
<h2>AP over training (site-B validation images)</h2><img src="data:image/png;base64,{figures['ap_vs_iterations']}">
<p>Iteration 0 is each row's starting weights: a row that starts above another has a head start, not a faster
adaptation. Validation every {result.get('eval_every', '?')} iterations.</p>
<p>{html.escape(result.get('note', ''))}</p>
</body></html>"""
