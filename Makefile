# make demo : set up .venv (pinned requirements) and run the smoke workflow end to end
# make test : set up .venv and run the whole test suite (what .ci/run calls)
VENV ?= .venv
CORES ?= all
CONFIG ?= configs/smoke.yaml

.PHONY: venv demo run test lint clean
venv:
	VENV=$(VENV) scripts/setup_venv.sh

demo: venv
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)

run: venv
	$(VENV)/bin/snakemake --cores $(CORES) --configfile configs/default.yaml

test: venv
	$(VENV)/bin/python -m pytest -ra

lint: venv
	$(VENV)/bin/snakemake --lint --configfile configs/smoke.yaml

clean:
	rm -rf results .snakemake
