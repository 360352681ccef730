# make demo : set up .venv (pinned requirements) and run the smoke workflow end to end
# make test : set up .venv and run the whole test suite (what .ci/run calls)
# make proof: the site-adaptation experiment at CPU scale (configs/proof_cpu.yaml, ~2 h on 2 cores)
# make demo TARGETS=results/smoke/dataset/train.json : build only up to those files/rules
# Targets go before --configfile: it takes every word after it as a config file.
VENV ?= .venv
CORES ?= all
CONFIG ?= configs/smoke.yaml
TARGETS ?=

.PHONY: venv demo run proof test lint clean
venv:
	VENV=$(VENV) scripts/setup_venv.sh

demo: venv
	$(VENV)/bin/snakemake $(TARGETS) --cores $(CORES) --configfile $(CONFIG)

run: venv
	$(VENV)/bin/snakemake $(TARGETS) --cores $(CORES) --configfile configs/default.yaml

proof: venv
	$(VENV)/bin/snakemake proof --cores $(CORES) --configfile configs/proof_cpu.yaml

test: venv
	$(VENV)/bin/python -m pytest -ra

lint: venv
	$(VENV)/bin/snakemake --lint --configfile configs/smoke.yaml

clean:
	rm -rf results .snakemake
