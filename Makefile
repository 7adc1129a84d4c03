# anomseg everyday commands. Each target brings the environment up first when it is missing.
#   make install   create .venv with torch, compiled mmcv (cached wheel), mmengine, mmseg, anomseg_plugins
#   make test      run the test suite without the slow tests (minutes; CI runs it, then make test-slow)
#   make test-slow run only the slow tests (trainings, tools end to end, 2-process runs)
#   make demo      generate data, train the demo model, test it with every scorer, write the report
#   make demo-oe   fine-tune the demo model with outlier exposure (after make demo) and compare it with the base
#   make demo-road-anomaly  generate Cityscapes-layout training data and the four road-anomaly test sets (SMIYC
#                  RoadAnomaly21 / RoadObstacle21, LostAndFound, Fishyscapes L&F), train a Cityscapes demo model,
#                  test it on all four sets in one tools/test.py call, compare (tens of minutes on 2 cores)
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
ROAD_DATA ?= data/road_anomaly_demo
ROAD_CONFIG ?= configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo.py
ROAD_TEST_CONFIG ?= configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo_road_anomaly.py
ROAD_WORK_DIR ?= work_dirs/cityscapes_demo
PYTEST_ARGS ?=

.PHONY: install test test-slow demo demo-data demo-oe demo-road-anomaly bench lint mutation clean-demo
MUTATION_FOLDERS ?=
MUTATION_SAMPLE ?=

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

demo-road-anomaly: $(STAMP)
	@if [ -d $(ROAD_DATA)/dataset_FishyLAF ]; then echo "using existing $(ROAD_DATA)"; \
	else $(PY) tools/dataset/generate_road_anomaly_sets.py --out $(ROAD_DATA); fi
	@test -f $(ROAD_WORK_DIR)/last_checkpoint || $(PY) tools/train.py $(ROAD_CONFIG) --work-dir $(ROAD_WORK_DIR)
	$(PY) tools/test.py $(ROAD_TEST_CONFIG) $$(cat $(ROAD_WORK_DIR)/last_checkpoint) --work-dir $(ROAD_WORK_DIR)/road_anomaly
	$(PY) tools/analysis/compare.py $(ROAD_WORK_DIR)/road_anomaly --sort-by component/sIoU --out $(ROAD_WORK_DIR)/compare
	@echo "table: $(ROAD_WORK_DIR)/compare/comparison.md"

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
	PY=$(PY) MUTATION_SAMPLE=$(MUTATION_SAMPLE) bash tools/mutation/run_mutation.sh $(MUTATION_FOLDERS)

clean-demo:
	rm -rf $(DEMO_WORK_DIR) $(OE_WORK_DIR) $(DEMO_DATA) $(ROAD_WORK_DIR) $(ROAD_DATA)
