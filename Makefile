# Everything bootstraps its own virtual environment from Python 3.11 and pip.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint bench clean venv

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found (set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m localstack $(if $(DEMO),--demo $(if $(PACE),--pace $(PACE)))

# `make run` plus demonstration cases under demo/policies/ (deadlines in seconds; never for real cases),
# driven through Stage 1, Stage 2, the Ombudsman step and closure in a few minutes. State in var/demo.
demo: $(STAMP)
	$(BIN)/python -m localstack --demo $(if $(PACE),--pace $(PACE))

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# `make test` with the clock of every process it starts moved to DATE (libfaketime): the suite passes
# on any date. make test-at DATE=2031-06-01
.PHONY: test-at
test-at: $(STAMP)
	@test -n "$(DATE)" || { echo "make: give DATE=YYYY-MM-DD" >&2; exit 2; }
	scripts/test_at_date.sh $(DATE)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

.PHONY: contracts
contracts: $(STAMP)
	$(BIN)/python -m starter.contracts

# The Temporal UI as operators see it, in a real headless Chromium (Debian's package; not part of make test).
.PHONY: screenshots
screenshots: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,screenshots]'
	$(BIN)/python scripts/ui_screenshots.py

# Re-record tests/histories/ (the replay test's input). On purpose only: see README, Contributing.
.PHONY: record-histories
record-histories: $(STAMP)
	rm -f tests/histories/*.json
	COMPLAINTS_RECORD_HISTORIES=1 $(BIN)/python -m pytest -q \
		tests/test_stage1.py tests/test_code_stage2.py tests/test_connexus.py tests/test_optivo.py
	@ls tests/histories/

# Faults on the real stack (dev server on a file, PostgreSQL, the worker as its own process), at full
# size: 200 cases, the worker SIGKILLed for 90 s. `make test` runs the same tests at 40 cases.
.PHONY: test-faults
test-faults: $(STAMP)
	COMPLAINTS_FAULT_CASES=200 COMPLAINTS_FAULT_CHAOS_SECONDS=90 COMPLAINTS_FAULT_FULL_HISTORY=1 $(BIN)/python -m pytest -m faults tests/faults -q

# `make bench` (BENCH_SIZE=small for a ~2 minute run; see bench/__main__.py for every knob). Starts its
# own dev server, PostgreSQL and worker; never part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m bench --size $(or $(BENCH_SIZE),full) $(if $(BENCH_OUT),--out $(BENCH_OUT))

# Record the content hash of each new policy version (policies.lock beside the policies; commit it).
# A recorded version never changes: a policy edited without a new version is refused at load.
.PHONY: policy-lock
policy-lock: $(STAMP)
	$(BIN)/python -m domain.policy_lock policies tests/policies bench/policies demo/policies
