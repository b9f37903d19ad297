# The few commands the README names. Everything lives in .venv beside this file.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format bench clean chromium

setup: $(STAMP) chromium

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,server]"
	@touch $(STAMP)

# The browser test drives Debian's chromium headless: installed here when missing and root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "note: no chromium (apt-get install chromium); the browser test will be skipped"

demo: setup
	$(BIN)/openvasa demo -o out/demo.mp4

test: setup
	$(BIN)/ruff check openvasa tests tools
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check openvasa tests tools
	$(BIN)/ruff format --check openvasa tests tools

format: setup
	$(BIN)/ruff format openvasa tests tools

bench: setup
	$(BIN)/openvasa bench

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
