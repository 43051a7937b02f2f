# LabCLIP Book: two commands do everything on a fresh machine.
#   make book   set up .venv, execute every chapter once, build the website into _build/html
#   make test   set up .venv, then ruff, unit tests, every chapter executed once, strict site build, site checks
#               (including every page opened in headless chromium, which it installs when missing)
#   make rehearse  the paper profile rehearsed on this machine: a local mirror of every dataset in its real format,
#               random-init checkpoint files, every chapter executed, the site built with -W (CI runs it too)
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

.PHONY: help setup browser lint unit notebooks site teaching-kit check-site book test rehearse artifacts sync clean

help:
	@echo "make book   - set up, execute every chapter, build the site into _build/html"
	@echo "make test   - set up, lint, unit tests, execute every chapter, strict site build, site checks"
	@echo "make rehearse - run every chapter in the paper profile against a local mirror (no downloads)"
	@echo "make artifacts - pack the miniature and shared embeddings for Colab (after make book)"
	@echo "make sync   - regenerate the output-free .ipynb twins from notebooks/*.py"
	@echo "make clean  - remove _build/, _stage/ and _rehearsal/ (keeps .venv and the cache)"

$(STAMP): requirements.txt pyproject.toml
	@if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install -r requirements.txt -e .
	@touch $@

setup: $(STAMP)

# The browser test drives Debian's chromium (test tools' own browser downloads do not work here). Installed when
# missing; LABCLIP_SKIP_BROWSER=1 opts out (the browser test is then skipped and says so).
browser:
	@if [ "$${LABCLIP_SKIP_BROWSER:-0}" = 1 ]; then echo "LABCLIP_SKIP_BROWSER=1: no browser test"; \
	elif [ -n "$${LABCLIP_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else echo "The browser test needs chromium: install it (Debian: apt-get install chromium), set LABCLIP_CHROMIUM," \
		"or opt out with LABCLIP_SKIP_BROWSER=1"; exit 1; fi

# ruff, then the package's layering (import-linter's contracts in pyproject.toml: no cycle, no upward import).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Two workers (the CI machine's cores); the slowest tests are listed, so a slow one shows in CI's log.
unit: setup
	$(PY) -m pytest -n 2 --durations=10

notebooks: setup
	$(PY) tools/book.py stage
	$(PY) tools/book.py execute

site: notebooks
	$(PY) tools/book.py build
	$(PY) tools/book.py teaching

# The teacher's kit alone (figure pack, instructor edition), from an executed and built book.
teaching-kit: setup
	$(PY) tools/book.py teaching

check-site: site browser
	$(PY) -m pytest -m built_site

book: site
	@echo "Website: $(CURDIR)/_build/html/index.html"

test: lint unit check-site

# The Colab fast path: the cache entries the last build used (the miniature, shared embeddings) in one archive.
artifacts: setup
	$(PY) -m labclip_utils artifacts pack $(LABCLIP_CACHE_DIR) _build/artifacts --since-file _stage/_toc.yml

rehearse: setup
	$(PY) tools/rehearse.py

sync: setup
	$(PY) tools/book.py sync

clean:
	rm -rf _build _stage _rehearsal
