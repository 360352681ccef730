# hangar-synth: render -> annotate -> split -> weights -> train -> evaluate -> report
#   snakemake --cores all --configfile configs/smoke.yaml      (tiny demo)
#   snakemake --cores all                                      (configs/default.yaml)
# Edits to pipeline/ or blender/ modules are not seen by Snakemake: rerun with -R <rule>.
import json
import os
import shlex
import sys
from pathlib import Path

# Jobs run `python -m pipeline|blender.render` from any --directory: put this repo on their path.
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from pipeline.config import load_config, validate

if not config:
    config.update(load_config(Path(workflow.basedir) / "configs" / "default.yaml"))
config = validate(dict(config), "config (--configfile/--config)")

PY = shlex.quote(sys.executable)
NAME = config["name"]
OUT = f"results/{NAME}"
SHARDS = [f"{k:03d}" for k in range(config["render"]["shards"])]
EVAL_SPLIT = config["evaluate"]["split"]


def cfg_json(*keys):
    """The config slice a rule uses, as canonical JSON: a params value, so edits rerun that rule."""
    node = config
    for key in keys:
        node = node[key]
    return json.dumps(node, sort_keys=True)


# Light steps, and `weights` (needs internet to fill the hub cache), run on the submit host.
localrules:
    all,
    weights,
    split,


wildcard_constraints:
    shard=r"\d{3}",


rule all:
    input:
        f"{OUT}/report/index.html",


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
