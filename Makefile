# `make run`  : fresh machine -> .venv -> the app on the built-in demo match
# `make test` : refresh .venv, ruff, pytest
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
# beyond loopback (ADDRESS=0.0.0.0) the app starts only with a login: README, "Running it for a team"
ADDRESS ?= 127.0.0.1

.PHONY: venv run test lint bench chromium clean bench-soccernet-features

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) -m streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

# Debian chromium for the one real-browser test; skipped (not failed) where apt is unavailable.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will skip"; \
	  else echo "no root apt-get: the browser test will skip"; fi; }

lint: venv
	$(PY) -m ruff check .

test: venv chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: venv
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# TF/Keras vs our torch ResNet-152 + PCA (bench/soccernet_features.py); TF only in this bench venv.
TF_VENV ?= .venv-tf
$(TF_VENV)/.installed:
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install -q tensorflow-cpu h5py opencv-python-headless imutils
	touch $@

bench-soccernet-features: venv $(TF_VENV)/.installed
	$(PY) bench/soccernet_features.py --tf-python $(TF_VENV)/bin/python --require-tf

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
