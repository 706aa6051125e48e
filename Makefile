# The two set-up commands: `make demo` and `make test`. Each installs what it needs on a fresh machine.
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen --no-sync

.PHONY: setup demo test ui lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@# Bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
	@# process, each Airflow task and dbt run included, would otherwise recompile what it imports (Airflow: 12 s -> 4 s).
	@$(UV) sync --frozen --quiet --compile-bytecode $(SYNC_GROUPS)

demo: setup
	$(RUN) campaign-loop demo --fresh

# Tests are grouped by file and by shared world (tests/conftest.py). Three workers per two cores: the
# end-to-end tests wait on servers and subprocesses, and with one worker a core the CPUs stood a quarter idle
# (bench/RESULTS.md, "make test on a fresh clone"). TEST_WORKERS=n overrides it.
# The Spark parity test needs dbt-spark and pyspark (the spark group, ~400 MB): `make demo` stays without them.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(max(2, 3 * (os.cpu_count() or 2) // 2))")
test: SYNC_GROUPS = --group spark
test: setup
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

ui: setup
	$(RUN) campaign-loop ui

lint: setup
	$(RUN) ruff check .

bench: setup
	$(RUN) python bench/sim_speed.py

clean:
	rm -rf var .pytest_cache
