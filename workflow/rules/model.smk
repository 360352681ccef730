rule weights:
    """Resolve pretrained weights (torchvision enum + hub cache); run on a node with internet."""
    output:
        info=f"{OUT}/weights.json",
    params:
        arch=config["model"]["arch"],
        weights=config["model"]["weights"],
    log:
        f"{OUT}/logs/weights.log",
    benchmark:
        f"{OUT}/benchmarks/weights.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{PY} -m pipeline weights --arch {params.arch:q} --weights {params.weights:q}"
        " --out {output.info:q} > {log:q} 2>&1"


rule train:
    """Fine-tune Mask R-CNN (3-class heads); resumes from last.pth if a previous run was cut off."""
    input:
        train=rules.split.output.train,
        val=rules.split.output.val,
        weights=rules.weights.output.info,
    output:
        final=f"{OUT}/train/model_final.pth",
        metrics=f"{OUT}/train/metrics.csv",
    params:
        classes=cfg_json("classes"),
        model=cfg_json("model"),
        train=cfg_json("train"),
        out_dir=f"{OUT}/train",
        root=OUT,
    log:
        f"{OUT}/logs/train.log",
    benchmark:
        f"{OUT}/benchmarks/train.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "{PY} -m pipeline train --train-json {input.train:q} --val-json {input.val:q} --image-root {params.root:q}"
        " --weights-json {input.weights:q} --classes {params.classes:q} --model-cfg {params.model:q}"
        " --train-cfg {params.train:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule evaluate:
    """Predict on the evaluation split; COCOeval bbox + segm."""
    input:
        checkpoint=rules.train.output.final,
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
    output:
        metrics=f"{OUT}/eval/metrics.json",
        predictions=f"{OUT}/eval/predictions.json",
    params:
        eval=cfg_json("evaluate"),
        model=cfg_json("model"),
        out_dir=f"{OUT}/eval",
        root=OUT,
    log:
        f"{OUT}/logs/evaluate.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    shell:
        "{PY} -m pipeline evaluate --checkpoint {input.checkpoint:q} --ann {input.ann:q}"
        " --image-root {params.root:q} --eval-cfg {params.eval:q} --model-cfg {params.model:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule report:
    """Self-contained HTML report (metrics, loss curve, predictions on images)."""
    input:
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        curve=rules.train.output.metrics,
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
        sheet=rules.contact_sheet.output.png,
    output:
        html=report(f"{OUT}/report/index.html", category="Evaluation"),
    params:
        report=cfg_json("report"),
        root=OUT,
        title=f"hangar-synth: {NAME} ({EVAL_SPLIT} split)",
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{PY} -m pipeline report --metrics {input.metrics:q} --predictions {input.predictions:q}"
        " --metrics-csv {input.curve:q} --ann {input.ann:q} --image-root {params.root:q}"
        " --contact-sheet {input.sheet:q} --report-cfg {params.report:q} --title {params.title:q} --out {output.html:q} > {log:q} 2>&1"
