# The two commands: `make book` (full build of the book) and `make test` (quick build + all tests).
# Each target sets up what it needs on a fresh machine: the virtualenv, MathJax (npm), Chromium (apt).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3.11
VENV     := .venv
PY       := $(VENV)/bin/python
JB       := $(VENV)/bin/jupyter-book
STAMP    := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
# Fashion-MNIST's four official files, from Debian's dataset-fashion-mnist (MIT, Zalando SE)
FASHION  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
MATHJAX_VERSION := 3.2.2
MATHJAX_SRC := node_modules/mathjax/es5/tex-chtml.js
MATHJAX  := _vendor/mathjax/tex-chtml.js
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)
# The checkout's own `golden` package, also for the Jupyter kernels (they inherit the environment).
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help setup book test lint pdf lab reproduce clean

help:
	@echo "make book       execute every chapter (full mode) and build the HTML book into _build/html"
	@echo "make test       GOLDEN_QUICK=1 pytest tests/ (builds the book in quick mode, checks it in Chromium)"
	@echo "make lint       ruff check golden tests tools (88 columns; pyproject.toml [tool.ruff])"
	@echo "make pdf        build the book as make book does, then print it to _build/pdf/book.pdf (offline)"
	@echo "make lab        JupyterLab on 127.0.0.1, the chapters (.md) open as notebooks"
	@echo "make reproduce  run the book's experiment protocol (python -m golden sweep all --protocol book)"
	@echo "make setup      only install: .venv, MathJax, Chromium, Fashion-MNIST"
	@echo "make clean      remove _build and the MathJax copy in _vendor"

# --- set-up -----------------------------------------------------------------------------------
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

# MathJax 3 from npm, copied to _vendor/mathjax; Sphinx copies _vendor into the book's root
# (html_extra_path), so pages load ../mathjax/tex-chtml.js and nothing from a CDN.
$(MATHJAX_SRC):
	npm install --prefix "$(CURDIR)" --no-save --no-audit --no-fund --no-package-lock mathjax@$(MATHJAX_VERSION)
	test -f $@ && touch $@

$(MATHJAX): $(MATHJAX_SRC)
	rm -rf _vendor/mathjax
	mkdir -p _vendor
	cp -r node_modules/mathjax/es5 _vendor/mathjax
	@# only the TeX-to-CHTML bundle is used: drop the other combined bundles and the CDN loader
	cd _vendor/mathjax && rm -f tex-svg*.js tex-mml-*.js mml-*.js tex-chtml-full*.js node-main.js latest.js
	touch $@

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium \
	  || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; }

$(FASHION):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y dataset-fashion-mnist \
	  || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y dataset-fashion-mnist; }

setup: $(STAMP) $(MATHJAX) $(CHROMIUM) $(FASHION)

# --- the book ---------------------------------------------------------------------------------
book: $(STAMP) $(MATHJAX) $(FASHION)
	$(JB) build .
	@echo "book: $(CURDIR)/_build/html/index.html"

test: $(STAMP) $(MATHJAX) $(CHROMIUM) $(FASHION)
	export GOLDEN_QUICK=1 CHROMIUM="$(CHROMIUM)"; $(PY) -m pytest tests/

lint: $(STAMP)
	$(VENV)/bin/ruff check golden tests tools

# --- the chapters as notebooks ---------------------------------------------------------------
# JupyterLab on 127.0.0.1 (port 8888 or the next free one, or $JUPYTER_PORT). Jupytext's
# contents manager serves each MyST chapter as a notebook and saves it back as MyST text; the
# settings in tools/jupyterlab-settings.json make a click on a .md file open that notebook.
# Kernels inherit this environment: `GOLDEN_QUICK=1 make lab` runs the chapters in quick mode.
# Jupyter refuses to run as root without --allow-root; as root (CI, containers) it is added.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d/golden.json
LAB_ARGS     ?=

$(LAB_SETTINGS): tools/jupyterlab-settings.json $(STAMP)
	mkdir -p $(@D)
	cp $< $@

lab: $(STAMP) $(LAB_SETTINGS)
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(CURDIR)" \
	  --ServerApp.contents_manager_class=jupytext.AsyncTextFileContentsManager \
	  --LabApp.default_url=/lab/tree/chapters $(if $(SUDO),,--allow-root) $(LAB_ARGS)

# --- the PDF ----------------------------------------------------------------------------------
# The book is built as by `make book`; tools/book_pdf.py then builds one page from its executed
# notebooks (singlehtml, nothing executed again), serves it on 127.0.0.1 and prints it with
# headless Chromium once MathJax has typeset every formula. `GOLDEN_QUICK=1 make pdf`: quick.
PDF := _build/pdf/book.pdf

pdf: book $(CHROMIUM)
	$(PY) tools/book_pdf.py _build $(PDF)

reproduce: $(STAMP) $(FASHION)
	$(PY) -m golden sweep all --protocol book

clean:
	rm -rf _build _vendor
