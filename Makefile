# Two entry points for a newcomer: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser balancer serve test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: install
	$(BIN)/voice-agent serve

# The console's browser test drives Debian's Chromium (a downloaded browser cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
		|| echo "chromium is not installed: the browser tests will be skipped"

# The multi-worker tests put Debian's HAProxy in front of the workers, as deploy/ does.
balancer:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy >/dev/null; } \
		|| echo "haproxy is not installed: the multi-worker tests will be skipped"

test: install browser balancer
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -rs

bench: install
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
