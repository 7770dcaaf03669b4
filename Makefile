# pcrs-indexer — the two commands a newcomer runs are `make demo` and
# `make test`; both install what is missing (Debian packages, pinned tools).

SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
VERSITYGW_VERSION := v1.8.0
BIN := bin/pcrs-indexer
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian 12's: GDAL 3.6.2 to build, and the real servers the storage
# backends are tested against.
APT_BUILD := libgdal-dev pkg-config
APT_TEST := gdal-bin nginx apache2 lighttpd vsftpd openssh-server prometheus prometheus-node-exporter chromium

.PHONY: all deps deps-test web build demo test lint unit bench clean

all: build

# apt-install installs the packages given in $(1) that are missing. Services
# must not start on install (they would take ports 80, 21, 22): tests start
# their own servers.
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		policy=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; $(SUDO) chmod +x /usr/sbin/policy-rc.d; policy=1; }; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; rc=$$?; \
		[ $$policy = 0 ] || $(SUDO) rm -f /usr/sbin/policy-rc.d; \
		exit $$rc; \
	fi
endef

# deps installs what building needs (GDAL), only when missing.
deps:
	$(call apt-install,$(APT_BUILD))

# deps-test adds the integration servers and the pinned tools.
deps-test: deps
	$(call apt-install,$(APT_TEST))
	@test -x $(TOOLS)/staticcheck || { echo "installing staticcheck $(STATICCHECK_VERSION)"; GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }
	@test -x $(TOOLS)/versitygw || { echo "installing versitygw $(VERSITYGW_VERSION) (a few minutes, once)"; GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); }

# web fetches the map's JavaScript (Leaflet and FlatGeobuf, pinned in
# package-lock.json; FlatGeobuf's optional OpenLayers left out) from npm
# and copies it, with Leaflet's layer-switcher icons, where the binary
# embeds it.
WEB := service/web
WEB_DIST := leaflet.js leaflet.css layers.png layers-2x.png flatgeobuf-geojson.min.js
web:
	@missing=; for f in $(WEB_DIST); do test -f $(WEB)/dist/$$f || missing=1; done; test -z "$$missing" || { \
		echo "fetching Leaflet and FlatGeobuf from npm"; \
		cd $(WEB) && npm ci --omit=optional --no-audit --no-fund --silent && \
		cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
			node_modules/leaflet/dist/images/layers.png node_modules/leaflet/dist/images/layers-2x.png \
			node_modules/flatgeobuf/dist/flatgeobuf-geojson.min.js dist/; }

build: deps web
	$(GO) build -o $(BIN) ./cmd/pcrs-indexer

# demo builds a sample storage with GDAL (a hole, an island, broken tiles),
# scans it and shows where the outputs are.
demo: build
	@rm -rf demo && mkdir -p demo
	./$(BIN) sample demo/storage
	./$(BIN) scan --out demo/out --name "Démo Carcassonne" --attributes testdata/demo-attributes.yaml demo/storage
	@echo
	@echo "Outputs in $(CURDIR)/demo/out:"
	@ls -l demo/out
	@echo
	@echo "livrables.geojson, properties:"
	@python3 -c 'import json,sys; f=json.load(open("demo/out/livrables.geojson"))["features"][0]; print(json.dumps(f["properties"], ensure_ascii=False, indent=1)); print("geometry:", f["geometry"]["type"], "with", sum(len(p) for p in f["geometry"]["coordinates"]) if f["geometry"]["type"]=="MultiPolygon" else len(f["geometry"]["coordinates"]), "rings")' 2>/dev/null || head -c 1500 demo/out/livrables.geojson

lint: deps-test web
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.tools/*' -not -path './demo/*')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

unit: deps-test web
	$(GO) test -race -count=1 ./...

test: lint unit

# bench runs the benchmarks and prints each comparison as a ratio, in one
# run: the footprint unions on one core (-cpu 1) against GEOS, header reads
# per tile kind against a plain GDAL open, a mixed remote scan behind nginx
# + 20 ms against GDAL /vsicurl/ at equal concurrency, a local scan
# against gdaltindex, FlatGeobuf memory at 100k and 1M features, the
# warnings' check of 1M tiles, and the map of 100k tiles in Chromium.
bench: deps-test
	@set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./footprint/ | tee /dev/stderr | awk '\
		/^BenchmarkUnion\/tiles=100000 /{u=$$3} /^BenchmarkUnionGEOS\/tiles=100000 /{g=$$3} /^BenchmarkUnion\/tiles=1000000 /{m=$$3} \
		END{ if (u && g) printf "\nfootprint: 1,000,000 tiles unioned in %.3f s on one core; exact union %.1fx faster than GEOS cascaded union at 100,000 tiles\n\n", m/1e9, g/u; else { print "bench: footprint results missing"; exit 1 } }'
	@set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkInspectVsGDAL -benchtime 300x ./raster/ | grep -oE 'inspect .*|--- FAIL.*|^    .*'
	@set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkRemoteScan|BenchmarkLocalVsGdaltindex' -benchtime 1x ./indexer/ | grep -E '^(Benchmark|remote scan|local scan|--- FAIL|    )'
	@set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkFlatGeobufMemory -benchtime 1x ./vector/ | grep -E '^(Benchmark|flatgeobuf memory|--- FAIL|    )'
	@set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkScanMemory -benchtime 1x -timeout 30m ./indexer/ | grep -E '^(Benchmark|scan memory|--- FAIL|    )'
	@set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkCheck1M|BenchmarkCheckStream' -benchtime 3x -cpu 1 ./quality/ | grep -E '^(Benchmark|check memory|--- FAIL|    )'
	@set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkDecryptKey -benchtime 3x ./storage/sftp/ | tee /dev/stderr | awk '\
		/^BenchmarkDecryptKey\/rounds=128-/{d=$$3} /^BenchmarkDecryptKey\/rounds=128\/cached/{c=$$3} \
		END{ if (d && c) printf "\nsftp key: 128 bcrypt rounds decrypted in %.2f s at each opening, %.1f us once cached (%.0fx)\n\n", d/1e9, c/1e3, d/c; else { print "bench: sftp key results missing"; exit 1 } }'
	@set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkMapInChromium -benchtime 3x ./service/ | grep -E '^(Benchmark|--- FAIL|    )'

clean:
	rm -rf bin demo out
