# LabelOps: `make run` brings the platform up on embedded defaults; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_LS := .venv-ls
PY := $(VENV)/bin/python
PIP_FLAGS ?= --disable-pip-version-check --quiet

.PHONY: run up test test-fast venv browser redis fonts lint lock bench clean help translations

help:
	@echo "make run    - start PostgreSQL, Label Studio, Airflow and the web app; run the demo loop"
	@echo "make test   - run the test suite (real PostgreSQL, Label Studio, Airflow, Chromium)"
	@echo "make bench  - run the benchmarks under bench/ (figures to bench/results/)"
	@echo "make lint   - ruff, mypy and the import-linter layering contracts"
	@echo "make lock   - recompile requirements*.txt from requirements*.in"

run up: venv
	$(PY) -m include.runtime.stack $(ARGS)

test: venv browser redis fonts
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not browser and not labelstudio and not airflow and not slow" $(PYTEST_ARGS)

venv: $(VENV)/.installed $(VENV_LS)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

$(VENV_LS)/.installed: requirements-labelstudio.txt
	test -x $(VENV_LS)/bin/python || $(PYTHON) -m venv $(VENV_LS)
	$(VENV_LS)/bin/python -m pip install $(PIP_FLAGS) -r requirements-labelstudio.txt
	touch $@

# Headless Chromium for the browser tests (Debian package; Playwright never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)) >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

# Redis for the CeleryExecutor (make run ARGS=--celery, and its test): Debian's redis-server.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq redis-server || (apt-get update -qq && apt-get install -y -qq redis-server)) >/dev/null; \
	  else echo "the CeleryExecutor test needs Debian's redis-server: sudo apt-get install redis-server"; fi; }

# A CJK font, so charts with Chinese labels render (and the chart test can check they do).
fonts:
	@fc-list 2>/dev/null | grep -qiE "wqy|noto sans cjk" || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq fonts-wqy-microhei || (apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei)) >/dev/null; \
	  else echo "charts need a CJK font for Chinese labels: sudo apt-get install fonts-wqy-microhei"; fi; }

# Page strings: extract them, merge them into the zh-CN catalog (translate the new ones in
# webapp/translations/zh_Hans_CN/LC_MESSAGES/messages.po), compile it; tests fail on any left untranslated.
translations: venv
	PYTHONPATH=. $(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k _t --no-location --sort-output \
		--project LabelOps -o webapp/translations/messages.pot .
	$(VENV)/bin/pybabel update -i webapp/translations/messages.pot -d webapp/translations -D messages --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d webapp/translations -D messages

lint: venv
	$(VENV)/bin/ruff check dags include webapp plugins tests bench
	$(VENV)/bin/ruff format --check dags include webapp plugins tests bench
	$(VENV)/bin/mypy include webapp
	$(VENV)/bin/lint-imports

lock:
	$(PY) -m pip install $(PIP_FLAGS) pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	sed -i 's/^torch==\(.*\)+cpu$$/torch==\1/' requirements.txt
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-labelstudio.txt requirements-labelstudio.in

bench: venv
	$(PY) -m bench

clean:
	rm -rf .labelops/logs .pytest_cache
