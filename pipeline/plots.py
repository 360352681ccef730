"""Report figures (matplotlib, Agg) as base64 PNG strings."""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def loss_plot(metrics_csv: Path) -> str:
    """Loss components and lr against iteration."""
    plt = _plt()
    rows = read_csv(metrics_csv)
    it = [int(r["iteration"]) for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"):
        ax.plot(it, [float(r[key]) for r in rows], label=key, lw=2 if key == "loss" else 1)
    ax.set_xlabel("iteration"); ax.set_ylabel("loss"); ax.legend(fontsize=7); ax.set_title("training loss")
    ax2.plot(it, [float(r["lr"]) for r in rows]); ax2.set_xlabel("iteration"); ax2.set_title("learning rate")
    return png_b64(fig)


def val_ap_plot(val_csv: Path) -> str:
    """Validation segm/bbox AP against iteration (train.eval_every)."""
    plt = _plt()
    rows = read_csv(val_csv)
    it = [int(r["iteration"]) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("segm_AP", "bbox_AP"):
        ax.plot(it, [float(r[key]) for r in rows], marker="o", label=key.replace("_", " "))
    ax.set_xlabel("iteration"); ax.set_ylabel("AP (val)"); ax.set_ylim(0, 1); ax.legend(); ax.set_title("AP over training")
    return png_b64(fig)


def class_colors(names: dict[int, str]) -> dict[str, tuple[int, int, int]]:
    """The report's one colour table: class name -> RGB of its category id, as overlays and galleries draw it."""
    from pipeline.contact_sheet import class_color

    return {name: class_color(cat_id) for cat_id, name in names.items()}


def _rgb(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in color)


def pr_figure(pr: dict[str, Any], title: str, colors: dict[str, tuple[int, int, int]]):
    """Precision-recall per class at IoU 0.50 (solid) and 0.75 (dashed), each class in its `colors` entry."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    recall = pr["recall"]
    # by name, never by position: metrics.json is written with sorted keys (pallet_jack before pedestrian)
    for name in pr["iou50"]:
        for key, style in (("iou50", "-"), ("iou75", "--")):
            curve = pr[key][name]
            if curve is not None:
                ax.plot(recall, curve, style, color=_rgb(colors[name]), label=f"{name} IoU 0.{key[3:]}")
    ax.set_xlabel("recall"); ax.set_ylabel("precision"); ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left"); ax.set_title(title)
    return fig


def pr_plot(pr: dict[str, Any], title: str, colors: dict[str, tuple[int, int, int]]) -> str:
    """pr_figure as base64 PNG."""
    return png_b64(pr_figure(pr, title, colors))


def confusion_plot(conf: dict[str, Any], colors: dict[str, tuple[int, int, int]] | None = None) -> str:
    """Confusion matrix heatmap with counts (rows true, columns predicted), class names in their `colors`."""
    plt = _plt()
    m = np.asarray(conf["matrix"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(m.shape[1]), conf["predicted"], rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), conf["true"])
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        if label.get_text() in (colors or {}):
            label.set_color(_rgb(colors[label.get_text()]))
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted"); ax.set_ylabel("true")
    ax.set_title(f"score ≥ {conf['score_threshold']}, {conf['iou_type']} IoU ≥ {conf['iou_threshold']}", fontsize=9)
    return png_b64(fig)


def efficiency_plot(points: list[dict[str, Any]], reference: dict[str, float],
                    colors: dict[str, tuple[int, int, int]] | None = None) -> str:
    """AP against number of training images (log x). `reference`: the general model's zero-shot mask AP
    per class it can detect, drawn as a line beside that class's own curve (like against like)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n = [p["train_images"] for p in points]
    # all-class lines in greys: the class colours are kept for the per-class lines
    for key, label, grey in (("segm_AP", "segm AP", "black"), ("bbox_AP", "bbox AP", "grey")):
        ax.plot(n, [p[key] for p in points], marker="o", label=label, color=grey)
    for cls, ap in reference.items():
        line = ax.plot(n, [max(p["per_class_segm"].get(cls, 0.0), 0.0) for p in points], marker="s", ls="--",
                       label=f"{cls} segm AP", **({"color": _rgb(colors[cls])} if cls in (colors or {}) else {}))[0]
        ax.axhline(ap, color=line.get_color(), ls=":", label=f"general model, zero-shot: {cls} segm AP")
    ax.set_xscale("log"); ax.set_xticks(n, [str(v) for v in n]); ax.minorticks_off()
    ax.set_xlabel("training images"); ax.set_ylabel("AP"); ax.set_ylim(0, 1); ax.legend(fontsize=8)
    ax.set_title("data efficiency")
    return png_b64(fig)
