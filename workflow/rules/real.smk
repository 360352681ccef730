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
