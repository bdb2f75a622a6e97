# `make demo` and `make test` set up .venv on first use (torch pinned to the local CPU wheel).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-images test lint bench clean

$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c .ci/constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c .ci/constraints.txt -e '.[sdv,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synthaug run pipelines/penguins.yaml --overwrite
	@echo "output: out/penguins (data/ shards, manifest.json, report.html, report.json, junit.xml, model/)"

demo-images: $(STAMP)
	$(VENV)/bin/synthaug run pipelines/digits.yaml --overwrite
	@echo "output: out/digits (data/ Hugging Face Parquet image shards, manifest.json, report.html, model/)"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/tabular.py

clean:
	rm -rf out .pytest_cache
