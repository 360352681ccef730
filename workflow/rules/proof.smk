# The site-adaptation experiment (`snakemake proof`): the main model is site A's; site B is the
# render section with proof.site_b merged over it, rendered with its own seed and split into a
# pool (nested N-image training sets), validation images and a held-out test set. Each row (the
# continued-training control, the site-A model in feature_extraction / fine_tune mode, pooled with site A,
# or from scratch) trains on each N and seed with the same budget (proof.train over train), and every
# model is scored on the site-B test set.
# (constants and helpers: workflow/rules/common.smk)

rule proof_render:
    """Render one shard of site B (its own render section and seed)."""
    input:
        unpack(render_inputs(SITE_B_RENDER)),
    output:
        manifest=f"{SITE_B}/render/shard_{{shard}}/manifest.json",
    params:
        py=PY,
        render=render_params(SITE_B_RENDER),
        seed=PROOF["seed"],
        shard_dir=lambda wc: f"{SITE_B}/render/shard_{wc.shard}",
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/render/shard_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/proof/render/shard_{{shard}}.tsv"
    threads: job_threads("render", SITE_B_RENDER)
    resources:
        **job_resources("render", SITE_B_RENDER),
    shell:
        RENDER_SHELL


rule proof_annotate:
    """Site-B instance maps of one shard -> COCO JSON."""
    input:
        manifest=rules.proof_render.output.manifest,
    output:
        coco=f"{SITE_B}/coco/shard_{{shard}}.json",
    params:
        py=PY,
        classes=cfg_json("classes"),
        min_px=config["annotate"]["min_visible_pixels"],
        min_vis=config["annotate"]["min_visibility"],
        shard_dir=lambda wc: f"{SITE_B}/render/shard_{wc.shard}",
        prefix=lambda wc: f"render/shard_{wc.shard}/",
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/annotate/shard_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/proof/annotate/shard_{{shard}}.tsv"
    threads: job_threads("annotate")
    resources:
        **job_resources("annotate", SITE_B_RENDER),
    shell:
        ANNOTATE_SHELL


rule proof_split:
    """Site B: exactly proof.val_images validation and proof.test_images test images; the rest is the pool."""
    input:
        expand(f"{SITE_B}/coco/shard_{{shard}}.json", shard=SITE_B_SHARDS),
    output:
        train=f"{SITE_B}/dataset/train.json",
        val=f"{SITE_B}/dataset/val.json",
        test=f"{SITE_B}/dataset/test.json",
    params:
        py=PY,
        fractions=json.dumps(proof_fractions(config), sort_keys=True),
        seed=PROOF["seed"],
        out_dir=dir_of("train"),
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/split.log",
    benchmark:
        f"{OUT}/benchmarks/proof/split.tsv"
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        SPLIT_SHELL


rule proof_subset:
    """The first N images of the site-B pool (nested)."""
    input:
        train=rules.proof_split.output.train,
    output:
        train=f"{SITE_B}/dataset/n{{images}}.json",
    params:
        py=PY,
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/subset/n{{images}}.log",
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        SUBSET_SHELL


rule proof_weights:
    """weights.json of a site-B start: the site-A checkpoint (hashed), or none."""
    input:
        lambda wc: [BASE_CKPT] if wc.source == "site_a" else [],
    output:
        info=f"{PROOF_OUT}/weights_{{source}}.json",
    params:
        py=PY,
        arch=config["model"]["arch"],
        weights=lambda wc: BASE_CKPT if wc.source == "site_a" else "none",
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/weights_{{source}}.log",
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        WEIGHTS_SHELL


rule proof_train:
    """One model of the experiment, with the budget of proof.train and its seed: a start on N site-B
    images, the pool of site A and those images, or the continued-training control on site A."""
    wildcard_constraints:
        run=PROOF_RUN_RE,
    input:
        unpack(proof_train_inputs),
    output:
        final=f"{PROOF_OUT}/runs/{{run}}/train/model_final.pth",
        metrics=f"{PROOF_OUT}/runs/{{run}}/train/metrics.csv",
    params:
        py=PY,
        classes=cfg_json("classes"),
        model=proof_model_cfg,
        train=proof_train_cfg,
        mix=proof_mix_args,
        out_dir=dir_of("final"),
        root=root_of("train"),
        val_root=root_of("val"),
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/train/{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/proof/train/{{run}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    shell:
        f"{TRAIN_LAUNCH} --train-json {{input.train:q}} --image-root {{params.root:q}} {{params.mix}}"
        " --val-json {input.val:q} --val-root {params.val_root:q}"
        " --weights-json {input.weights:q} --classes {params.classes:q} --model-cfg {params.model:q}"
        " --train-cfg {params.train:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule proof_evaluate:
    """A model of the experiment (its final weights: nothing is selected) on the site-B test set."""
    wildcard_constraints:
        run=PROOF_RUN_RE,
    input:
        checkpoint=rules.proof_train.output.final,
        ann=rules.proof_split.output.test,
    output:
        metrics=f"{PROOF_OUT}/runs/{{run}}/eval/metrics.json",
        predictions=f"{PROOF_OUT}/runs/{{run}}/eval/predictions.json",
    params:
        py=PY,
        source=checkpoint_arg,
        eval=cfg_json("evaluate"),
        model=proof_model_cfg,
        out_dir=dir_of("metrics"),
        root=root_of("ann"),
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/evaluate/{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/proof/evaluate/{{run}}.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule proof_no_adaptation:
    """The site-A model on the site-B test set as it is: the experiment's zero-shot row."""
    input:
        checkpoint=BASE_CKPT,
        ann=rules.proof_split.output.test,
    output:
        metrics=f"{PROOF_OUT}/site_a_model/eval/metrics.json",
        predictions=f"{PROOF_OUT}/site_a_model/eval/predictions.json",
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
        f"{OUT}/logs/proof/no_adaptation.log",
    benchmark:
        f"{OUT}/benchmarks/proof/no_adaptation.tsv"
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        EVAL_SHELL


rule proof_report:
    """The experiment's page: site-B test AP per row against N (mean over seeds, 95 % bootstrap intervals
    over test images), differences from the continued-training control, AP over iterations, JSON."""
    input:
        runs=[f"{PROOF_OUT}/runs/{r}/eval/{f}" for r in PROOF_RUNS for f in ("metrics.json", "predictions.json")],
        curves=[f"{PROOF_OUT}/runs/{r}/train/metrics.csv" for r in PROOF_RUNS],
        zero=rules.proof_no_adaptation.output.metrics,
        zero_predictions=rules.proof_no_adaptation.output.predictions,
        test=rules.proof_split.output.test,
        site_a=rules.evaluate.output.metrics,
    output:
        html=report(f"{PROOF_OUT}/index.html", category="Proof"),
        json=f"{PROOF_OUT}/proof.json",
        ap_vs_n=report(f"{PROOF_OUT}/ap_vs_n.png", category="Proof"),
        ap_vs_it=report(f"{PROOF_OUT}/ap_vs_iterations.png", category="Proof"),
    params:
        py=PY,
        runs=" ".join(f"--run {s} {n} {seed} {PROOF_OUT}/runs/{r}" for r, (s, n, seed) in PROOF_RUNS.items()),
        info=proof_info(),
        resamples=PROOF["bootstrap_resamples"],
        out_dir=dir_of("json"),
    conda:
        ENV
    log:
        f"{OUT}/logs/proof/report.log",
    benchmark:
        f"{OUT}/benchmarks/proof/report.tsv"
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline proof-report {params.runs} --zero-shot {input.zero:q} --site-a {input.site_a:q}"
        " --test-json {input.test:q} --resamples {params.resamples} --info {params.info:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule proof:
    """snakemake proof: the site-adaptation experiment (results/<name>/proof/index.html)."""
    input:
        rules.proof_report.output.html,
