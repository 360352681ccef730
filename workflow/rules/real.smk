# A site's own labelled frames (config `datasets:`): each set put into our categories once
# (pipeline/datasets.py), then the main model evaluated on it for its own report section.


rule prepare_real:
    """A site's labelled set in our categories: names mapped by category_map, unmapped ones dropped
    (or refused), crowd regions kept as such, boxes clipped, images checked; a summary beside it."""
    input:
        ann=lambda w: REAL[w.dataset]["ann"],
        images=real_images,
    output:
        ann=f"{OUT}/real/{{dataset}}/ann.json",
        summary=f"{OUT}/real/{{dataset}}/summary.json",
    params:
        py=PY,
        classes=cfg_json("classes"),
        category_map=lambda w: json.dumps(REAL[w.dataset]["category_map"], sort_keys=True),
        unmapped=lambda w: REAL[w.dataset]["unmapped"],
        images=lambda w: REAL[w.dataset]["images"],
    conda:
        ENV
    log:
        f"{OUT}/logs/prepare_real/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_real/{{dataset}}.tsv"
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        "{params.py:q} -m pipeline prepare-dataset --ann {input.ann:q} --images {params.images:q}"
        " --classes {params.classes:q} --category-map {params.category_map:q} --unmapped {params.unmapped}"
        " --out {output.ann:q} --summary {output.summary:q} > {log:q} 2>&1"


rule evaluate_real:
    """The main model on a site's labelled set: the sim-to-real gap, scored like the synthetic split."""
    input:
        checkpoint=f"{OUT}/train/{EVAL_CKPT}",
        ann=rules.prepare_real.output.ann,
        images=real_images,
    output:
        metrics=f"{OUT}/real/{{dataset}}/eval/metrics.json",
        predictions=f"{OUT}/real/{{dataset}}/eval/predictions.json",
    params:
        py=PY,
        source=checkpoint_arg,
        eval=cfg_json("evaluate"),
        model=cfg_json("model"),
        out_dir=dir_of("metrics"),
        root=lambda w: REAL[w.dataset]["images"],
    conda:
        ENV
    log:
        f"{OUT}/logs/evaluate_real/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_real/{{dataset}}.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule evaluate_real_all:
    """Target: the main model evaluated on every real set of `datasets:` (evaluate: true)."""
    input:
        [f"{OUT}/real/{n}/eval/metrics.json" for n in REAL_EVAL],


# Training with a site's frames (config `real_train:`): the prepared set cut into train/val/test, then
# real frames only and synthetic -> real at each N of the efficiency curve, and synthetic + real mixed;
# every model scored on the real test part.
rule real_split:
    """The prepared real set cut into train/val/test (whole folders with split_by: folder); train shuffled."""
    input:
        ann=real_set_ann,
    output:
        train=f"{RT_DATA}/train.json",
        val=f"{RT_DATA}/val.json",
        test=f"{RT_DATA}/test.json",
    params:
        py=PY,
        fractions=cfg_json("real_train", "split"),
        seed=REAL_TRAIN["seed"],
        by=REAL_TRAIN["split_by"],
        out_dir=dir_of("train"),
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/split.log",
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        "{params.py:q} -m pipeline split-dataset {input.ann:q} --fractions {params.fractions:q} --seed {params.seed}"
        " --by {params.by} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule real_subset:
    """The first N real training frames (nested) of the efficiency curve."""
    input:
        train=rules.real_split.output.train,
    output:
        train=f"{RT_DATA}/n{{images}}.json",
    params:
        py=PY,
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/subset_n{{images}}.log",
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        SUBSET_SHELL


rule real_weights:
    """weights.json of synthetic -> real: the synthetic model (hashed) is the start."""
    input:
        BASE_CKPT,
    output:
        info=f"{RT_OUT}/weights_synthetic.json",
    params:
        py=PY,
        arch=config["model"]["arch"],
        weights=lambda w, input: input[0],
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/weights.log",
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        WEIGHTS_SHELL


rule real_train:
    """A model trained on N real frames: from the main model's start (real_only) or from the synthetic
    model (syn2real), both with the budget of real_train.train; validated on the real val part."""
    input:
        train=f"{RT_DATA}/n{{images}}.json",
        val=rules.real_split.output.val,
        weights=lambda w: rules.real_weights.output.info if w.kind == "syn2real" else rules.weights.output.info,
    output:
        final=f"{RT_OUT}/runs/{{kind}}_n{{images}}/train/model_final.pth",
        metrics=f"{RT_OUT}/runs/{{kind}}_n{{images}}/train/metrics.csv",
    params:
        py=PY,
        classes=cfg_json("classes"),
        model=lambda w: real_model_json(w.kind),
        train=json.dumps(RT_TRAIN, sort_keys=True),
        val=real_val_args,
        out_dir=dir_of("final"),
        root=lambda w: rt_entry()["images"],
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/train_{{kind}}_n{{images}}.log",
    benchmark:
        f"{OUT}/benchmarks/real_train/train_{{kind}}_n{{images}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    shell:
        f"{TRAIN_LAUNCH} --train-json {{input.train:q}} {{params.val}} --image-root {{params.root:q}}"
        " --weights-json {input.weights:q} --classes {params.classes:q} --model-cfg {params.model:q}"
        " --train-cfg {params.train:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule real_mixed:
    """Synthetic + real frames mixed (real_train.mix_fraction of the samples real), trained like the main
    model; validated on the real val part when there is one, else on the synthetic val split."""
    input:
        train=rules.split.output.train,
        mix=rules.real_split.output.train,
        val=rules.real_split.output.val if RT_VAL else rules.split.output.val,
        weights=rules.weights.output.info,
    output:
        final=f"{RT_OUT}/runs/mixed/train/model_final.pth",
        metrics=f"{RT_OUT}/runs/mixed/train/metrics.csv",
    params:
        py=PY,
        classes=cfg_json("classes"),
        model=cfg_json("model"),
        train=cfg_json("train"),
        fraction=REAL_TRAIN["mix_fraction"],
        out_dir=dir_of("final"),
        root=root_of("train"),
        real_root=lambda w: rt_entry()["images"],
        val_root=lambda w, input: rt_entry()["images"] if RT_VAL else str(Path(input.val).parent.parent),
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/train_mixed.log",
    benchmark:
        f"{OUT}/benchmarks/real_train/train_mixed.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    shell:
        f"{TRAIN_LAUNCH} --train-json {{input.train:q}} --image-root {{params.root:q}}"
        " --mix-json {input.mix:q} --mix-root {params.real_root:q} --mix-fraction {params.fraction}"
        " --val-json {input.val:q} --val-root {params.val_root:q}"
        " --weights-json {input.weights:q} --classes {params.classes:q} --model-cfg {params.model:q}"
        " --train-cfg {params.train:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule real_evaluate:
    """A real-trained model (its final weights: nothing is selected) on the real test part;
    syn2real_n0 is the synthetic model as it is."""
    input:
        checkpoint=lambda w: BASE_CKPT if w.run == "syn2real_n0" else f"{RT_OUT}/runs/{w.run}/train/model_final.pth",
        ann=rules.real_split.output.test,
        images=lambda w: _listed_images(rt_entry()["ann"], rt_entry()["images"]),
    output:
        metrics=f"{RT_OUT}/runs/{{run}}/eval/metrics.json",
        predictions=f"{RT_OUT}/runs/{{run}}/eval/predictions.json",
    params:
        py=PY,
        source=checkpoint_arg,
        eval=cfg_json("evaluate"),
        model=lambda w: real_model_json(w.run),
        out_dir=dir_of("metrics"),
        root=lambda w: rt_entry()["images"],
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/evaluate_{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/real_train/evaluate_{{run}}.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule real_curve_page:
    """The efficiency curve's page and JSON: real-test AP against N for each way of training."""
    input:
        metrics=[m for _, _, m, _ in real_curve_runs()],
        train=[f"{RT_DATA}/n{n}.json" for n in RT_NS],
        curves=[f"{RT_OUT}/runs/{r}/train/metrics.csv" for r in RT_RUNS],
    output:
        html=report(f"{RT_OUT}/index.html", category="Real images"),
        json=f"{RT_OUT}/real_curve.json",
        png=report(f"{RT_OUT}/ap_vs_real_frames.png", category="Real images"),
    params:
        py=PY,
        runs=" ".join(f"--run {k} {shlex.quote(t)} {shlex.quote(m)} {shlex.quote(d)}" for k, t, m, d in real_curve_runs()),
        info=real_curve_info(),
        out_dir=dir_of("json"),
    conda:
        ENV
    log:
        f"{OUT}/logs/real_train/curve.log",
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline real-curve {params.runs} --info {params.info:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule real_models:
    """Target: mixed, synthetic -> real and real-only models on all real training frames, scored on the real test part."""
    input:
        needs_real_set([f"{RT_OUT}/runs/{k}_n{RT_PARTS['train']}/eval/metrics.json" for k in ("real_only", "syn2real")]
                       + [f"{RT_OUT}/runs/mixed/eval/metrics.json"]),


rule real_curve:
    """Target: the real-label efficiency curve (results/<name>/real_train/index.html, real_curve.json)."""
    input:
        needs_real_set([rules.real_curve_page.output.html]),
