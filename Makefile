# The front door. `make` installs every dependency and builds everything;
# `make start` also starts the daemon; `make test` runs every test.
SHELL := /bin/bash
ZIG_VERSION := 0.14.1
ZIG_DIR     := .tools/zig
ZIG         := $(ZIG_DIR)/ziglang/zig
NODE        := node
STYXY       := $(NODE) bin/run.cjs
TS_SOURCES  := $(shell find src commands test bench -name '*.ts' 2>/dev/null)
# The C probes and the contract's fixtures are compiled or embedded by zig build too.
ZIG_SOURCES := $(shell find interceptor kernel -name '*.zig' 2>/dev/null) build.zig build.zig.zon $(wildcard test/fixtures/*.c test/fixtures/contract/*)

.PHONY: all deps build start stop run test test-ts test-zig bench soak coverage contract clean venv chromium
all: build

# npm may skip a native install script it has not approved; prove the binding loads, else build it.
node_modules/.styxy-deps: package.json package-lock.json
	npm ci --no-audit --no-fund
	$(NODE) -e "new (require('better-sqlite3'))(':memory:')" 2>/dev/null || npm rebuild better-sqlite3
	$(NODE) -e "new (require('better-sqlite3'))(':memory:')"
	touch $@

# Zig is the `ziglang` wheel from PyPI, pinned, in a project-local folder: no system Zig assumed.
$(ZIG):
	python3 -m pip install --quiet --disable-pip-version-check --target $(ZIG_DIR) ziglang==$(ZIG_VERSION)
	$(ZIG) version | grep -qx '$(ZIG_VERSION)'

# The real reloaders the watch-mode tests restart (uvicorn --reload, Flask's debug reloader, Django's runserver),
# pinned from PyPI in a project-local virtualenv. Made at the real path of .tools (a worktree may link it), so its
# scripts name a folder that outlives the worktree that made it; the tests run its python, never its scripts.
VENV      := .tools/venv
VENV_REQS := test/fixtures/reloaders/requirements.txt
$(VENV)/.done: $(VENV_REQS)
	mkdir -p .tools
	python3 -m venv "$$(realpath .tools)/venv"
	"$$(realpath .tools)/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r $(VENV_REQS)
	touch $@

venv: $(VENV)/.done

deps: node_modules/.styxy-deps $(ZIG) $(VENV)/.done

dist/.built: node_modules/.styxy-deps tsconfig.json package.json $(TS_SOURCES)
	rm -rf dist # no compiled file may outlive its source (mocha runs every dist/test file)
	# tsc, then `styxy run`'s fast path bundled into one CommonJS file (loading ~15 ES modules one by one cost it
	# ~10 ms on every dev server start), beside project.js so the project root it derives from its path holds.
	npm run --silent build
	$(NODE) dist/src/cli/write-manifest.js
	touch $@

zig-out/.built: $(ZIG) $(ZIG_SOURCES)
	$(ZIG) build -Doptimize=ReleaseSafe
	touch $@

build: dist/.built zig-out/.built

start: build
	$(STYXY) daemon start

stop:
	$(STYXY) daemon stop

run: build
	$(STYXY) daemon start --foreground

# The dashboard's browser test (test/dashboard) drives Debian's chromium through playwright-core: no browser
# download. Nothing to do when one is there (or STYXY_CHROMIUM names one); as root it is installed; otherwise
# the step stops and says how.
chromium:
	@if [ -n "$${STYXY_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "make test needs chromium for the dashboard's browser test: run 'sudo apt-get install chromium' (or set STYXY_CHROMIUM to a chromium executable)" >&2; \
		exit 1; \
	fi

test: build $(VENV)/.done chromium
	$(ZIG) build test
	npx mocha

# The proof suites (test/proof) at full length: hundreds of kills, 100,000 fuzzed requests, five minutes of load.
# Bounded (about half an hour on 2 cores) and loopback only; the figures go to soak-figures.jsonl as well.
soak: build $(VENV)/.done
	STYXY_SOAK=1 STYXY_FIGURES=$(CURDIR)/soak-figures.jsonl npx mocha --no-config --timeout 0 --slow 60000 --exit 'dist/test/proof/**/*.test.js'

bench: build
	$(NODE) dist/bench/run.js

# Rewrites docs/coverage.md from the coverage matrix test (make test checks the same expectations).
coverage: build
	STYXY_COVERAGE_OUT=docs/coverage.md npx mocha --spec dist/test/coverage/matrix.test.js -g 'coverage matrix'

# Rewrites test/fixtures/contract, the bind exchange as each side has it: the interceptor's requests (from its
# encoder and framing), then a real daemon's answers to them. `make test` fails while they are stale.
contract: build
	$(ZIG) build contract -- $(CURDIR)/test/fixtures/contract
	$(NODE) dist/test/contract/generate.js test/fixtures/contract

clean:
	rm -rf dist zig-out .zig-cache oclif.manifest.json
