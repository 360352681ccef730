# Data half: render shards -> COCO per shard -> merged, split dataset; sheets to look at.
# (The shell commands are shared with site B of the proof experiment, workflow/rules/proof.smk.)
RENDER_SHELL = (
    "{params.py:q} -m blender.render --render-json {params.render:q} --seed {params.seed}"
    " --shard {wildcards.shard} --out {params.shard_dir:q} --threads {threads}"
    " --kernel-cache-dir={resources.kernel_cache_dir:q} > {log:q} 2>&1"
)
ANNOTATE_SHELL = (
    "{params.py:q} -m pipeline annotate {params.shard_dir:q} --classes {params.classes:q}"
    " --min-visible-pixels {params.min_px} --min-visibility {params.min_vis} --image-prefix {params.prefix:q} --out {output.coco:q} > {log:q} 2>&1"
)
SPLIT_SHELL = (
    "{params.py:q} -m pipeline split {input:q} --fractions {params.fractions:q} --seed {params.seed}"
    " --out-dir {params.out_dir:q} > {log:q} 2>&1"
)


rule render:
    """Render one shard with headless Blender/Cycles (a single Blender session per shard)."""
    input:
        unpack(render_inputs(config["render"])),
    output:
        manifest=f"{OUT}/render/shard_{{shard}}/manifest.json",
    params:
        py=PY,
        render=render_params(config["render"]),
        seed=config["seed"],
        shard_dir=lambda wc: f"{OUT}/render/shard_{wc.shard}",
    conda:
        ENV
    log:
        f"{OUT}/logs/render/shard_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/render/shard_{{shard}}.tsv"
    threads: job_threads("render", config["render"])
    resources:
        **job_resources("render", config["render"]),
    shell:
        RENDER_SHELL


rule annotate:
    """Instance maps of one shard -> COCO JSON (RLE masks, bbox and area from the mask)."""
    input:
        manifest=rules.render.output.manifest,
    output:
        coco=f"{OUT}/coco/shard_{{shard}}.json",
    params:
        py=PY,
        classes=cfg_json("classes"),
        min_px=config["annotate"]["min_visible_pixels"],
        min_vis=config["annotate"]["min_visibility"],
        shard_dir=lambda wc: f"{OUT}/render/shard_{wc.shard}",
        prefix=lambda wc: f"render/shard_{wc.shard}/",
    conda:
        ENV
    log:
        f"{OUT}/logs/annotate/shard_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/annotate/shard_{{shard}}.tsv"
    threads: job_threads("annotate")
    resources:
        **job_resources("annotate", config["render"]),
    shell:
        ANNOTATE_SHELL


rule split:
    """Merge shard COCO files; seeded train/val/test split."""
    input:
        expand(f"{OUT}/coco/shard_{{shard}}.json", shard=SHARDS),
    output:
        train=f"{OUT}/dataset/train.json",
        val=f"{OUT}/dataset/val.json",
        test=f"{OUT}/dataset/test.json",
    params:
        py=PY,
        fractions=cfg_json("split"),
        seed=config["seed"],
        out_dir=dir_of("train"),
    conda:
        ENV
    log:
        f"{OUT}/logs/split.log",
    benchmark:
        f"{OUT}/benchmarks/split.tsv"
    threads: job_threads("light")
    resources:
        **job_resources("light"),
    shell:
        SPLIT_SHELL


rule contact_sheet:
    """Renders with ground-truth masks overlaid in class colours: look at it."""
    input:
        expand(f"{OUT}/coco/shard_{{shard}}.json", shard=SHARDS),
    output:
        png=report(f"{OUT}/report/contact_sheet.png", category="Dataset"),
    params:
        py=PY,
        root=root_of(0),
        max_images=config["report"]["contact_sheet_images"],
    conda:
        ENV
    log:
        f"{OUT}/logs/contact_sheet.log",
    benchmark:
        f"{OUT}/benchmarks/contact_sheet.tsv"
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline contact-sheet {input:q} --image-root {params.root:q}"
        " --max-images {params.max_images} --out {output.png:q} > {log:q} 2>&1"


rule crop_sheet:
    """Crops of one class across scenes, with mask outlines (and keypoints): people and jack sheets."""
    input:
        expand(f"{OUT}/coco/shard_{{shard}}.json", shard=SHARDS),
    output:
        png=report(f"{OUT}/report/{{cls}}_sheet.png", category="Dataset"),
    params:
        py=PY,
        root=root_of(0),
        crops=config["report"]["crop_sheet_crops"],
    conda:
        ENV
    log:
        f"{OUT}/logs/{{cls}}_sheet.log",
    benchmark:
        f"{OUT}/benchmarks/{{cls}}_sheet.tsv"
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline contact-sheet {input:q} --image-root {params.root:q} --crops {wildcards.cls}"
        " --max-images {params.crops} --out {output.png:q} > {log:q} 2>&1"


rule dataset_stats:
    """Object heights in pixels and visibility per class (a site's own sets beside them), cameras per rig,
    and 4 sample frames of each rig for the report."""
    input:
        coco=expand(f"{OUT}/coco/shard_{{shard}}.json", shard=SHARDS),
        real=[f"{OUT}/real/{n}/ann.json" for n in REAL_EVAL],
    output:
        png=report(f"{OUT}/report/dataset_stats.png", category="Dataset"),
        json=f"{OUT}/report/dataset_stats.json",
        samples=f"{OUT}/report/rig_samples.jpg",
    params:
        py=PY,
        root=root_of(0),
        real=" ".join(shlex.quote(f"{n}={OUT}/real/{n}/ann.json") for n in REAL_EVAL),
        out_dir=lambda w, output: str(Path(output.json).parent),
        title=f"hangar-synth: {NAME}, dataset statistics",
    conda:
        ENV
    log:
        f"{OUT}/logs/dataset_stats.log",
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline dataset-stats {input.coco:q} --image-root {params.root:q} --real {params.real}"
        " --title {params.title:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule site_sheets:
    """snakemake site_sheets: 16 full frames of each camera rig, as its camera recorded them
    (report/site_sheets/site_sheet_<rig>.png): hold them beside your own cameras' frames."""
    input:
        coco=expand(f"{OUT}/coco/shard_{{shard}}.json", shard=SHARDS),
    output:
        sheets=directory(f"{OUT}/report/site_sheets"),
    params:
        py=PY,
        root=root_of(0),
    conda:
        ENV
    log:
        f"{OUT}/logs/site_sheets.log",
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        "{params.py:q} -m pipeline dataset-stats {input.coco:q} --image-root {params.root:q}"
        " --site-sheets-dir {output.sheets:q} > {log:q} 2>&1"


rule people_sheet:
    """snakemake people_sheet: 24 pedestrians with mask outline and keypoints (report/pedestrian_sheet.png)."""
    input:
        f"{OUT}/report/pedestrian_sheet.png",


rule jack_sheet:
    """snakemake jack_sheet: 24 pallet jacks across variants, loads and lighting (report/pallet_jack_sheet.png)."""
    input:
        f"{OUT}/report/pallet_jack_sheet.png",
