# anomseg everyday commands. Each target brings the environment up first when it is missing.
#   make install   create .venv with torch, compiled mmcv (cached wheel), mmengine, mmseg, anomseg_plugins
#   make test      run the test suite without the slow tests (minutes; CI runs it, then make test-slow)
#   make test-slow run only the slow tests (trainings, tools end to end, 2-process runs)
#   make demo      generate data, train the demo model, test it with every scorer, write the report
#   make demo-oe   fine-tune the demo model with outlier exposure (after make demo) and compare it with the base
#   make bench     run the benchmarks in benchmarks/
#   make lint      flake8, isort --check, yapf --diff over the tracked Python files (setup.cfg holds the style)
#   make mutation  mutation testing of evaluation/, scorers/, datasets/transforms/ (hours; not part of make test)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.anomseg-installed
DEMO_DATA ?= data/streethazards_demo
DEMO_CONFIG ?= configs/demo/deeplab_r18_tiny_demo.py
DEMO_ANOMALY_CONFIG ?= configs/demo/deeplab_r18_tiny_demo_anomaly.py
DEMO_WORK_DIR ?= work_dirs/demo
OE_CONFIG ?= configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py
OE_ANOMALY_CONFIG ?= configs/outlier_exposure/deeplab_r18_tiny_demo_oe_anomaly.py
OE_WORK_DIR ?= work_dirs/demo_oe
PYTEST_ARGS ?=

.PHONY: install test test-slow demo demo-data demo-oe bench lint mutation clean-demo
MUTATION_FOLDERS ?=

install: $(STAMP)

$(STAMP): tools/install/install_env.sh requirements.txt setup.py
	VENV=$(VENV) bash tools/install/install_env.sh
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS) tests

demo-data: $(STAMP)
	@if [ -f $(DEMO_DATA)/test/test.odgt ]; then echo "using existing $(DEMO_DATA)"; \
	else $(PY) tools/dataset/generate_streethazards.py --out $(DEMO_DATA); fi

demo: demo-data
	bash tools/demo.sh $(PY) $(DEMO_CONFIG) $(DEMO_ANOMALY_CONFIG) $(DEMO_WORK_DIR) $(DEMO_DATA)

demo-oe: $(STAMP)
	@test -f $(DEMO_WORK_DIR)/last_checkpoint || $(MAKE) demo
	bash tools/demo_oe.sh $(PY) $(DEMO_WORK_DIR) $(OE_CONFIG) $(OE_ANOMALY_CONFIG) $(OE_WORK_DIR)

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do \
	  if [ $$b = benchmarks/bench_outlier_exposure.py ] && [ ! -f $(DEMO_WORK_DIR)/last_checkpoint ]; then \
	    echo "== $$b skipped: it needs the demo model, run 'make demo' (and 'make demo-oe' to reuse its fine-tuning)"; \
	    continue; fi; \
	  echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	@files=$$(git ls-files '*.py'); \
	$(VENV)/bin/flake8 $$files && $(VENV)/bin/isort --check-only --diff $$files && \
	  diff=$$($(VENV)/bin/yapf --diff $$files) && test -z "$$diff" || { echo "$$diff"; \
	  echo "lint failed: fix the findings above, or format with: $(VENV)/bin/isort \$$(git ls-files '*.py') && $(VENV)/bin/yapf -i \$$(git ls-files '*.py')" >&2; exit 1; }
	@echo "lint: flake8, isort and yapf clean"

mutation: $(STAMP)
	PY=$(PY) bash tools/mutation/run_mutation.sh $(MUTATION_FOLDERS)

clean-demo:
	rm -rf $(DEMO_WORK_DIR) $(OE_WORK_DIR) $(DEMO_DATA)
