# provbox — build, run and test. `make help` lists the targets.

GO       ?= go
BIN      ?= bin/provbox
# The version stamped into the binary (provbox version): the git
# description of the checkout, "dev" outside one.
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

# Fuzz targets run briefly by `make test`, as package:FuzzName.
FUZZ     ?= ./appliance:FuzzParseMAC ./appliance:FuzzParseCSV ./configs:FuzzParseUserAgent ./configs:FuzzCleanName ./sip:FuzzDatagram
FUZZTIME ?= 10s

# Debian packages the build and the tests need: gcc and libc6-dev for cgo
# (mattn/go-sqlite3, go test -race), sqlite3 and curl for checks and
# scripts, tftp-hpa and atftp as real TFTP peers, ca-certificates for the
# module proxy.
DEB_PACKAGES ?= ca-certificates curl gcc libc6-dev make sqlite3 tftp-hpa atftp sip-tester iproute2 chromium

export CGO_ENABLED := 1

.PHONY: all build run test lint fuzz bench deps help clean

all: build

help:
	@echo "make build  - build $(BIN) (version $(VERSION))"
	@echo "make run    - build, then serve on unprivileged ports with ./provbox-data"
	@echo "make test   - install missing tools, vet, gofmt, go test -race, a short fuzz pass"
	@echo "make lint   - go vet and gofmt"
	@echo "make bench  - benchmarks"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/provbox

# The README's quick start: no config file, the database in ./provbox-data,
# the admin pages, API and /prov/ on :8080, TFTP on :6969. SIP moves to an
# unprivileged port (:5062) once that service exists.
run: build
	./$(BIN) serve --http :8080 --tftp :6969 --sip off

# deps installs the Debian packages above that are missing (as root, e.g.
# in CI; otherwise it names them) and downloads the Go modules.
deps:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
		for p in $(DEB_PACKAGES); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
		done; \
	fi; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi
	$(GO) mod download

lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: deps lint
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz

fuzz:
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

# Benchmarks: the Go ones for now; the scripts under bench/ (against
# dnsmasq, nginx, tftpd-hpa...) join here as they land.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	@if [ -d bench ]; then for s in bench/*.sh; do [ -x "$$s" ] && "$$s" || true; done; fi

clean:
	rm -rf bin
