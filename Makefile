# EdgeFarm developer entry points. Every recipe runs in bash with Node.js 24 first on PATH where it needs node.
#   make up | down | status | clean     the local stack (instance $EF_INSTANCE, default dev; see hack/lib.sh)
#   make up PROVIDERS=2                 ... with 2 provider replicas sharing the edge nodes
#   make up HUB=3                       ... with a 3-server NATS hub cluster (R3 hub streams); remembered until clean
#   make up DEV=1                       ... the provider, registrar and hub as processes of this checkout, not pods
#   make build                          packages, Go components, node_modules, tsc -b (hack/deps.sh)
#   make test                           lint, verify-proto, test-unit, test-int, e2e, e2e-hub3, e2e-install, e2e-install-ha, conformance-ci: all run, then a summary; fails if any failed
#   make e2e-install                    the install suite: the cloud side installed into the cluster from manifests/ (instance inst)
#   make e2e-install-ha                 the same on a pod network with the base's replicas: 3 hub servers, 2 providers (instance ha)
#   make e2e-hub3                       the fault suite (e2e/src/fault.test.ts) on a 3-server hub cluster (instance e2e3)
#   make conformance                    Kubernetes' own node conformance specs against edge-1 of the running stack (docs/conformance.md)
#   make lint | format                  type check (tests included), ESLint, Prettier check, buf lint, settings reference | rewrite formatting
#   make settings-doc                   regenerate docs/reference/settings.md, the reference of every setting
#   make fuzz                           every *.fuzz.test.ts property with 20000 inputs (EF_FUZZ_RUNS); summary in bench/results/fuzz-*.json
#   make images                         the cloud images (docker.io/edgefarm/edgefarm, nats-server; amd64+arm64 OCI indexes) in build/images/ (docs/reference/images.md)
#   make package                        the site package: build/package/edgefarm-site_<version>_<arch>.deb and .tar.gz (docs/reference/package.md)
#   make proto | verify-proto | bench
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
export PATH := /usr/local/go/bin:$(PATH)

# Prefix for recipes that need the pinned Node.js (and lib.sh's names).
NODE_ENV = . $(CURDIR)/hack/lib.sh && ef_use_node &&
JEST_ARGS ?=

.PHONY: help up down status clean build deps images package test test-unit test-int e2e e2e-hub3 e2e-install e2e-install-ha conformance conformance-ci bench fuzz proto verify-proto lint format settings-doc

help:
	@sed -n 's/^#   /  /p' $(firstword $(MAKEFILE_LIST))

# `make up PROVIDERS=N` runs N provider replicas (EF_PROVIDERS), 1 by default.
ifdef PROVIDERS
export EF_PROVIDERS := $(PROVIDERS)
endif

# `make up HUB=3` runs the NATS hub as a 3-server JetStream cluster (EF_HUB); hack/hub.sh records it for later runs.
ifdef HUB
export EF_HUB := $(HUB)
endif

# `make up DEV=1` runs the provider, the registrar and the hub as processes of this checkout (EF_DEPLOY=process)
# instead of pods of the shipped manifests on the cloud node.
ifdef DEV
ifneq ($(DEV),0)
export EF_DEPLOY := process
endif
endif

up:
	@hack/up.sh

down:
	@hack/down.sh

status:
	@hack/status.sh

clean:
	@hack/clean.sh

build deps:
	@hack/deps.sh

images:
	@hack/cloud-images.sh build

package:
	@hack/package.sh

# Runs every suite even when one fails; exits non-zero if any failed. Each suite has a time budget (seconds,
# several times its usual time): a hung suite is killed and reported, and the others still run.
SUITE_BUDGET = lint:300 verify-proto:120 test-unit:600 test-int:1500 e2e:2100 e2e-hub3:1200 e2e-install:900 e2e-install-ha:900 conformance-ci:2400
test:
	@rc=0; summary=""; \
	for t in lint verify-proto test-unit test-int e2e e2e-hub3 e2e-install e2e-install-ha conformance-ci; do \
	  start=$$SECONDS; budget=$$(echo "$(SUITE_BUDGET)" | tr ' ' '\n' | sed -n "s/^$$t://p"); \
	  echo "==> make $$t (budget $${budget}s)"; \
	  code=0; timeout --kill-after=30 $$budget $(MAKE) --no-print-directory $$t || code=$$?; \
	  if [ $$code = 0 ]; then r=passed; elif [ $$code = 124 ] || [ $$code = 137 ]; then r=TIMEOUT; rc=1; \
	    echo "make $$t: killed after its budget of $${budget}s (a hung test or a leaked handle)"; else r=FAILED; rc=1; fi; \
	  summary="$$summary$$(printf '  %-10s %-7s %5ss' $$t $$r $$((SECONDS - start)))\n"; \
	done; \
	printf '\n==> test summary\n'"$$summary"; \
	if [ $$rc = 0 ]; then echo "all suites passed"; else echo "some suites FAILED"; fi; \
	exit $$rc

test-unit:
	@$(NODE_ENV) npm run --silent test:unit -- --passWithNoTests $(JEST_ARGS)

test-int:
	@$(NODE_ENV) npm run --silent test:int -- --passWithNoTests $(JEST_ARGS)

# The e2e suite starts real processes from each package's dist/: build first (incremental, quick when up to date).
e2e:
	@$(NODE_ENV) node_modules/.bin/tsc -b && npm run --silent test:e2e -- --passWithNoTests $(JEST_ARGS)

# The fault suite on its own stack with HUB=3 (R3 hub streams): partitions, kills and restarts with a hub cluster.
e2e-hub3:
	@$(NODE_ENV) node_modules/.bin/tsc -b && EF_E2E_INSTANCE=e2e3 npm run --silent test:e2e -- --passWithNoTests --testPathPatterns fault $(JEST_ARGS)

# The install suite (e2e/src/install.test.ts) on a stack of its own (instance inst) brought up as `make up` does: the
# cloud side installed into the cluster from the shipped manifests, on a real kubelet node; then the e2e specs that
# act on the cluster and the site only (no process of the cloud side, one site) on that stack too.
E2E_ON_CLUSTER = install|hello|config|deadline|grace|rollout|runtime|scale|unsupported|edgenode|images|kubectl
e2e-install:
	@$(NODE_ENV) node_modules/.bin/tsc -b && EF_E2E_INSTANCE=inst npm run --silent test:e2e -- --passWithNoTests --testPathPatterns '$(E2E_ON_CLUSTER)' $(JEST_ARGS)

# The same specs, and e2e/src/install-ha.test.ts, on instance ha (EF_CLOUD_NET=pod): the base's replicas (3 hub
# servers in one JetStream cluster, 2 providers, 2 registrars) on a pod network with kube-proxy and CoreDNS, the
# sites through NodePorts; a hub server and a provider pod deleted under load.
e2e-install-ha:
	@$(NODE_ENV) node_modules/.bin/tsc -b && EF_E2E_INSTANCE=ha npm run --silent test:e2e -- --passWithNoTests --testPathPatterns '$(E2E_ON_CLUSTER)' $(JEST_ARGS)

# Kubernetes' own node conformance specs (e2e/conformance/selection.json) against the first edge node of the stack
# of $(EF_INSTANCE) (brought up first); results in bench/results/conformance-*.json and .md. EF_CONFORMANCE_PROCS
# parallel processes (5). FOCUS=REGEX runs only the selected specs that also match it.
conformance:
	@$(NODE_ENV) node_modules/.bin/tsc -b && hack/conformance.sh $(if $(FOCUS),--focus '$(FOCUS)')

# The same on a stack of its own (instance conf), removed afterwards: make test's suite.
conformance-ci:
	@$(NODE_ENV) node_modules/.bin/tsc -b && EF_INSTANCE=conf hack/conformance.sh --clean

bench:
	@$(NODE_ENV) node_modules/.bin/tsc -b && node bench/dist/run.js

# Property-based fuzzing of every decoder and parser (testing/src/fuzz.ts) with many inputs; the unit suite runs the
# same properties with few.
fuzz:
	@bash hack/fuzz.sh $(JEST_ARGS)

proto:
	@$(NODE_ENV) cd proto && ../node_modules/.bin/buf generate
	@echo "generated proto/src/gen (commit it)"

# Regenerates into a temporary directory and compares with what is committed; also re-derives the CRI subset from
# the upstream cri-api api.proto in the Go module cache (when there) and compares it with proto/defs/runtime/v1.
verify-proto:
	@$(NODE_ENV) rc=0; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd proto && ../node_modules/.bin/buf generate -o "$$tmp"); \
	if diff -r "$$tmp/src/gen" proto/src/gen; then echo "proto/src/gen: up to date"; \
	else echo "proto/src/gen differs from what buf generates: run make proto" >&2; rc=1; fi; \
	cri_version="v0.$${K8S_VERSION#v1.}"; \
	modcache=$$(go env GOMODCACHE 2>/dev/null || echo "$$HOME/go/pkg/mod"); \
	upstream="$$modcache/k8s.io/cri-api@$$cri_version/pkg/apis/runtime/v1/api.proto"; \
	if [ -f "$$upstream" ]; then \
	  python3 proto/hack/cri-subset.py "$$upstream" "$$tmp/api.proto" "cri-api@$$cri_version"; \
	  if diff "$$tmp/api.proto" proto/defs/runtime/v1/api.proto; then echo "proto/defs/runtime/v1/api.proto: matches cri-api@$$cri_version"; \
	  else echo "proto/defs/runtime/v1/api.proto differs from cri-subset.py's output for cri-api@$$cri_version" >&2; rc=1; fi; \
	else echo "skipped the CRI subset check: $$upstream is not in the Go module cache"; fi; \
	exit $$rc

# tsc -b builds what runs; tsconfig.check.json type-checks every package from source with its tests; ESLint is
# type-aware (eslint.config.js); Prettier owns the formatting (.prettierrc.json; `make format` rewrites); the settings
# reference must be what the declarations generate (settings/src/cli.ts).
lint:
	@$(NODE_ENV) node_modules/.bin/tsc -b && echo "tsc -b: ok" \
	  && node_modules/.bin/tsc -p tsconfig.check.json && echo "tsc (tests included): ok" \
	  && node_modules/.bin/eslint --max-warnings 0 . && echo "eslint: ok" \
	  && node_modules/.bin/prettier --check --log-level warn . && echo "prettier: ok" \
	  && (cd proto && ../node_modules/.bin/buf lint) && echo "buf lint: ok" \
	  && node settings/dist/cli.js check && echo "settings reference: up to date" \
	  && hack/lint-manifests.sh render

# docs/reference/settings.md from the declarations: each binary's (provider/src/config.ts, edge-agent/src/config.ts,
# ...) and hack/lib.sh's `#:` lines. Commit the result; `make lint` fails when it is stale.
settings-doc:
	@$(NODE_ENV) node_modules/.bin/tsc -b && node settings/dist/cli.js write

format:
	@$(NODE_ENV) node_modules/.bin/prettier --write --log-level warn . && node_modules/.bin/eslint --fix . && echo "formatted"
