# Config (validated before anything runs), paths and helpers shared by the rule files.
import functools
import re

from blender.frame_key import asset_files, code_files
from pipeline.config import job_partition, load_config, merge, proof_fractions, site_b_render, validate
from pipeline.proof import start_model
from snakemake.settings.types import DeploymentMethod

if not config:
    config.update(load_config(Path(workflow.basedir) / "configs" / "default.yaml"))
# errors name the files the config came from (and --config, where it overrides them)
CONFIG_SOURCE = " + ".join(str(f) for f in workflow.configfiles) or "configs/default.yaml"
config = validate(dict(config), f"{CONFIG_SOURCE} (with any --config overrides)")

# Jobs run with the interpreter that runs Snakemake (the project venv, found even when it is not
# activated); under --use-conda with the env's own `python`.
PY = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
ENV = "../envs/hangar.yaml"  # relative to workflow/rules/
NAME = config["name"]
OUT = f"results/{NAME}"
SHARDS = [f"{k:03d}" for k in range(config["render"]["shards"])]
EVAL_SPLIT = config["evaluate"]["split"]
# The main model already is one transfer mode (from_scratch when weights are none): not trained twice.
MAIN_MODE = "from_scratch" if config["model"]["weights"] == "none" else config["model"]["transfer"]
MODE_VARIANTS = [f"mode_{m}" for m in config["compare"]["transfer_modes"] if m != MAIN_MODE]
SIZE_VARIANTS = [f"n{k}" for k in sorted(config["compare"]["train_images"])]
# best.pth exists only when training validates; evaluate.checkpoint picks which model is scored
TRAIN_BEST = bool(config["train"]["eval_every"])
EVAL_CKPT = "best.pth" if config["evaluate"]["checkpoint"] == "best" else "model_final.pth"


# Threads and resources of every job come from the config's `resources` table (configs/schema.yaml):
# each kind of job has its entry there, the numbers live in the config. README: *Running on your cluster*.
RESOURCES = config["resources"]


def resource_kind(kind, render_cfg=None):
    """The table entry of a job of `kind`; a render job on a GPU (render.device GPU) is render_gpu."""
    return "render_gpu" if kind == "render" and render_cfg["device"] == "GPU" else kind


def partition_of(kind):
    """The SLURM partition of `kind` (empty: the cluster's default)."""
    return job_partition(RESOURCES, kind)


def job_threads(kind, render_cfg=None):
    """Threads of a job of `kind`; a render job's are render.threads when nonzero (Cycles gets them)."""
    if kind == "render" and render_cfg["threads"]:
        return render_cfg["threads"]
    return RESOURCES[resource_kind(kind, render_cfg)]["threads"]


def job_resources(kind, render_cfg=None):
    """resources of a job of `kind` (render and annotate with the shard's render section), named as
    snakemake-executor-plugin-slurm turns them into sbatch options: mem_mb (--mem), runtime (-t, minutes),
    cpus_per_task (--cpus-per-task: the job's threads, also as --set-threads changes them; a dry run caps
    threads at its --cores), gpu (--gpus; locally counted against --resources gpu=N), gpu_model
    (--gpus=<model>:N), slurm_partition (-p), slurm_extra. A GPU job is one task (tasks_per_gpu=0; the
    plugin's default is a task per GPU): torchrun starts the processes. annotate takes the partition of its
    shard's render: profiles/slurm runs both in one group job, which has one partition (the config check
    refuses a resources.annotate.partition that differs). A render job also carries render.kernel_cache_dir,
    which changes no output, as a resource rather than a param (params trigger reruns)."""
    entry = resource_kind(kind, render_cfg)
    res = RESOURCES[entry]
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime_min"], "cpus_per_task": lambda wildcards, threads: threads,
           "gpu": res["gpus"]}
    if res["gpus"]:
        out["tasks_per_gpu"] = 0
    partition = partition_of(resource_kind("render", render_cfg) if kind == "annotate" else entry)
    if partition:
        out["slurm_partition"] = partition
    for key in ("gpu_model", "slurm_extra"):
        if res.get(key):
            out[key] = res[key]
    if kind == "render":
        out["kernel_cache_dir"] = render_cfg["kernel_cache_dir"]
    return out


def render_params(render_cfg):
    """params value of a render rule: the render section as JSON without what changes no pixel, so editing
    it reruns nothing: threads (the job's threads reach Cycles as --threads) and kernel_cache_dir (a
    resource, --kernel-cache-dir); blender/frame_key.py leaves both out of a frame's key too."""
    return json.dumps({**render_cfg, "threads": 0, "kernel_cache_dir": ""}, sort_keys=True)


# How a training job starts, decided when it runs from the GPUs it got ({resources.gpu}: the table's
# train.gpus, or --set-resources train:gpu=N, or fewer under profiles/local's --resources gpu=1): with
# more than one, torchrun starts a process per GPU (one model, DDP: pipeline/train.py); else plain python.
TRAIN_LAUNCH = ('launch="-m pipeline train"; if [ {resources.gpu} -gt 1 ]; then'
                ' launch="-m torch.distributed.run --standalone --nproc_per_node {resources.gpu} $launch"; fi;'
                " {params.py:q} $launch")


def render_inputs(render_cfg):
    """Input function of a render rule: every file of the render.assets folders and the scene code
    (blender/*.py), so adding, swapping or editing one replans render; frames drawn from the old
    versions are re-rendered, the others kept (blender/frame_key.py). A function, so a brace in an
    asset's file name is taken as it is, not as a wildcard."""
    files = {"assets": asset_files(render_cfg), "code": [str(p) for p in code_files()]}
    return lambda wildcards: files


def train_outputs(folder):
    """Named outputs of a training rule writing into `folder`."""
    out = {"final": f"{folder}/model_final.pth", "metrics": f"{folder}/metrics.csv"}
    if TRAIN_BEST:
        out["best"] = f"{folder}/best.pth"
    return out


# name -> metrics.json of each model the report sets beside the main one
COMPARE_METRICS = {v: f"{OUT}/variants/{v}/eval/metrics.json" for v in MODE_VARIANTS + SIZE_VARIANTS}
if config["compare"]["zero_shot"]:
    COMPARE_METRICS["zero_shot"] = f"{OUT}/variants/zero_shot/eval/metrics.json"

# A site's own labelled sets (`datasets:`), by name; those evaluated get their own report section.
REAL = config["datasets"]
REAL_EVAL = [name for name, entry in REAL.items() if entry["evaluate"]]


@functools.lru_cache(maxsize=None)
def _listed_images(ann, images):
    """Every image file a COCO export lists (read once per file per Snakemake run)."""
    with open(ann) as f:
        return [str(Path(images) / im["file_name"]) for im in json.load(f)["images"]]


def real_images(wildcards):
    """Input function: the images of real set `wildcards.dataset`, so replacing a frame reruns what read it."""
    entry = REAL[wildcards.dataset]
    return _listed_images(entry["ann"], entry["images"])


def dir_of(key):
    """params value: the folder of output `key` (derived from the output, as --lint asks)."""
    return lambda wildcards, output: str(Path(output[key]).parent)


def root_of(key):
    """params value: the run folder two levels above input `key` (results/<name>/dataset/x.json)."""
    return lambda wildcards, input: str(Path(input[key]).parent.parent)


def checkpoint_arg(wildcards, input):
    """params value: the evaluate CLI's model source for rules with a `checkpoint` input."""
    return f"--checkpoint {shlex.quote(input.checkpoint)}"


def cfg_json(*keys):
    """The config slice a job uses, as canonical JSON: a params value, so edits rerun what depends on it."""
    node = config
    for key in keys:
        node = node[key]
    return json.dumps(node, sort_keys=True)


def variant_model_cfg(wildcards):
    """The `model` slice with the variant's transfer mode (from_scratch: no pretrained weights)."""
    model = dict(config["model"])
    if wildcards.variant.startswith("mode_"):
        mode = wildcards.variant[len("mode_"):]
        model.update(weights="none", transfer="full") if mode == "from_scratch" else model.update(transfer=mode)
    return json.dumps(model, sort_keys=True)


def variant_train_json(wildcards):
    if wildcards.variant.startswith("n"):
        return f"{OUT}/variants/{wildcards.variant}/train.json"
    return f"{OUT}/dataset/train.json"


# The site-adaptation experiment (workflow/rules/proof.smk)
PROOF = config["proof"]
PROOF_OUT = f"{OUT}/proof"
SITE_B = f"{PROOF_OUT}/site_b"
SITE_B_RENDER = site_b_render(config)  # the render section of site B
SITE_B_SHARDS = [f"{k:03d}" for k in range(PROOF["shards"])]
PROOF_TRAIN = merge(config["train"], {"eval_first": True, **PROOF["train"]})  # curves start at iteration 0
# run name -> (start, N, seed): every row once per seed; the continued-training control is N-independent
PROOF_RUNS = {f"continued_s{seed}" if s == "continued" else f"{s}_n{n}_s{seed}": (s, 0 if s == "continued" else n, seed)
              for s in PROOF["starts"] for n in sorted(PROOF["train_images"]) for seed in PROOF["seeds"]}
PROOF_RUN_RE = "|".join(re.escape(r) for r in PROOF_RUNS)
# the site-A model the adaptations start from: the one the main evaluation scores
BASE_CKPT = f"{OUT}/train/{EVAL_CKPT}"


def proof_model_cfg(wildcards):
    """`model` of a site-B run: the site-A checkpoint in the start's transfer mode, or nothing (from scratch)."""
    return json.dumps(start_model(config["model"], PROOF_RUNS[wildcards.run][0], BASE_CKPT), sort_keys=True)


def proof_train_cfg(wildcards):
    """proof.train with the run's seed (train.seed + proof seed) and, from scratch, proof.scratch_lr if set."""
    start, _, seed = PROOF_RUNS[wildcards.run]
    lr = PROOF["scratch_lr"] if start == "from_scratch" and PROOF["scratch_lr"] else PROOF_TRAIN["lr"]
    return json.dumps({**PROOF_TRAIN, "seed": PROOF_TRAIN["seed"] + seed, "lr": lr}, sort_keys=True)


def proof_train_inputs(wildcards):
    """A run's training set (N site-B images, or site A's split for the control and the pool), validation
    set (site B's), start weights and, for a pooled run, the site-B images mixed in."""
    start, n, _ = PROOF_RUNS[wildcards.run]
    site_b_n = f"{SITE_B}/dataset/n{n}.json"
    out = {"train": f"{OUT}/dataset/train.json" if start in ("continued", "pooled") else site_b_n,
           "val": f"{SITE_B}/dataset/val.json",
           "weights": f"{PROOF_OUT}/weights_{'none' if start == 'from_scratch' else 'site_a'}.json"}
    if start == "pooled":
        out["mix"] = site_b_n
    return out


def proof_mix_args(wildcards, input):
    """params value: a pooled run's --mix-* arguments (empty for the others)."""
    if "mix" not in input.keys():
        return ""
    return (f"--mix-json {shlex.quote(input.mix)} --mix-root {shlex.quote(SITE_B)}"
            f" --mix-fraction {PROOF['pooled_fraction']}")


def proof_info():
    info = {"title": f"hangar-synth: site adaptation ({NAME})", "classes": config["classes"], "iterations": PROOF_TRAIN["iterations"],
            "seeds": PROOF["seeds"], "pooled_fraction": PROOF["pooled_fraction"],
            "batch_size": PROOF_TRAIN["batch_size"], "eval_every": PROOF_TRAIN["eval_every"],
            "test_images": PROOF["test_images"], "val_images": PROOF["val_images"],
            "site_b_render": PROOF["site_b"],
            "site_a_note": f"render section of {NAME}, model trained {config['train']['iterations']} iterations "
                           f"(weights: {config['model']['weights']})"}
    return json.dumps(info, sort_keys=True)


# Training with a site's own frames (real.smk)
REAL_TRAIN = config["real_train"]
RT_SET = REAL_TRAIN["dataset"]
RT_OUT = f"{OUT}/real_train"
RT_DATA = f"{RT_OUT}/data"
RT_TRAIN = merge(config["train"], REAL_TRAIN["train"])


def _real_parts():
    """Images in each part of the real set (the split depends on file names only: known before it runs)."""
    from pipeline.datasets import split_set

    with open(REAL[RT_SET]["ann"]) as f:
        images = json.load(f)["images"]
    parts = split_set({"images": images, "annotations": [], "categories": []}, REAL_TRAIN["split"],
                      REAL_TRAIN["seed"], REAL_TRAIN["split_by"])
    return {name: len(part["images"]) for name, part in parts.items()}


RT_PARTS = _real_parts() if RT_SET else {"train": 0, "val": 0, "test": 0}
if RT_SET and not (RT_PARTS["train"] and RT_PARTS["test"]):
    raise ValueError(f"real_train: the split of datasets.{RT_SET} ({REAL[RT_SET]['ann']}) leaves {RT_PARTS['train']} "
                     f"train and {RT_PARTS['test']} test images (split {REAL_TRAIN['split']}, by "
                     f"{REAL_TRAIN['split_by']}): label more frames, change real_train.split or use split_by: image")
RT_VAL = RT_PARTS["val"] > 0  # validation on the real val part when the split gives it frames
# N of the curve: those under the train part's size, and all of it
RT_NS = sorted({n for n in REAL_TRAIN["curve"] if n < RT_PARTS["train"]} | {RT_PARTS["train"]}) if RT_SET else []
RT_RUNS = [f"{kind}_n{n}" for kind in ("real_only", "syn2real") for n in RT_NS] + ["mixed"]


def rt_entry():
    """The `datasets:` entry trained with (a clear error when real_train.dataset is empty)."""
    if not RT_SET:
        raise ValueError("real_train.dataset is empty: name a `datasets:` entry there to train with real frames "
                         "(README 'Use your own images')")
    return REAL[RT_SET]


def real_model_json(run):
    """`model` of a real run: synthetic -> real starts from the synthetic model, the others (and the synthetic
    model scored as it is, syn2real_n0) as the main model."""
    if run.startswith("syn2real") and run != "syn2real_n0":
        return json.dumps(start_model(config["model"], REAL_TRAIN["transfer"], BASE_CKPT), sort_keys=True)
    return cfg_json("model")


def needs_real_set(paths):
    """Input function of a real_train target: its files, or rt_entry's error (also when they exist already)."""
    return lambda wildcards: (rt_entry(), paths)[1]


def real_set_ann(wildcards):
    """Input function: the prepared real set trained with."""
    rt_entry()
    return f"{OUT}/real/{RT_SET}/ann.json"


def real_val_args(wildcards, input):
    """train CLI arguments of real validation (none when real_train.split.val is 0)."""
    return f"--val-json {shlex.quote(input.val)} --val-root {shlex.quote(rt_entry()['images'])}" if RT_VAL else ""


def real_curve_runs():
    """real-curve CLI --run arguments: kind, training file, metrics, training folder of every run."""
    args = [("syn2real", "-", f"{RT_OUT}/runs/syn2real_n0/eval/metrics.json", "-")]
    for kind in ("real_only", "syn2real"):
        args += [(kind, f"{RT_DATA}/n{n}.json", f"{RT_OUT}/runs/{kind}_n{n}/eval/metrics.json",
                  f"{RT_OUT}/runs/{kind}_n{n}/train") for n in RT_NS]
    args.append(("mixed", f"{RT_DATA}/train.json", f"{RT_OUT}/runs/mixed/eval/metrics.json", f"{RT_OUT}/runs/mixed/train"))
    return args


def real_curve_info():
    return json.dumps({"title": f"hangar-synth: real-label efficiency ({NAME}, {RT_SET})", "classes": config["classes"],
                       "dataset": RT_SET, "split_by": REAL_TRAIN["split_by"], "seed": REAL_TRAIN["seed"],
                       "parts": RT_PARTS, "transfer": REAL_TRAIN["transfer"], "iterations": RT_TRAIN["iterations"],
                       "batch_size": RT_TRAIN["batch_size"], "lr": RT_TRAIN["lr"],
                       "mixed_iterations": config["train"]["iterations"], "mix_fraction": REAL_TRAIN["mix_fraction"],
                       "real_only_start": f"weights: {config['model']['weights']}, transfer: {MAIN_MODE}",
                       "synthetic_model": f"{NAME}, {EVAL_CKPT}"}, sort_keys=True)
