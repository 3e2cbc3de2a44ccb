# The two front doors: `make test` and `make demo`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo install redis system-deps lint bench sandbox worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Start a throwaway Redis on 127.0.0.1:6379 when none answers (nothing kept on disk).
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
	  redis-server --daemonize yes --port 6379 --save "" --appendonly no >/dev/null
	@for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	  echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1

# System tools the tests use, from Debian's packages when missing (CI runs as root).
system-deps:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing docker-compose (apt-get)"; \
	  (apt-get update -qq && apt-get install -y -qq docker-compose) >/dev/null 2>&1 || \
	  echo "warning: could not install docker-compose" >&2; }
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium for the browser test (apt-get; never a downloaded browser)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	  echo "warning: could not install chromium" >&2; }

test: install redis system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest

demo: install redis
	$(BIN)/sharer demo

lint: install
	$(BIN)/ruff check .

bench: install redis
	$(BIN)/python bench/throughput.py

sandbox: install
	$(BIN)/sharer sandbox

worker: install redis
	$(BIN)/celery -A tasks worker --loglevel=INFO

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
