# LabCLIP Book: two commands do everything on a fresh machine.
#   make book   set up .venv, execute every chapter once, build the website into _build/html
#   make test   set up .venv, then ruff, unit tests, every chapter executed once, strict site build, site checks
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export LABCLIP_PROFILE ?= offline
export LABCLIP_CACHE_DIR ?= $(CURDIR)/.cache/labclip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup lint unit notebooks site check-site book test sync clean

help:
	@echo "make book   - set up, execute every chapter, build the site into _build/html"
	@echo "make test   - set up, lint, unit tests, execute every chapter, strict site build, site checks"
	@echo "make sync   - regenerate the output-free .ipynb twins from notebooks/*.py"
	@echo "make clean  - remove _build/ and _stage/ (keeps .venv and the cache)"

$(STAMP): requirements.txt pyproject.toml
	@if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install -r requirements.txt -e .
	@touch $@

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

unit: setup
	$(PY) -m pytest

notebooks: setup
	$(PY) tools/book.py stage
	$(PY) tools/book.py execute

site: notebooks
	$(PY) tools/book.py build

check-site: site
	$(PY) -m pytest -m built_site

book: site
	@echo "Website: $(CURDIR)/_build/html/index.html"

test: lint unit check-site

sync: setup
	$(PY) tools/book.py sync

clean:
	rm -rf _build _stage
