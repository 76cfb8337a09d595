# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

PREFIX ?= /opt/faced

.PHONY: run test lint install install-service uninstall-service bench clean

# Create the venv and install faced with its dev tools. The systemd extra builds against
# libsystemd-dev; it is installed only where pkg-config can see that library.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -e '.[dev,heic,dask,yunet]'
	@if pkg-config --exists libsystemd 2>/dev/null; then \
		$(PIP) install --quiet -e '.[dev,heic,dask,yunet,systemd]'; \
	else echo "note: libsystemd-dev not found; skipping the optional systemd-python extra"; fi
	# face_recognition only to prove our descriptors equal its own (tests only; --no-deps
	# so it cannot pull in a source build of dlib).
	$(PIP) install --quiet --no-deps face_recognition==1.3.0
	touch $@

install: $(STAMP)

run: $(STAMP)
	@mkdir -p photos people
	@echo "faced: drop photos into $(CURDIR)/photos; person folders appear in $(CURDIR)/people (Ctrl-C stops)"
	$(VENV)/bin/faced run --watch photos --output people --state faced-state

test: $(STAMP)
	$(VENV)/bin/ruff check faced tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check faced tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Install faced as a systemd service on a Debian-like server (run as root):
# /opt/faced/venv, /etc/faced/faced.yaml, /var/lib/faced, user `faced`,
# photos read from /srv/photos/library, people published to /srv/photos/people.
install-service:
	@test "$$(id -u)" = 0 || { echo "run as root: sudo make install-service"; exit 1; }
	id -u faced >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/faced \
		--no-create-home --shell /usr/sbin/nologin faced
	test -x $(PREFIX)/venv/bin/python || $(PYTHON) -m venv $(PREFIX)/venv
	$(PREFIX)/venv/bin/pip install --quiet --upgrade pip setuptools wheel
	$(PREFIX)/venv/bin/pip install --quiet '.[heic,yunet,systemd]' || \
		$(PREFIX)/venv/bin/pip install --quiet '.[heic,yunet]'
	install -d -m 0755 /etc/faced /srv/photos/library
	test -e /etc/faced/faced.yaml || install -m 0644 config/faced-service.yaml /etc/faced/faced.yaml
	install -d -m 0755 -o faced -g faced /srv/photos/people
	install -m 0644 systemd/faced.service /etc/systemd/system/faced.service
	systemctl daemon-reload
	systemctl enable --now faced.service
	@echo "faced is running: drop photos into /srv/photos/library; see systemctl status faced"

uninstall-service:
	systemctl disable --now faced.service || true
	rm -f /etc/systemd/system/faced.service
	systemctl daemon-reload
	@echo "kept: /etc/faced, /var/lib/faced, /srv/photos, $(PREFIX) and the faced user"

bench: $(STAMP)
	$(PY) benchmarks/recluster.py --faces 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
