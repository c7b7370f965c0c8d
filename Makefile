# The two commands the README promises, and what keeps them true. Each sets up what it needs first
# (scripts/setup.sh: the locked packages of requirements/dev.txt, the llama.cpp toolchain).
.PHONY: setup example test check docs bench lock test-latest _suite

VENV ?= .venv
# The whole test suite, end-to-end tests included, on two pytest-xdist workers, each on a core of
# its own (tests/conftest.py), a module's tests on one worker (so its fixtures are made once).
PYTEST = MODELKIT_REQUIRE_TOOLCHAIN=1 $(VENV)/bin/pytest -n 2 --dist loadscope --durations=20

setup:
	VENV=$(VENV) ./scripts/setup.sh

# Make the tiny model and build it: GGUFs, adapter, Modelfiles (offline).
example: setup
	$(VENV)/bin/python examples/tiny/make_tiny.py
	$(VENV)/bin/modelkit build examples/tiny/model.toml

test: setup
	$(PYTEST)

# Lint (ruff) and types (mypy), with the rules written down in pyproject.toml; the documentation's
# generated references current, and the site built strict: a broken link or anchor fails
# (NO_MKDOCS_2_WARNING: without the banner of Material's end-of-life notice). CI runs it first.
check: setup
	$(VENV)/bin/ruff check modelkit tests bench examples scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/python scripts/docs_reference.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# The documentation site on http://127.0.0.1:8000, reloading as docs/ changes (mkdocs.yml); the
# references (docs/reference/spec.md, cli.md) regenerated from the code first.
docs: setup
	$(VENV)/bin/python scripts/docs_reference.py
	$(VENV)/bin/mkdocs serve

bench: setup
	$(VENV)/bin/python -m bench

# Resolve the development environment afresh into requirements/ (commit the change on its own).
lock:
	./scripts/lock.sh

# The suite against the newest releases pyproject.toml allows, in .venv-latest; the lock is not touched.
test-latest:
	VENV=.venv-latest UNLOCKED=1 ./scripts/setup.sh
	$(MAKE) --no-print-directory VENV=.venv-latest _suite

_suite:
	$(PYTEST)
