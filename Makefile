# provbox — build, run and test. `make help` lists the targets.

GO       ?= go
BIN      ?= bin/provbox
# The version stamped into the binary (provbox version): the git
# description of the checkout, "dev" outside one.
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

# Fuzz targets run briefly by `make test`, as package:FuzzName.
FUZZ     ?= ./appliance:FuzzParseMAC ./appliance:FuzzParseCSV ./configs:FuzzParseUserAgent ./configs:FuzzCleanName ./sip:FuzzDatagram ./dhcpopt:FuzzHandler ./webui:FuzzParseFastRequest
FUZZTIME ?= 100000x

# Debian packages the build and the tests need: gcc and libc6-dev for cgo
# (mattn/go-sqlite3, go test -race), sqlite3 and curl for checks and
# scripts, tftp-hpa and atftp as real TFTP peers, ca-certificates for the
# module proxy, nodejs and npm for axe-core (the browser accessibility
# check; a package some installed package Provides counts, e.g. the npm
# inside NodeSource's nodejs).
DEB_PACKAGES ?= ca-certificates curl gcc libc6-dev make sqlite3 tftp-hpa atftp sip-tester iproute2 chromium systemd isc-dhcp-client dnsmasq nodejs npm

export CGO_ENABLED := 1

.PHONY: all build run test lint fuzz bench deps dist-deps help clean dist dist-bin deb deb-test vm-test FORCE

all: build

help:
	@echo "make build  - build $(BIN) (version $(VERSION))"
	@echo "make run    - build, then serve every service on unprivileged ports, the database in ./provbox-data:"
	@echo "               HTTP=$(HTTP) HTTPS=$(HTTPS) TFTP=$(TFTP) SIP=$(SIP) (each a variable: make run SIP=127.0.0.1:5070;"
	@echo "               off turns HTTPS, TFTP or SIP off); ARGS= adds serve flags (ARGS='--log-level debug')"
	@echo "make test   - install missing tools (apt-get as root), vet, gofmt, go test -race, a short fuzz pass (~5 min on 2 cores)"
	@echo "make lint   - go vet and gofmt"
	@echo "make bench  - benchmarks"
	@echo "make dist   - binaries for linux amd64/arm64/armv7 and their .debs in $(DIST)/ (deb version $(DEB_VERSION))"
	@echo "make dist-deps - install what make dist needs (apt-get as root): $(DIST_PACKAGES)"
	@echo "make deb    - the .debs alone, from the binaries in $(DIST)/"
	@echo "make deb-test - this machine's .deb alone, checked, installed, upgraded, removed and purged (root; CI runs it)"
	@echo "make vm-test  - the amd64 .deb in a Debian VM under a real systemd (root, qemu, mmdebstrap; packaging/vm/)"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/provbox

# The README's quick start: every service on an unprivileged port, no config
# file (/etc/provbox/provbox.toml when it exists), the database in
# ./provbox-data. The admin pages, API and /prov/ on HTTP :8080 and HTTPS
# :8443, TFTP on :6969, SIP (check-sync NOTIFYs, OPTIONS, reports) on :5062;
# SIP plug-and-play also listens on 224.0.1.75:5060. Each is a variable
# (make run HTTP=:9080 SIP=127.0.0.1:5070; "off" turns HTTPS, TFTP or SIP
# off; empty is an error, not "off"), ARGS adds serve flags.
# cmd/provbox/quickstart_test.go checks that the README's quick start says
# the same, and runs it.
HTTP  ?= :8080
HTTPS ?= :8443
TFTP  ?= :6969
SIP   ?= :5062
ARGS  ?=
run: build
	$(foreach v,HTTP HTTPS TFTP SIP,$(if $(strip $($(v))),,$(error make run: $(v) is empty; give it host:port (e.g. $(v)=127.0.0.1:9000) or off)))
	$(if $(filter /% ./% ../%,$(BIN)),$(BIN),./$(BIN)) serve --http $(HTTP) --https $(HTTPS) --tftp $(TFTP) --sip $(SIP)$(if $(ARGS), $(ARGS))

# deps installs the Debian packages above that are missing (as root, e.g.
# in CI; otherwise it names them), downloads the Go modules and installs
# the npm devDependencies of package.json (axe-core, pinned by
# package-lock.json) into node_modules/ when they are missing.
deps:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
		for p in $(DEB_PACKAGES); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || \
			dpkg-query -W -f='$${Status} $${Provides},\n' 2>/dev/null | grep 'ok installed' | grep -Eq "[ ,]$$p( \(.*\))?," || \
			missing="$$missing $$p"; \
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
	@[ -f node_modules/axe-core/axe.min.js ] || npm ci --no-audit --no-fund

# lint also builds, for each release arch, every package that needs no cgo
# (all but the SQLite ones, which make dist builds with cross compilers): an
# arch's missing constant (arm64 has no epoll_wait) fails here, in seconds,
# rather than in make dist.
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for a in $(DIST_ARCHES); do \
		pkgs=$$(GOOS=linux GOARCH=$$a CGO_ENABLED=0 $(GO) list -f '{{if .GoFiles}}{{.ImportPath}}{{range .Deps}}{{if eq . "github.com/mattn/go-sqlite3"}} cgo{{end}}{{end}}{{end}}' ./... | grep -v ' cgo$$') || exit 1; \
		echo "build for linux/$$a without cgo: $$(echo $$pkgs | wc -w) packages"; \
		GOOS=linux GOARCH=$$a CGO_ENABLED=0 $(GO) build $$pkgs || exit 1; \
	done

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

# Release builds (issue 7). make dist cross-builds provbox with cgo (SQLite)
# for linux/amd64, linux/arm64 and linux/arm (GOARM=7, Raspberry Pi OS
# 32-bit) into $(DIST)/linux_<arch>/provbox, then packs each into
# $(DIST)/provbox_<version>_<amd64|arm64|armhf>.deb with nfpm. nfpm is built
# from packaging/nfpm, a module of its own, so that its many dependencies
# stay out of provbox's go.mod. Cross compilers (Debian packages):
# gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
# libc6-dev-armhf-cross (DIST_PACKAGES, which make dist-deps installs as
# deps does; with qemu-user the package checks run the ARM binaries). The
# target of the build machine's own arch uses gcc. CI runs make dist.
DIST_PACKAGES ?= gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user
DIST         ?= dist
DIST_ARCHES  ?= amd64 arm64 arm
HOST_GOARCH  := $(shell $(GO) env GOARCH 2>/dev/null)
CROSS_CC_amd64 := x86_64-linux-gnu-gcc
CROSS_CC_arm64 := aarch64-linux-gnu-gcc
CROSS_CC_arm   := arm-linux-gnueabihf-gcc
NFPM_ARCH_amd64 := amd64
NFPM_ARCH_arm64 := arm64
NFPM_ARCH_arm   := arm7
NFPM         ?= bin/nfpm
# A Debian version must start with a digit: v1.2.3 tags give 1.2.3 (and
# 1.2.3+4.gabcdef past the tag); without a tag, 0.0~git<commit date>.<hash>.
DEB_VERSION  ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null); \
	if [ -n "$$v" ]; then echo "$${v\#v}" | sed 's/-\([0-9]*\)-g/+\1.g/'; \
	else echo "0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo none)"; fi)$(if $(filter %-dirty,$(VERSION)),+dirty)

# Debian architecture of each Go one, for the checks in packaging/.
DEB_ARCH_amd64 := amd64
DEB_ARCH_arm64 := arm64
DEB_ARCH_arm   := armhf

dist-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES='$(DIST_PACKAGES)'

# dist ends with packaging/dist_test.go on what it built (seconds).
dist: dist-bin
	$(MAKE) --no-print-directory deb
	@ls -l $(DIST)/*.deb
	PROVBOX_DIST_TEST='$(foreach a,$(DIST_ARCHES),$(DEB_ARCH_$(a)))' $(GO) test -count=1 -run '^TestDebs$$' ./packaging/

dist-bin: $(DIST_ARCHES:%=$(DIST)/linux_%/provbox)

$(DIST)/linux_%/provbox: FORCE
	@mkdir -p $(@D)
	GOOS=linux GOARCH=$* $(if $(filter arm,$*),GOARM=7) CC=$(if $(filter $(HOST_GOARCH),$*),gcc,$(CROSS_CC_$*)) \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/provbox

deb: $(NFPM)
	@rm -f $(DIST)/provbox_*.deb
	@for a in $(DIST_ARCHES); do \
		case $$a in amd64) n=$(NFPM_ARCH_amd64);; arm64) n=$(NFPM_ARCH_arm64);; arm) n=$(NFPM_ARCH_arm);; *) echo "no deb arch for $$a"; exit 1;; esac; \
		[ -x $(DIST)/linux_$$a/provbox ] || { echo "$(DIST)/linux_$$a/provbox missing: run make dist"; exit 1; }; \
		GOOS=linux GOARCH=$$a GO=$(GO) packaging/copyright.sh > $(DIST)/linux_$$a/copyright || exit 1; \
		NFPM_ARCH=$$n BIN_DIR=$(DIST)/linux_$$a DEB_VERSION='$(DEB_VERSION)' SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
			$(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DIST)/ || exit 1; \
	done

# deb-test builds the binary and .deb of this machine's architecture alone
# (no cross compiler), checks the package (packaging/dist_test.go), then
# installs it with dpkg, installs it again (an upgrade), removes and purges
# it, checking what each step leaves. It changes the machine: as root, where
# provbox is not installed. No systemd need run (CI has none as PID 1): the
# maintainer scripts then only enable the unit. CI runs it after make test.
deb-test: $(DIST)/linux_$(HOST_GOARCH)/provbox
	$(MAKE) --no-print-directory deb DIST_ARCHES=$(HOST_GOARCH)
	PROVBOX_DIST_TEST=$(DEB_ARCH_$(HOST_GOARCH)) PROVBOX_DEB_INSTALL=1 $(GO) test -count=1 -v -run '^(TestDebs|TestDebInstall)$$' ./packaging/

# vm-test boots a Debian 12 VM with qemu (KVM if /dev/kvm works, else TCG),
# installs the amd64 .deb under a real systemd and checks the unit there:
# READY=1, systemd-analyze security, DynamicUser, ports 67 and 69 with the
# unit's capabilities, reload, the watchdog, a reboot, purge
# (packaging/vm/guest.sh). As root, with the Debian packages qemu-system-x86,
# mmdebstrap and e2fsprogs; the image is built once into VM_DIR
# (/var/tmp/provbox-vm). The results and logs: packaging/vm/last-run.log.
vm-test: $(DIST)/linux_amd64/provbox
	$(MAKE) --no-print-directory deb DIST_ARCHES=amd64
	packaging/vm/run.sh $(DIST)/provbox_*_amd64.deb

$(NFPM): packaging/nfpm/go.mod packaging/nfpm/go.sum
	CGO_ENABLED=0 $(GO) -C packaging/nfpm build -o $(abspath $(NFPM)) github.com/goreleaser/nfpm/v2/cmd/nfpm

FORCE:
