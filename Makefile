# chatmux: the two commands of the README are `make run` and `make test`.
GO ?= go

.PHONY: run test gotest jstest check bench fuzz services webtest

run:
	$(GO) run ./examples/chat

export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

# The whole suite: formatting, vet, the services the integration tests use
# (PostgreSQL and Redis on 127.0.0.1, started or installed when missing),
# every Go test with the race detector, then the JavaScript client's build
# and tests (Node.js and npm; pinned by clients/js/package-lock.json).
test: check services gotest jstest

gotest:
	$(GO) test -race -count=1 -timeout 30m ./...

jstest:
	bash clients/js/test.sh

check:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Start PostgreSQL and Redis locally (installing them as root if missing).
services:
	bash .ci/services.sh

# The browser test of the example chat page (Chromium and Node).
webtest:
	bash examples/chat/webtest/run.sh
