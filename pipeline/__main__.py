"""`python -m pipeline <stage> ...`: one CLI per stage."""
from __future__ import annotations

import importlib
import sys

STAGES = {
    "validate": "pipeline.config",
    "annotate": "pipeline.coco",
    "split": "pipeline.split",
    "subset": "pipeline.split:subset_main",
    "weights": "pipeline.weights",
    "train": "pipeline.train",
    "evaluate": "pipeline.evaluate",
    "report": "pipeline.report",
    "contact-sheet": "pipeline.contact_sheet",
    "dataset-stats": "pipeline.dataset_stats",
    "predict": "pipeline.predict",
    "export": "pipeline.export",
    "prepare-dataset": "pipeline.datasets",
    "split-dataset": "pipeline.datasets:split_main",
    "real-curve": "pipeline.real_curve",
    "proof-report": "pipeline.proof",
    "bootstrap": "pipeline.bootstrap",
    "mask-diagnosis": "pipeline.mask_diagnosis",
    "anchors": "pipeline.anchors",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in STAGES:
        print(f"usage: python -m pipeline {{{','.join(STAGES)}}} [args]", file=sys.stderr)
        return 2
    module, _, func = STAGES[argv[0]].partition(":")
    return getattr(importlib.import_module(module), func or "main")(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
