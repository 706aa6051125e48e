# The two set-up commands: `make demo` and `make test`. Each installs what it needs on a fresh machine.
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen --no-sync

.PHONY: setup system-packages demo test ui lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@# Bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
	@# process, each Airflow task and dbt run included, would otherwise recompile what it imports (Airflow: 12 s -> 4 s).
	@$(UV) sync --frozen --quiet --compile-bytecode $(SYNC_GROUPS)

# The programs some tests drive, from Debian when missing and run as root: Java (Spark parity), Redis (the
# Celery stack), Chromium and chromedriver (the browser tests). Without them those tests skip, each naming
# its install line; no test installs anything itself.
SYSTEM_PACKAGES := java:openjdk-17-jre-headless redis-server:redis-server chromium:chromium chromedriver:chromium-driver
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	fi

demo: setup
	$(RUN) campaign-loop demo --fresh

# One worker per core (TEST_WORKERS=n overrides it); tests are grouped by file and by shared world
# (tests/conftest.py). Three workers on two cores took 1,451 s against two's 1,350 s and 13 % more CPU, though
# two leave the cores a fifth idle (bench/RESULTS.md, "make test on a fresh clone").
# The Spark parity test needs dbt-spark and pyspark (the spark group, ~400 MB): `make demo` stays without them.
TEST_WORKERS ?= auto
test: SYNC_GROUPS = --group spark
test: system-packages setup
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

ui: setup
	$(RUN) campaign-loop ui

lint: setup
	$(RUN) ruff check .

bench: setup
	$(RUN) python bench/sim_speed.py

clean:
	rm -rf var .pytest_cache
