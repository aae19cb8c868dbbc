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

run: data visdom-assets
	$(PY) run_tasks.py --hypes hypes/cls/image_classifier_smallcnn_digits.json --tmp_dir var/runs/digits

test: $(STAMP) visdom-assets
	$(PY) -m pytest

clean:
	rm -rf $(VENV) var data

.PHONY: visdom-assets
visdom-assets: $(STAMP)
	PY=$(PY) scripts/visdom_assets.sh
