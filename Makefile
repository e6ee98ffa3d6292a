# drsorch: the two commands (make run, make test) and the tooling around them.
# Everything installs into .venv from the pinned requirements files; no system package is
# needed except for make test-e2e, which installs PostgreSQL, Redis and Chromium itself.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-e2e lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

# Runs the web server and a django-q2 worker together until Ctrl-C or SIGTERM. DEBUG defaults
# to true here (a laptop demo); production serving is described in docs/deployment.md.
# Both run in the background and the shell waits for them with `wait`: a shell runs a trap only
# once its foreground command ends, but interrupts `wait` at once. The trap sends SIGTERM to
# both, once (background commands of a script ignore SIGINT); the worker stops within a few
# seconds, since its poller tasks are short (docs/deployment.md, "Polling"). The worker runs
# in its own session so that Ctrl-C reaches it only through the trap: django-q2's qcluster
# deadlocks when a second signal lands while it handles the first (both call Event.set()).
# If the web server exits on its own, the worker is stopped too.
run: $(VENV)/.installed-run
	@set -e; export DEBUG=$${DEBUG:-true}; \
	$(PY) manage.py migrate --noinput; \
	$(PY) manage.py migrate --database sandbox --noinput; \
	$(PY) manage.py bootstrap --url http://$(HOST):$(PORT)/; \
	QPID=; WPID=; set +e; \
	trap 'trap "" INT TERM; kill -TERM $$WPID $$QPID 2>/dev/null; wait $$WPID $$QPID 2>/dev/null; exit 0' INT TERM; \
	$(PY) -c 'import os, sys; os.setsid(); os.execv(sys.executable, [sys.executable, "manage.py", "qcluster"])' & \
	QPID=$$!; \
	$(PY) manage.py runserver --noreload $(HOST):$(PORT) & WPID=$$!; \
	wait $$WPID; \
	kill -TERM $$WPID $$QPID 2>/dev/null; wait $$WPID $$QPID 2>/dev/null; exit 0

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n 2

test-e2e: $(VENV)/.installed-dev
	bash .ci/e2e.sh

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .

format: $(VENV)/.installed-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(VENV)/.installed-dev
	$(PY) bench/engine.py --executions 50 --waves 3 --servers-per-wave 20 --targets 5 --json
	$(PY) bench/pages.py

clean:
	rm -rf $(VENV) staticfiles artifacts
