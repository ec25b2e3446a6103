# chatmux: the two commands of the README are `make run` and `make test`.
GO ?= go

# make fuzz: how long each fuzz target runs, which targets (a grep -E
# pattern over their names) and extra flags for go test (e.g. -parallel=1).
FUZZTIME ?= 20s
FUZZ ?= .
FUZZFLAGS ?=

.PHONY: run test gotest benchtest jstest check bench bench-compare fuzz services webtest

run:
	$(GO) run ./examples/chat

export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

# The whole suite: formatting, vet, the services the integration tests use
# (PostgreSQL and Redis on 127.0.0.1, started or installed when missing),
# every Go test with the race detector (the main module, then the bench
# module, which ./... does not enter: it is a module of its own), then the
# JavaScript client's build and tests (Node.js and npm; pinned by
# clients/js/package-lock.json).
test: check services gotest benchtest jstest

gotest:
	$(GO) test -race -count=1 -timeout 30m ./...

# bench/: the Centrifuge peer and the side-by-side driver; its end-to-end
# test builds examples/chat and runs both servers for a few seconds.
benchtest:
	cd bench && $(GO) test -race -count=1 -timeout 15m ./...

jstest:
	bash clients/js/test.sh

check:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Broadcast side by side with a server on the Centrifuge library: bench/ is
# its own Go module (the main module never depends on Centrifuge). The
# driver builds examples/chat from this checkout and alternates the two
# servers; XCHAT passes flags (e.g. XCHAT='-layouts 1x100x10 -pairs 5').
# See bench/README.md.
XCHAT ?=
bench-compare:
	cd bench && $(GO) run ./cmd/xchat -repo .. $(XCHAT)

# Start PostgreSQL and Redis locally (installing them as root if missing).
services:
	bash .ci/services.sh

# Every fuzz target of the repository (func Fuzz... in a _test.go file, found
# with grep, so new ones are run too), each for FUZZTIME, one after the
# other; not part of `make test`. The seed corpora are in each package's
# testdata/fuzz; an input that fails is written there too, and the target
# is reported at the end. FUZZ=Redis runs only the targets whose name
# matches.
fuzz:
	@targets="$$(grep -rE -o --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git \
		'^func Fuzz[A-Za-z0-9_]+\(' . | sed -E 's#^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]+)\($$#\1:\2#' | sort -u | grep -E ':.*($(FUZZ))')"; \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz target matches $(FUZZ)"; exit 1; fi; \
	echo "fuzz: $$(echo "$$targets" | wc -l) targets, $(FUZZTIME) each"; \
	failed=""; \
	for t in $$targets; do \
		dir="$${t%%:*}"; name="$${t##*:}"; \
		echo "== $$name ($$dir)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) "$$dir" || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi; \
	echo "fuzz: every target passed"

# The browser test of the example chat page (Chromium and Node).
webtest:
	bash examples/chat/webtest/run.sh
