# hangar-synth: render -> annotate -> split -> weights -> train -> evaluate -> report
#   snakemake --cores all --configfile configs/smoke.yaml      (tiny demo)
#   snakemake --cores all                                      (configs/default.yaml)
#   snakemake proof --cores all --configfile configs/proof_cpu.yaml  (site-adaptation experiment)
# Targets (files, rules) go before --configfile: it takes every word up to the next option as a config file.
# Scene code (blender/*.py) and asset files are render's declared inputs; edits to pipeline/ modules
# are not seen by Snakemake: rerun with -R <rule>.
import json
import shlex
import sys
from pathlib import Path

# The Snakefile itself imports the config checks from this repo; jobs find `pipeline` and
# `blender` because scripts/setup_venv.sh installs the repo into the venv (pip -e).
sys.path.insert(0, workflow.basedir)


include: "workflow/rules/common.smk"


# Light steps, and `weights` (needs internet to fill the hub cache), run on the submit host.
localrules:
    all,
    weights,
    split,
    subset,
    compare_modes,
    data_efficiency,
    people_sheet,
    jack_sheet,
    proof,
    proof_weights,
    proof_subset,
    proof_split,
    prepare_real,
    evaluate_real_all,
    real_split,
    real_subset,
    real_weights,
    real_models,
    real_curve,


wildcard_constraints:
    shard=r"\d{3}",
    images=r"\d+",
    variant=r"mode_(feature_extraction|fine_tune|full|from_scratch)|n\d+",
    cls=r"[a-z_]+",
    start=r"feature_extraction|fine_tune|from_scratch",
    source=r"site_a|none",
    dataset=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    kind=r"real_only|syn2real",
    run=r"(real_only|syn2real)_n\d+|mixed",


rule all:
    input:
        f"{OUT}/report/index.html",
        # training with a site's frames, when real_train names a set: the efficiency curve and its models
        [f"{OUT}/real_train/index.html"] if config["real_train"]["dataset"] else [],


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/real.smk"
include: "workflow/rules/proof.smk"
