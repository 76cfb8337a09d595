# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: run test lint install install-service bench clean

# Create the venv and install faced with its dev tools. The systemd extra builds against
# libsystemd-dev; it is installed only where pkg-config can see that library.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -e '.[dev]'
	@if pkg-config --exists libsystemd 2>/dev/null; then \
		$(PIP) install --quiet -e '.[dev,systemd]'; \
	else echo "note: libsystemd-dev not found; skipping the optional systemd-python extra"; fi
	# face_recognition only to prove our descriptors equal its own (tests only; --no-deps
	# so it cannot pull in a source build of dlib).
	$(PIP) install --quiet --no-deps face_recognition==1.3.0
	touch $@

install: $(STAMP)

run: $(STAMP)
	@mkdir -p photos people
	$(VENV)/bin/faced run --watch photos --output people --state faced-state

test: $(STAMP)
	$(VENV)/bin/ruff check faced tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check faced tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/recluster.py --faces 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
