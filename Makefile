# The two commands the README promises. Both set up what they need first (scripts/setup.sh).
.PHONY: setup example test check bench

setup:
	./scripts/setup.sh

# Make the tiny model and build it: GGUFs, adapter, Modelfiles (offline).
example: setup
	.venv/bin/python examples/tiny/make_tiny.py
	.venv/bin/modelkit build examples/tiny/model.toml

# The whole test suite, end-to-end tests included, on two pytest-xdist workers, each on a core of
# its own (tests/conftest.py), a module's tests on one worker (so its fixtures are made once).
test: setup
	MODELKIT_REQUIRE_TOOLCHAIN=1 .venv/bin/pytest -n 2 --dist loadscope --durations=20

# Lint (ruff) and types (mypy), with the rules written down in pyproject.toml. CI runs it first.
check: setup
	.venv/bin/ruff check modelkit tests bench examples
	.venv/bin/mypy

bench: setup
	.venv/bin/python -m bench
