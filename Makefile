# Mizani developer commands. `make demo` and `make test` are the two that matter.
#
# The virtualenv (.venv) is created on first use from requirements-dev.txt and
# reinstalled whenever requirements*.txt change (stamp file .venv/.installed).

PYTHON_BOOT ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
STAGE       ?= dev
ROLE        ?= buyer
SUB         ?= $(ROLE)-1
PHONE       ?= +250788123456
SEED        ?= 1
ORDERS      ?= 10000
JOBS        ?= 1
RATE        ?= 10000
SCALE_ARGS  ?=
SIM_ARGS    ?=
PYTEST_ARGS ?=
ASL_FILES   := $(wildcard infra/*.asl.json)
ASL_LOCAL   := .tools/node_modules/.bin/asl-validator

.PHONY: help demo test run ussd sim scale bench token package asl policies venv clean browser screenshots

help:
	@echo "make demo      the coffee story end to end on the embedded sandbox"
	@echo "make test      every test (unit, adapters, flows, static)"
	@echo "make run       serve the API on :8000 and the provider simulators on :8001 until Ctrl-C"
	@echo "make token ROLE=buyer SUB=buyer-1   a local-stage JWT"
	@echo "make ussd PHONE=+250788123456   a basic phone in the terminal, dialling the USSD menu of make run"
	@echo "make sim SEED=1 ORDERS=10000 [JOBS=2]   the deterministic simulator: the money path under faults, invariants after every step"
	@echo "make scale RATE=10000   the scale model: DynamoDB keys' WCU/s, conflicts, Step Functions, cost per order at RATE movements/s"
	@echo "make bench     benchmarks (prints figures)"
	@echo "make browser   the finance console's browser tests (Playwright on Debian's chromium)"
	@echo "make screenshots   the same tests, saving the console's pictures in docs/ (the README shows them)"
	@echo "make package STAGE=dev   CloudFormation package in build/package (chalice package + infra merge template)"
	@echo "make asl       validate infra/*.asl.json with asl-validator (needs node)"
	@echo "make policies  regenerate policies/<stage>/*.json and their config.json entries from infra/policies.py"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

demo: $(STAMP)
	$(PY) -m sandbox.demo

test: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider $(PYTEST_ARGS)

run: $(STAMP)
	$(PY) -m sandbox.run

ussd: $(STAMP)
	@$(PY) -m sandbox.ussd_phone $(PHONE)

sim: $(STAMP)
	$(PY) -m sim --seed $(SEED) --orders $(ORDERS) --jobs $(JOBS) $(SIM_ARGS)

scale: $(STAMP)
	$(PY) -m sim.scale --rate $(RATE) $(SCALE_ARGS)

bench: $(STAMP)
	$(PY) -m bench

browser: $(STAMP)
	$(PY) -m pytest tests/browser -p no:cacheprovider $(PYTEST_ARGS)

screenshots: $(STAMP)
	MIZANI_SCREENSHOTS=docs $(PY) -m pytest tests/browser -p no:cacheprovider $(PYTEST_ARGS)

token: $(STAMP)
	@$(PY) -m sandbox.token $(ROLE) $(SUB)

policies: $(STAMP)
	$(PY) -m infra.policies

package: $(STAMP)
	$(PY) -m infra.policies --check
	$(PY) -m infra.build build/resources.json --stage $(STAGE)
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) \
		--pkg-format cloudformation --merge-template build/resources.json build/package
	$(PY) -m infra.bytecode build/package/*.zip
	@echo "deploy: aws cloudformation package --template-file build/package/sam.json --s3-bucket <bucket> --output-template-file build/package/packaged.yaml"
	@echo "        aws cloudformation deploy --template-file build/package/packaged.yaml --stack-name mizani-$(STAGE) --capabilities CAPABILITY_IAM --parameter-overrides Stage=$(STAGE)"

asl:
	@if [ -z "$(ASL_FILES)" ]; then echo "no infra/*.asl.json"; exit 0; fi; \
	if [ -x $(ASL_LOCAL) ]; then validator=$(ASL_LOCAL); \
	elif command -v npx >/dev/null 2>&1; then validator="npx --yes asl-validator@4.0.0"; \
	else echo "asl: node/npx not found; skipping ASL validation"; exit 0; fi; \
	for f in $(ASL_FILES); do echo "asl-validator $$f"; $$validator --json-path $$f || exit 1; done

clean:
	rm -rf build .tools
