# The two front doors: `make test` and `make demo`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo install redis rabbitmq system-deps lint bench sandbox worker clean messages readme

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

# RabbitMQ on 127.0.0.1:5672 for the RabbitMQ-broker proof: installed (apt-get) and started when missing.
rabbitmq:
	@bash .ci/rabbitmq.sh

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
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { \
	  echo "installing fonts-noto-cjk (apt-get; Chinese pages and screenshots need a CJK font)"; \
	  (apt-get update -qq && apt-get install -y -qq fonts-noto-cjk) >/dev/null 2>&1 || \
	  echo "warning: could not install fonts-noto-cjk" >&2; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing npm (apt-get) for axe-core"; \
	  (apt-get update -qq && apt-get install -y -qq npm) >/dev/null 2>&1 || \
	  echo "warning: could not install npm" >&2; }
	@test -f node_modules/axe-core/axe.min.js || { \
	  echo "installing axe-core from the npm registry into ./node_modules (package-lock.json)"; \
	  npm ci --no-audit --no-fund --loglevel=error || echo "warning: could not install axe-core" >&2; }

# pytest in two processes (pytest-xdist): the suite mostly waits (kill -9 proofs, failovers, schedules),
# so two of them overlap their waits. Whole test files go to one process (their module fixtures start
# workers once). Serially: make test PYTEST_ARGS=-n0
PYTEST_ARGS ?= -n 2 --dist loadfile

test: install redis rabbitmq system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install redis
	$(BIN)/sharer demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install redis
	$(BIN)/python bench/throughput.py

sandbox: install
	$(BIN)/sharer sandbox

worker: install redis
	$(BIN)/celery -A tasks worker --loglevel=INFO

# Re-extract the dashboard's strings and merge them into the catalogs (then translate the new msgids;
# tests/test_web_i18n.py fails while one is untranslated). Catalogs are compiled in memory at start-up.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o sharer/web/translations/messages.pot .
	$(BIN)/pybabel update -i sharer/web/translations/messages.pot -d sharer/web/translations -D messages \
	  --no-wrap --ignore-obsolete --no-fuzzy-matching

# README's platform table and id list, from the registry and each docs/platforms/<id>.md page.
readme: install
	$(BIN)/python docs/platforms/readme_table.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info node_modules
