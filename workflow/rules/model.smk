# Model half: weights -> train -> evaluate -> report, plus the comparisons of `compare:`
# (transfer modes, data-efficiency, zero-shot general model). A site's real sets: workflow/rules/real.smk.

# (WEIGHTS/SUBSET/TRAIN/EVAL shells are shared with the proof experiment, workflow/rules/proof.smk.)
WEIGHTS_SHELL = (
    "{params.py:q} -m pipeline weights --arch {params.arch:q} --weights {params.weights:q}"
    " --out {output.info:q} > {log:q} 2>&1"
)
SUBSET_SHELL = (
    "{params.py:q} -m pipeline subset {input.train:q} --images {wildcards.images} --out {output.train:q}"
    " > {log:q} 2>&1"
)
TRAIN_SHELL = (
    f"{TRAIN_LAUNCH} --train-json {{input.train:q}} --val-json {{input.val:q}}"
    " --image-root {params.root:q} --weights-json {input.weights:q} --classes {params.classes:q}"
    " --model-cfg {params.model:q} --train-cfg {params.train:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
)
EVAL_SHELL = (
    "{params.py:q} -m pipeline evaluate {params.source} --ann {input.ann:q} --image-root {params.root:q}"
    " --eval-cfg {params.eval:q} --model-cfg {params.model:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
)


rule weights:
    """Resolve pretrained weights (torchvision enum + hub cache); run on a node with internet."""
    output:
        info=f"{OUT}/weights.json",
    params:
        py=PY,
        arch=config["model"]["arch"],
        weights=config["model"]["weights"],
    conda:
        ENV
    log:
        f"{OUT}/logs/weights.log",
    benchmark:
        f"{OUT}/benchmarks/weights.tsv"
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        WEIGHTS_SHELL


rule train:
    """Fine-tune Mask R-CNN (3-class heads); resumes last.pth only when it is this run's (same settings,
    classes, base weights, data and training code), else trains afresh and logs why."""
    input:
        train=rules.split.output.train,
        val=rules.split.output.val,
        weights=rules.weights.output.info,
    output:
        **train_outputs(f"{OUT}/train"),
    params:
        py=PY,
        classes=cfg_json("classes"),
        model=cfg_json("model"),
        train=cfg_json("train"),
        out_dir=dir_of("final"),
        root=root_of("val"),
    conda:
        ENV
    log:
        f"{OUT}/logs/train.log",
    benchmark:
        f"{OUT}/benchmarks/train.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    shell:
        TRAIN_SHELL


rule subset:
    """The first N training images (nested subsets) for the data-efficiency curve."""
    input:
        train=rules.split.output.train,
    output:
        train=f"{OUT}/variants/n{{images}}/train.json",
    params:
        py=PY,
    conda:
        ENV
    log:
        f"{OUT}/logs/subset/n{{images}}.log",
    benchmark:
        f"{OUT}/benchmarks/subset/n{{images}}.tsv"
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        SUBSET_SHELL


rule train_variant:
    """A comparison model: another transfer mode (mode_<m>) or fewer training images (n<N>)."""
    input:
        train=variant_train_json,
        val=rules.split.output.val,
        weights=rules.weights.output.info,
    output:
        **train_outputs(f"{OUT}/variants/{{variant}}/train"),
    params:
        py=PY,
        classes=cfg_json("classes"),
        model=variant_model_cfg,
        train=cfg_json("train"),
        out_dir=dir_of("final"),
        root=root_of("val"),
    conda:
        ENV
    log:
        f"{OUT}/logs/train_variant/{{variant}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_variant/{{variant}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    shell:
        TRAIN_SHELL


rule evaluate:
    """Predict on the evaluation split; COCOeval bbox + segm, PR curves, confusion, per-image errors."""
    input:
        checkpoint=f"{OUT}/train/{EVAL_CKPT}",
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
    output:
        metrics=f"{OUT}/eval/metrics.json",
        predictions=f"{OUT}/eval/predictions.json",
    params:
        py=PY,
        source=checkpoint_arg,
        eval=cfg_json("evaluate"),
        model=cfg_json("model"),
        out_dir=dir_of("metrics"),
        root=root_of("ann"),
    conda:
        ENV
    log:
        f"{OUT}/logs/evaluate.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule evaluate_variant:
    """Evaluate a comparison model on the same split as the main model."""
    input:
        checkpoint=f"{OUT}/variants/{{variant}}/train/{EVAL_CKPT}",
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
    output:
        metrics=f"{OUT}/variants/{{variant}}/eval/metrics.json",
        predictions=f"{OUT}/variants/{{variant}}/eval/predictions.json",
    params:
        py=PY,
        source=checkpoint_arg,
        eval=cfg_json("evaluate"),
        model=variant_model_cfg,
        out_dir=dir_of("metrics"),
        root=root_of("ann"),
    conda:
        ENV
    log:
        f"{OUT}/logs/evaluate_variant/{{variant}}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_variant/{{variant}}.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule zero_shot:
    """The general COCO model as is: COCO person -> pedestrian; pallet_jack not detectable."""
    input:
        weights=rules.weights.output.info,
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
    output:
        metrics=f"{OUT}/variants/zero_shot/eval/metrics.json",
        predictions=f"{OUT}/variants/zero_shot/eval/predictions.json",
    params:
        py=PY,
        source=lambda wildcards, input: (f"--general-weights {shlex.quote(input.weights)} --zero-shot-map "
                                         + shlex.quote(cfg_json("compare", "zero_shot_map"))
                                         + " --input-size {} {}".format(*config["compare"]["zero_shot_size_px"])),
        eval=cfg_json("evaluate"),
        model=cfg_json("model"),
        out_dir=dir_of("metrics"),
        root=root_of("ann"),
    conda:
        ENV
    log:
        f"{OUT}/logs/zero_shot.log",
    benchmark:
        f"{OUT}/benchmarks/zero_shot.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule compare_modes:
    """Target: every transfer mode of compare.transfer_modes trained and evaluated."""
    input:
        [f"{OUT}/variants/{v}/eval/metrics.json" for v in MODE_VARIANTS],


rule data_efficiency:
    """Target: the data-efficiency points of compare.train_images."""
    input:
        [f"{OUT}/variants/{v}/eval/metrics.json" for v in SIZE_VARIANTS],


rule report:
    """Self-contained HTML report + Markdown summary + metrics JSON (main model and comparisons)."""
    input:
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        curve=rules.train.output.metrics,
        ann=f"{OUT}/dataset/{EVAL_SPLIT}.json",
        train=rules.split.output.train,
        sheet=rules.contact_sheet.output.png,
        people=f"{OUT}/report/pedestrian_sheet.png",
        jacks=f"{OUT}/report/pallet_jack_sheet.png",
        stats=f"{OUT}/report/dataset_stats.png",
        rigs=f"{OUT}/report/rig_samples.jpg",
        compare=list(COMPARE_METRICS.values()),
        # each real set's prepared file, summary and evaluation: its own section of the report
        real=[f"{OUT}/real/{n}/{f}" for n in REAL_EVAL for f in ("ann.json", "summary.json", "eval/metrics.json",
                                                                  "eval/predictions.json")],
        manifests=expand(rules.render.output.manifest, shard=SHARDS),  # their provenance: render config, seed
    output:
        html=report(f"{OUT}/report/index.html", category="Evaluation"),
        summary=report(f"{OUT}/report/summary.md", category="Evaluation"),
        metrics=f"{OUT}/report/metrics.json",
    params:
        py=PY,
        report=cfg_json("report"),
        # for the provenance: the sections no earlier stage records beside its output (train/provenance.json
        # holds train/model/classes/weights, the manifests render/seed); each already reruns the report
        run=json.dumps({k: config[k] for k in ("annotate", "split", "evaluate", "datasets")}, sort_keys=True),
        root=root_of("ann"),
        title=f"hangar-synth: {NAME} ({EVAL_SPLIT} split)",
        compare=" ".join(shlex.quote(f"{name}={path}") for name, path in COMPARE_METRICS.items()),
        real=" ".join(shlex.quote(f"{n}={OUT}/real/{n}") for n in REAL_EVAL),
        real_images=" ".join(shlex.quote(f"{n}={REAL[n]['images']}") for n in REAL_EVAL),
    conda:
        ENV
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline report --metrics {input.metrics:q} --predictions {input.predictions:q}"
        " --metrics-csv {input.curve:q} --ann {input.ann:q} --train-json {input.train:q} --image-root {params.root:q}"
        " --contact-sheet {input.sheet:q} --people-sheet {input.people:q} --jack-sheet {input.jacks:q} --dataset-stats {input.stats:q} --rig-samples {input.rigs:q} --report-cfg {params.report:q} --title {params.title:q}"
        " --run-cfg {params.run:q} --manifests {input.manifests:q}"
        " --compare {params.compare} --real {params.real} --real-images {params.real_images} --out {output.html:q} --summary {output.summary:q}"
        " --metrics-out {output.metrics:q} > {log:q} 2>&1"
