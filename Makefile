# Two entry points for a fresh machine: `make run` and `make test`.
# Each creates .venv and installs what is missing; a second call is quick.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install data clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

data: $(STAMP)
	$(PY) scripts/cls/digits/prepare.py --out data/digits

# The whole stack: nginx on 8080 in front of the control service, with the digits data and the first
# pretrained weights made when absent. Ctrl-C stops everything.
run: data visdom-assets
	scripts/system_packages.sh --optional nginx
	$(PY) scripts/weights/make_first.py
	$(PY) scripts/nginx/run_stack.py

# Two workers, each taking whole test files (a file's module fixtures are started once): most tests wait
# on real processes and servers, so two run side by side on two cores.
test: $(STAMP) visdom-assets system-packages
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

# nginx, chromium and postgresql from Debian (for the nginx, browser and PostgreSQL tests); quick when present.
.PHONY: system-packages
system-packages:
	scripts/system_packages.sh

clean:
	rm -rf $(VENV) var data

.PHONY: visdom-assets
visdom-assets: $(STAMP)
	PY=$(PY) scripts/visdom_assets.sh
